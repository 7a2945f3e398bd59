package gridctl

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
	"github.com/grid4/grid4/node/provisiond/volume"
	"github.com/grid4/grid4/node/provisiond/zmount"
	"github.com/grid4/grid4/node/storaged/storagetest"
	"github.com/grid4/grid4/node/zosapi"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
	"github.com/grid4/grid4/store"
)

// deployRig is a registrar and a node (engine and zos-api-light) in this
// process, and identities to run gridctl with.
type deployRig struct {
	t         *testing.T
	registrar string
	node      string
	dir       string
	nodeDir   string
}

// pausable stands in for machines: it records nothing and can pause.
type pausable struct{}

func (pausable) Provision(context.Context, provisiond.Task) (any, error) { return nil, nil }
func (pausable) Deprovision(context.Context, provisiond.Task) error      { return nil }
func (pausable) Pause(context.Context, provisiond.Task) error            { return nil }
func (pausable) Resume(context.Context, provisiond.Task) error           { return nil }

// newDeployRig starts the registrar and a node with real zmount, volume
// and (as root) network managers, and machines (nil: none).
func newDeployRig(t *testing.T, machines provisiond.Manager) *deployRig {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin = 0, 0
	rs, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rts := httptest.NewServer(rs.Handler())
	t.Cleanup(rts.Close)

	dir := t.TempDir()
	storage := storagetest.Open(t, filepath.Join(dir, "storage"))
	zm, err := zmount.New(storage)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := volume.New(volume.Config{Storage: storage, Mode: volume.Accounting})
	if err != nil {
		t.Fatal(err)
	}
	managers := map[gridtypes.WorkloadType]provisiond.Manager{gridtypes.ZMountType: zm, gridtypes.VolumeType: vol}
	if os.Geteuid() == 0 {
		nets, err := netlightd.New(netlightd.Config{Dir: filepath.Join(dir, "netlight"), Salt: dir})
		if err != nil {
			t.Fatal(err)
		}
		if managers[gridtypes.NetworkLightType], err = netlight.New(netlight.Config{Networks: nets}); err != nil {
			t.Fatal(err)
		}
	} else {
		managers[gridtypes.NetworkLightType] = pausable{}
	}
	if machines != nil {
		managers[gridtypes.ZMachineLightType] = machines
	}
	rc, err := client.New(rts.URL)
	if err != nil {
		t.Fatal(err)
	}
	tk := zosapi.NewTwinKeyCache(rc, zosapi.KeyCacheConfig{})
	e, err := provisiond.Open(provisiond.Config{Dir: filepath.Join(dir, "engine"), Managers: managers, Keys: tk,
		Capacity: provisiond.FixedCapacity{CRU: 8, MRU: 16 * gridtypes.GiB, SRU: 100 * gridtypes.GiB}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zosapi.New(zosapi.Config{Engine: e, Keys: tk, NodeVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	nts := httptest.NewServer(srv.Handler())
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx) }()
	t.Cleanup(func() {
		nts.Close()
		cancel()
		<-done
		e.Close()
	})
	return &deployRig{t: t, registrar: rts.URL, node: nts.URL, dir: t.TempDir(), nodeDir: dir}
}

// identity returns the environment of a new identity with an account
// (GRID_TWIN set to its twin).
func (r *deployRig) identity() map[string]string {
	r.t.Helper()
	kp, err := keys.Generate(keys.Sr25519)
	if err != nil {
		r.t.Fatal(err)
	}
	c, _ := client.New(r.registrar, client.WithIdentity(kp, 0))
	acc, err := c.CreateAccount(context.Background(), client.AccountOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return map[string]string{MnemonicEnv: "0x" + hex.EncodeToString(kp.Seed()), RegistrarEnv: r.registrar, NodeURLEnv: r.node, NoColorEnv: "1",
		TwinEnv: strconv.FormatUint(acc.TwinID, 10)}
}

// run runs gridctl in-process with env and returns the exit code and
// outputs.
func (r *deployRig) run(env map[string]string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := Run(context.Background(), args, Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }})
	return code, out.String(), errOut.String()
}

func (r *deployRig) ok(env map[string]string, args ...string) string {
	r.t.Helper()
	code, out, errOut := r.run(env, args...)
	if code != 0 {
		r.t.Fatalf("gridctl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (r *deployRig) file(name, content string) string {
	p := filepath.Join(r.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		r.t.Fatal(err)
	}
	return p
}

func TestDeployCommands(t *testing.T) {
	r := newDeployRig(t, pausable{})
	alice, bob := r.identity(), r.identity()
	file := r.file("app.json", `{
  "description": "app",
  "workloads": [
    {"name": "vm", "type": "zmachine-light", "data": {"flist": "https://hub.grid.tf/tf-official-apps/base:latest.flist", "compute_capacity": {"cpu": 1, "memory": 536870912}, "network": {"interfaces": [{"network": "net", "ip": "10.66.0.2"}]}, "mounts": [{"name": "disk", "mountpoint": "/data"}]}},
    {"name": "net", "type": "network-light", "data": {"subnet": "10.66.0.0/24"}},
    {"name": "disk", "type": "zmount", "data": {"size": 10485760}}
  ]
}`)
	// A test that fails half-way still deletes the deployment, so that its
	// network (a namespace and links on this host, as root) goes with it;
	// this runs before the rig stops the node.
	t.Cleanup(func() { r.run(alice, "deployment", "delete", "1", "--wait") })
	out := r.ok(alice, "deploy", file, "--wait", "--scheme", "sr25519")
	for _, want := range []string{"deployment:", "version:      0", "vm        zmachine-light  0        ok", "disk      zmount          0        ok"} {
		if !strings.Contains(out, want) {
			t.Fatalf("deploy output lacks %q:\n%s", want, out)
		}
	}
	out = r.ok(alice, "deployment", "list")
	if !strings.Contains(out, "3 ok") || !strings.Contains(out, "app") {
		t.Fatalf("list:\n%s", out)
	}

	// Update: a bigger disk; only the disk changes version.
	r.file("app.json", strings.Replace(mustRead(t, file), `"size": 10485760`, `"size": 20971520`, 1))
	out = r.ok(alice, "deployment", "update", "1", file, "--wait", "-o", "json")
	var rec gridtypes.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("update -o json: %v\n%s", err, out)
	}
	disk, _ := rec.Deployment.Get("disk")
	vm, _ := rec.Deployment.Get("vm")
	if rec.Deployment.Version != 1 || disk.Version != 1 || vm.Version != 0 || disk.Result.State != gridtypes.StateOk {
		t.Fatalf("after update %+v", rec)
	}

	out = r.ok(alice, "deployment", "pause", "1", "--wait")
	if !strings.Contains(out, "vm        zmachine-light  0        paused") {
		t.Fatalf("pause:\n%s", out)
	}
	out = r.ok(alice, "deployment", "resume", "1", "--wait")
	if !strings.Contains(out, "vm        zmachine-light  0        ok") {
		t.Fatalf("resume:\n%s", out)
	}

	// Bob sees nothing of it and changes nothing.
	code, _, errOut := r.run(bob, "deployment", "show", "1")
	if code != 1 || !strings.Contains(errOut, "node refused: deployment belongs to another twin") {
		t.Fatalf("bob show: %d %s", code, errOut)
	}
	code, _, errOut = r.run(bob, "deployment", "delete", "1")
	if code != 1 || !strings.Contains(errOut, "another twin") {
		t.Fatalf("bob delete: %d %s", code, errOut)
	}
	if out := r.ok(bob, "deployment", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("bob list: %s", out)
	}

	out = r.ok(alice, "deployment", "delete", "1", "--wait")
	if !strings.Contains(out, "deleted:      yes") {
		t.Fatalf("delete:\n%s", out)
	}
	out = r.ok(alice, "deployment", "changes", "1")
	for _, want := range []string{"provision    ok", "update       ok", "pause        paused", "deprovision  deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("changes lack %q:\n%s", want, out)
		}
	}
}

func TestDeployErrors(t *testing.T) {
	r := newDeployRig(t, nil)
	alice := r.identity()
	noNode := map[string]string{MnemonicEnv: alice[MnemonicEnv], RegistrarEnv: r.registrar}
	good := r.file("disk.json", `{"workloads":[{"name":"disk","type":"zmount","data":{"size":1048576}}]}`)
	cases := []struct {
		env  map[string]string
		args []string
		want string
	}{
		{noNode, []string{"deploy", good}, "gridctl: no node: pass --node ID (looked up on the registrar) or --node-url URL"},
		{alice, []string{"deploy", r.file("bad.json", `{"workloads":[{"name":"disk","type":"zmount","data":{"size":1}}]}`)}, "workloads[0].data.size: must be 1 MiB to 16 TiB"},
		{alice, []string{"deploy", r.file("unknown.json", `{"workloads":[{"name":"k","type":"k8s","data":{}}]}`)}, `unknown workload type "k8s"`},
		{alice, []string{"deploy", r.file("typo.json", `{"workload":[]}`)}, `unknown member "workload"`},
		{alice, []string{"deploy", r.file("withid.json", `{"id":4,"workloads":[{"name":"disk","type":"zmount","data":{"size":1048576}}]}`)}, "change an existing deployment with 'gridctl deployment update 4"},
		{alice, []string{"deploy", r.file("huge.json", `{"workloads":[{"name":"disk","type":"zmount","data":{"size":1099511627776}}]}`)}, "node refused: not enough capacity: sru: need 1099511627776"},
		{alice, []string{"deploy", r.file("ipv4.json", `{"workloads":[{"name":"net","type":"network-light","data":{"subnet":"10.0.0.0/24"}},{"name":"x","type":"ipv4","data":{}}]}`)}, "this node does not run ipv4 workloads"},
		{alice, []string{"deployment", "show", "77"}, "node refused: deployment not found: 77"},
		{alice, []string{"deployment", "show", "x"}, `deployment id "x"`},
		{map[string]string{NodeURLEnv: r.node, MnemonicEnv: alice[MnemonicEnv]}, []string{"deployment", "list"}, "no twin: pass --twin ID"},
	}
	for _, c := range cases {
		code, out, errOut := r.run(c.env, c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("gridctl %s: exit %d\n%s%s\nwant %q", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	// A twin the registrar does not know is refused by the node (401).
	code, _, errOut := r.run(map[string]string{NodeURLEnv: r.node, MnemonicEnv: alice[MnemonicEnv]}, "deployment", "list", "--twin", "999")
	if code != 1 || !strings.Contains(errOut, "node refused the signature of twin 999") {
		t.Fatalf("unknown twin: %d %s", code, errOut)
	}
	// Nothing was deployed.
	if out := r.ok(alice, "deployment", "list", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("list: %s", out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// registerNode registers a node on the rig's registrar, publishing eps as
// its API endpoints, and returns its id.
func (r *deployRig) registerNode(eps ...string) uint64 {
	r.t.Helper()
	ctx := context.Background()
	newClient := func() *client.Client {
		kp, err := keys.Generate(keys.Ed25519)
		if err != nil {
			r.t.Fatal(err)
		}
		c, _ := client.New(r.registrar, client.WithIdentity(kp, 0))
		if _, err := c.EnsureAccount(ctx, client.AccountOptions{}); err != nil {
			r.t.Fatal(err)
		}
		return c
	}
	farm, err := newClient().CreateFarm(ctx, client.NewFarm{Name: "farm" + strings.ToLower(rand.Text()[:12])})
	if err != nil {
		r.t.Fatal(err)
	}
	id, err := newClient().RegisterNode(ctx, api.RegisterNodeRequest{
		FarmID:       farm,
		Resources:    api.Resources{CRU: 8, MRU: 16 * gridtypes.GiB, SRU: 100 * gridtypes.GiB},
		Interfaces:   []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2/24"}}},
		APIEndpoints: eps,
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return id
}

// TestDeployByNodeID: --node ID (or GRID_NODE) finds the node's API on the
// registrar, the first endpoint that answers when it publishes several;
// every way of getting the node wrong gets its own one-line error.
func TestDeployByNodeID(t *testing.T) {
	r := newDeployRig(t, nil)
	alice := r.identity()
	delete(alice, NodeURLEnv)
	node := r.registerNode("http://"+closedPort(t)+"/api/v1/rpc", r.node+"/api/v1/rpc")
	bare := r.registerNode()
	nid := strconv.FormatUint(node, 10)
	good := r.file("disk.json", `{"workloads":[{"name":"disk","type":"zmount","data":{"size":1048576}}]}`)

	out := r.ok(alice, "deploy", good, "--node", nid, "--wait")
	if !strings.Contains(out, "disk      zmount  0        ok") {
		t.Fatalf("deploy --node %s:\n%s", nid, out)
	}
	// gridctl made the node contract the deployment runs under.
	if !regexp.MustCompile(`(?m)^contract:\s+1$`).MatchString(out) {
		t.Fatalf("deploy --node %s names no contract:\n%s", nid, out)
	}
	rc, _ := client.New(r.registrar)
	if k, err := rc.Contract(context.Background(), 1); err != nil || k.NodeID != node || k.Resources.SRU != 1048576 || k.State != api.StateActive {
		t.Fatalf("contract 1: %+v %v", k, err)
	}
	// An update points the contract at the new version first.
	bigger := r.file("disk2.json", `{"workloads":[{"name":"disk","type":"zmount","data":{"size":2097152}}]}`)
	out = r.ok(alice, "deployment", "update", "1", bigger, "--node", nid, "--wait", "-o", "json")
	var rec gridtypes.Record
	if err := json.Unmarshal([]byte(out), &rec); err != nil {
		t.Fatalf("update -o json: %v\n%s", err, out)
	}
	hash, _ := rec.Deployment.HashHex()
	if k, err := rc.Contract(context.Background(), 1); err != nil || k.DeploymentHash != hash || k.Resources.SRU != 2097152 || rec.Deployment.ContractID != 1 {
		t.Fatalf("contract 1 after the update: %+v %v (deployment's hash %s, contract %d)", k, err, hash, rec.Deployment.ContractID)
	}
	withEnv := map[string]string{NodeEnv: nid}
	for k, v := range alice {
		withEnv[k] = v
	}
	for _, args := range [][]string{{"deployment", "list"}, {"deployment", "show", "1"}, {"deployment", "changes", "1"}} {
		if out := r.ok(withEnv, args...); !strings.Contains(out, "disk") && !strings.Contains(out, "1 ok") || strings.Contains(out, "error") {
			t.Errorf("gridctl %s with %s:\n%s", strings.Join(args, " "), NodeEnv, out)
		}
	}
	// A flag wins over the variables.
	r.ok(map[string]string{NodeEnv: "not-an-id", NodeURLEnv: "x", MnemonicEnv: alice[MnemonicEnv], RegistrarEnv: r.registrar, TwinEnv: alice[TwinEnv]},
		"deployment", "list", "--node", nid)

	noRegistrar := map[string]string{MnemonicEnv: alice[MnemonicEnv], TwinEnv: alice[TwinEnv]}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{alice, []string{"deployment", "list", "--node", "999"}, "gridctl: node 999 is not registered on the registrar at " + r.registrar + "\n"},
		{alice, []string{"deployment", "list", "--node", strconv.FormatUint(bare, 10)},
			"gridctl: node " + strconv.FormatUint(bare, 10) + " publishes no zos-api-light endpoint on the registrar (it runs an older zosd, or cannot tell its address): give its URL with --node-url\n"},
		{alice, []string{"deployment", "list", "--node", nid, "--node-url", r.node}, "gridctl: both --node and --node-url given: pass one (the node's id or its URL)\n"},
		{map[string]string{NodeEnv: nid, NodeURLEnv: r.node, MnemonicEnv: alice[MnemonicEnv]}, []string{"deployment", "list"},
			"gridctl: both GRID_NODE and GRID_NODE_URL given: pass one (the node's id or its URL)\n"},
		{alice, []string{"deploy", good, "--node", r.node}, `gridctl: --node "` + r.node + `": want a node id; give a URL with --node-url` + "\n"},
		{alice, []string{"deployment", "pause", "1", "--node", "0"}, `gridctl: --node "0": want a node id (a positive whole number)` + "\n"},
		{noRegistrar, []string{"deployment", "delete", "1", "--node", nid}, "gridctl: node " + nid + ": pass --registrar URL (or set GRID_REGISTRAR) to look up its API, or give --node-url\n"},
	} {
		code, out, errOut := r.run(c.env, c.args...)
		if code != 1 || errOut != c.want || out != "" {
			t.Errorf("gridctl %s: exit %d\nstdout %q\nstderr %q\nwant   %q", strings.Join(c.args, " "), code, out, errOut, c.want)
		}
	}
	// The node is unreachable at every endpoint it published: the message
	// names the node and the URL tried.
	down := r.registerNode("http://" + closedPort(t) + "/api/v1/rpc")
	code, _, errOut := r.run(alice, "deployment", "list", "--node", strconv.FormatUint(down, 10))
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("(node %d): connection refused", down)) {
		t.Errorf("unreachable node: %d %q", code, errOut)
	}
}

func TestResultSummary(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"path":"/p/v","size":1073741824,"enforcement":"loop-ext4"}`, "enforcement=loop-ext4 path=/p/v size=1073741824"},
		{`{"backend":"vm","hypervisor":"qemu-tcg","ips":["10.42.1.5","10.42.2.5"],"nested":{"a":1},"empty":""}`, "ips=10.42.1.5,10.42.2.5 backend=vm hypervisor=qemu-tcg"},
		// Addresses first, so that a long console path cuts something else.
		{`{"backend":"vm","console":"/var/lib/grid4/node/logs/42-1-vm.log","hypervisor":"qemu-tcg","ips":["10.42.1.5"],"public_ip":"198.51.100.10/24"}`,
			"ips=10.42.1.5 public_ip=198.51.100.10/24 backend=vm console=/var/lib/grid4/node/logs/42-1-vm.log hy…"},
		{`{"ip":"198.51.100.10/24","gateway":"198.51.100.1","namespace":"g4i-x"}`, "ip=198.51.100.10/24 gateway=198.51.100.1 namespace=g4i-x"},
		{`{"ok":true,"mixed":[1,{"x":2}]}`, "ok=true"},
		{`null`, ""},
		{`not json`, ""},
	} {
		if got := resultSummary(json.RawMessage(c.in)); got != c.want {
			t.Errorf("resultSummary(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestResultSummaryIsBounded(t *testing.T) {
	got := resultSummary(json.RawMessage(`{"path":"/` + strings.Repeat("x", 300) + `"}`))
	if r := []rune(got); len(r) != maxSummary || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "path=/xxx") {
		t.Fatalf("summary of %d runes: %q", len(r), got)
	}
}
