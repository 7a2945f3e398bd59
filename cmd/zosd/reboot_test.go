package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/registrarlight"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
	"github.com/grid4/grid4/node/zosd"
	regapi "github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// workloadNode is a zosd process hosting workloads, and a user of it.
type workloadNode struct {
	*zosdNode
	api     *zosclient.Client
	apiAddr string // host:port of its zos-api-light
	twin    uint64
	key     keys.KeyPair
	// user is the user's registrar client (contracts).
	user *client.Client
}

// hostingNode starts a node in the root namespace with its API on a free
// loopback port and a user account to deploy with.
func (e *e2e) hostingNode(t *testing.T, name string, extra ...string) *workloadNode {
	t.Helper()
	farm := e.farm(t, fmt.Sprintf("%s%d", name, rand.N[uint64](1<<40)))
	addr := net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t, "127.0.0.1")))
	// Its own names for networks: other tests' nodes share this host.
	salt := fmt.Sprintf("%s%d", name, rand.N[uint64](1<<30))
	args := append([]string{"--interface", e.vethRoot, "--api-listen", addr, "--net-salt", salt}, extra...)
	n := e.node(t, name, farm, false, args...)
	// Runs after the node stopped (cleanups run last-registered first):
	// a failed test leaves no mount in its temporary directory.
	t.Cleanup(func() {
		for _, m := range mountsUnder(n.data) {
			syscall.Unmount(m, syscall.MNT_DETACH)
		}
	})
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	user, err := client.New("http://"+e.regAddr, client.WithIdentity(kp, 0))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := user.CreateAccount(context.Background(), client.AccountOptions{})
	if err != nil {
		t.Fatalf("user account: %v", err)
	}
	api, err := zosclient.New("http://"+addr, kp, acc.TwinID, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &workloadNode{zosdNode: n, api: api, apiAddr: addr, twin: acc.TwinID, key: kp, user: user}
}

// up starts the node and waits for its API.
func (n *workloadNode) up(t *testing.T) {
	t.Helper()
	n.start(t)
	n.waitStatus(t, "registered", func(r zosd.Report) bool {
		return r.Registration != nil && r.Registration.Phase == registrarlight.Done
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := n.api.Version(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: zos-api-light does not answer: %v\nlog:\n%s", n.name, err, n.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deploy makes a node contract for d, signs and sends it.
func (n *workloadNode) deploy(t *testing.T, d gridtypes.Deployment) uint64 {
	t.Helper()
	d.TwinID = n.twin
	hash, err := d.HashHex()
	if err != nil {
		t.Fatal(err)
	}
	need, err := d.Resources()
	if err != nil {
		t.Fatal(err)
	}
	k, err := n.user.CreateNodeContract(context.Background(), n.status(t).Registration.NodeID, hash,
		regapi.Capacity{CRU: need.CRU, MRU: need.MRU, SRU: need.SRU, HRU: need.HRU, IPv4: need.IPv4})
	if err != nil {
		t.Fatalf("contract: %v", err)
	}
	d.ContractID = k.ContractID
	if err := d.Sign(n.twin, n.key); err != nil {
		t.Fatal(err)
	}
	r, err := n.api.Deploy(context.Background(), d)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return r.Deployment.ID
}

// settled waits until no workload of deployment id is queued or running
// and returns the record.
func (n *workloadNode) settled(t *testing.T, id uint64) gridtypes.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		r, err := n.api.Get(ctx, id)
		cancel()
		if err == nil && r.Pending == "" {
			done := true
			for _, w := range r.Deployment.Workloads {
				if w.Result == nil || w.Result.State == gridtypes.StateInit {
					done = false
				}
			}
			if done {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %d never settled (%v): %+v\nlog:\n%s", id, err, r, n.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// killAll SIGKILLs the node's zosd and every process below it (its
// modules, its Redis): a power cut, as far as the node's processes go.
func (n *workloadNode) killAll(t *testing.T) {
	t.Helper()
	pids := descendants(n.proc.cmd.Process.Pid)
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	<-n.proc.done
	for _, pid := range pids {
		for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// descendants returns pid and every process below it.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// mountsUnder lists the mount points below dir, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append([]string{fields[4]}, out...)
		}
	}
	return out
}

// result decodes a workload's result data into a map.
func result(w gridtypes.Workload) map[string]any {
	m := map[string]any{}
	if w.Result != nil {
		json.Unmarshal(w.Result.Data, &m)
	}
	return m
}

// present checks that what an ok workload's result names is really on
// the host: its file, its mounted volume, its namespace.
func present(w gridtypes.Workload, mounts []string) error {
	res := result(w)
	str := func(k string) string { s, _ := res[k].(string); return s }
	switch w.Type {
	case gridtypes.ZMountType, gridtypes.VolumeType:
		p := str("path")
		if p == "" {
			return fmt.Errorf("no path in the result %s", w.Result.Data)
		}
		if _, err := os.Stat(p); err != nil {
			return err
		}
		if w.Type == gridtypes.VolumeType && str("enforcement") == "loop-ext4" && !slices.Contains(mounts, p) {
			return fmt.Errorf("volume %s is not mounted", p)
		}
	case gridtypes.NetworkLightType, gridtypes.PublicIPv4Type:
		ns := str("namespace")
		if ns == "" {
			return fmt.Errorf("no namespace in the result %s", w.Result.Data)
		}
		if _, err := os.Stat(filepath.Join("/var/run/netns", ns)); err != nil {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	return nil
}

// checkHonest fails the test for every ok workload of r that is not on
// the host.
func checkHonest(t *testing.T, r gridtypes.Record, mounts []string) (ok int) {
	t.Helper()
	for _, w := range r.Deployment.Workloads {
		if w.Result == nil || w.Result.State != gridtypes.StateOk {
			continue
		}
		ok++
		if err := present(w, mounts); err != nil {
			t.Errorf("deployment %d: %s reads ok but is not there: %v", r.Deployment.ID, w.Name, err)
		}
	}
	return ok
}

// storageAndNetwork is a deployment of a disk, a volume and a network.
func storageAndNetwork(subnet int) gridtypes.Deployment {
	return gridtypes.Deployment{Workloads: []gridtypes.Workload{
		{Name: "disk", Type: gridtypes.ZMountType, Data: json.RawMessage(`{"size":16777216}`)},
		{Name: "vol", Type: gridtypes.VolumeType, Data: json.RawMessage(`{"size":67108864}`)},
		{Name: "net", Type: gridtypes.NetworkLightType, Data: json.RawMessage(fmt.Sprintf(`{"subnet":"10.%d.%d.0/24"}`, 90+rand.IntN(9), subnet))},
	}}
}

// TestRebootRestoresWorkloads: a node is stopped, and what a reboot loses
// is taken away (mounts, namespaces, workload processes); started again,
// it brings every workload back — or says which it could not — and the
// data written into a volume before is still there.
func TestRebootRestoresWorkloads(t *testing.T) {
	env := newE2E(t)
	// A public IPv4 pool on the node's own veth (a macvlan of it per
	// address), in a range of this test's own.
	pool := fmt.Sprintf("10.248.%d.", rand.IntN(250))
	n := env.hostingNode(t, "reboot", "--public-interface", env.vethRoot, "--public-ip", pool+"10/24", "--public-gateway", pool+"1")
	n.up(t)

	d := storageAndNetwork(1)
	d.Workloads = append(d.Workloads, gridtypes.Workload{Name: "public", Type: gridtypes.PublicIPv4Type, Data: json.RawMessage(`{}`)})
	id := n.deploy(t, d)
	r := n.settled(t, id)
	for _, w := range r.Deployment.Workloads {
		if w.Result.State != gridtypes.StateOk {
			t.Fatalf("%s: %s %s", w.Name, w.Result.State, w.Result.Message)
		}
	}
	vol, _ := r.Deployment.Get("vol")
	marker := filepath.Join(result(*vol)["path"].(string), "before-reboot")
	if err := os.WriteFile(marker, []byte("still here\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The reboot: the node stops, then mounts and namespaces go.
	if code := n.stop(t); code != 0 {
		t.Fatalf("zosd exited %d; log:\n%s", code, n.logTail())
	}
	for _, m := range mountsUnder(n.data) {
		if err := syscall.Unmount(m, 0); err != nil {
			t.Fatalf("unmount %s: %v", m, err)
		}
	}
	for _, w := range r.Deployment.Workloads {
		if ns, _ := result(w)["namespace"].(string); ns != "" {
			mustIP(t, "netns", "del", ns)
		}
	}

	n.up(t)
	r = n.settled(t, id)
	if ok := checkHonest(t, r, mountsUnder(n.data)); ok != len(r.Deployment.Workloads) {
		for _, w := range r.Deployment.Workloads {
			t.Logf("%s: %s %s", w.Name, w.Result.State, w.Result.Message)
		}
		t.Fatalf("%d of %d workloads ok after the reboot", ok, len(r.Deployment.Workloads))
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "still here\n" {
		t.Fatalf("the volume's data after the reboot: %q %v", b, err)
	}
	n.removeAll(t, id)
}

// removeAll deletes the deployments and checks that no mount is left.
func (n *workloadNode) removeAll(t *testing.T, ids ...uint64) {
	t.Helper()
	for _, id := range ids {
		if _, err := n.api.Delete(context.Background(), id); err != nil {
			t.Fatalf("delete %d: %v", id, err)
		}
	}
	for _, id := range ids {
		r := n.settled(t, id)
		for _, w := range r.Deployment.Workloads {
			if w.Result.State != gridtypes.StateDeleted {
				t.Errorf("deployment %d: %s is %s after the delete: %s", id, w.Name, w.Result.State, w.Result.Message)
			}
		}
	}
	if m := mountsUnder(n.data); len(m) != 0 {
		t.Errorf("mounts left after deleting every deployment: %v", m)
	}
}

// TestKillDuringDeployments: zosd and all its processes are killed with
// SIGKILL at random moments while deployments are processed; after each
// start every workload that reads ok is really there.
func TestKillDuringDeployments(t *testing.T) {
	env := newE2E(t)
	n := env.hostingNode(t, "kill")
	n.up(t)
	var ids []uint64
	for round := 1; round <= 4; round++ {
		ids = append(ids, n.deploy(t, storageAndNetwork(round)))
		time.Sleep(time.Duration(rand.IntN(600)) * time.Millisecond)
		n.killAll(t)
		n.up(t)
		// Mounts are read once every deployment settled: operations
		// interrupted by the kill go on after the API answers.
		var records []gridtypes.Record
		for _, id := range ids {
			records = append(records, n.settled(t, id))
		}
		mounts := mountsUnder(n.data)
		for _, r := range records {
			checkHonest(t, r, mounts)
		}
		if t.Failed() {
			t.Fatalf("round %d; log:\n%s", round, n.logTail())
		}
	}
	n.removeAll(t, ids...)
}
