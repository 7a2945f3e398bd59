package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/hub"
	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/internal/wstest"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/vmd"
	"github.com/grid4/grid4/oci/ocitest"
)

// TestMachinesFromAnImage is a user's path on a node started by zosd: a
// container image archive pushed to a hub by gridctl becomes a machine
// with a volume, on a network with a port forward, its console streamed
// by zlogs. The host reaches it through the forward; it keeps running
// across a restart of zosd, and boots again (keeping its volume) after a
// reboot. Once as a virtual machine (QEMU without KVM), once as a
// container.
func TestMachinesFromAnImage(t *testing.T) {
	e := newE2E(t)
	bin := filepath.Dir(e.zosd)
	build := exec.Command("go", "build", "-o", bin+"/", "github.com/grid4/grid4/cmd/gridctl", "github.com/grid4/grid4/cmd/g4init")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	h := startHub(t, e.dir)
	archive := ocitest.Archive(t, t.TempDir(), webImage())
	out, err := exec.Command(filepath.Join(bin, "gridctl"), "hub", "push-image", "tf/apps", "web", archive,
		"--hub", h.url, "--seed-file", h.seedFile).CombinedOutput()
	if err != nil {
		t.Fatalf("gridctl hub push-image: %v\n%s", err, out)
	}
	flistURL := ""
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "url" {
			flistURL = strings.TrimSpace(v)
		}
	}
	if !strings.HasPrefix(flistURL, h.url) {
		t.Fatalf("no flist URL in the output of push-image:\n%s", out)
	}
	for i, backend := range []string{"qemu-tcg", "container"} {
		t.Run(backend, func(t *testing.T) { runMachine(t, e, h, flistURL, backend, i) })
	}
}

// testHub is a hub on loopback with one publisher, tf.
type testHub struct {
	url      string
	key      keys.KeyPair
	seedFile string
}

func startHub(t *testing.T, dir string) testHub {
	t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	cfg := hub.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "hub")
	cfg.Publishers = []hub.Publisher{{Name: "tf", ID: hub.PublisherID("tf"), PublicKey: kp.Public().Key}}
	srv, err := hub.New(cfg, hub.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	seed := filepath.Join(dir, "publisher.seed")
	if err := keys.WriteSeedFile(seed, kp); err != nil {
		t.Fatal(err)
	}
	return testHub{url: ts.URL, key: kp, seedFile: seed}
}

// webImage is a busybox image whose entrypoint says hello on its console,
// counts its boots in /data and serves /www.
func webImage() ocitest.Image {
	start := `#!/bin/sh
echo "machine up: $GREETING"
echo boot >> /data/boots
exec httpd -f -p 80 -h /www
`
	layer := ocitest.Layer{
		"bin/busybox":    ocitest.FileFrom("/bin/busybox", 0o755),
		"bin/sh":         ocitest.Symlink("busybox"),
		"bin/httpd":      ocitest.Symlink("busybox"),
		"bin/start":      ocitest.Text(start, 0o755),
		"www/index.html": ocitest.Text("served from an image\n", 0o644),
		"data/.keep":     ocitest.Text("", 0o644),
	}
	return ocitest.Image{
		Layers: []ocitest.Layer{layer},
		Config: ocitest.Config{Entrypoint: []string{"/bin/start"}, Env: []string{"GREETING=from-image"}},
	}
}

// webMachine is the user's deployment: a network forwarding hostPort to
// the machine's port 80, a volume, the machine, its log stream.
func webMachine(subnet, hostPort int, flistURL, logs string) gridtypes.Deployment {
	ip := fmt.Sprintf("10.246.%d.5", subnet)
	nw, _ := json.Marshal(gridtypes.NetworkLightData{
		Subnet:       fmt.Sprintf("10.246.%d.0/24", subnet),
		PortForwards: []gridtypes.PortForward{{Protocol: "tcp", HostPort: uint16(hostPort), IP: ip, Port: 80}},
	})
	vm, _ := json.Marshal(gridtypes.ZMachineLightData{
		Flist:           flistURL,
		Env:             map[string]string{"GREETING": "from-workload"},
		ComputeCapacity: gridtypes.ComputeCapacity{CPU: 1, Memory: 256 * gridtypes.MiB},
		Network:         gridtypes.MachineNetwork{Interfaces: []gridtypes.MachineInterface{{Network: "net", IP: ip}}},
		Mounts:          []gridtypes.MachineMount{{Name: "data", Mountpoint: "/data"}},
	})
	zl, _ := json.Marshal(gridtypes.ZLogsData{ZMachine: "vm", Output: logs})
	return gridtypes.Deployment{Workloads: []gridtypes.Workload{
		{Name: "net", Type: gridtypes.NetworkLightType, Data: nw},
		{Name: "data", Type: gridtypes.VolumeType, Data: json.RawMessage(`{"size":104857600}`)},
		{Name: "vm", Type: gridtypes.ZMachineLightType, Data: vm},
		{Name: "logs", Type: gridtypes.ZLogsType, Data: zl},
	}}
}

func runMachine(t *testing.T, e *e2e, h testHub, flistURL, backend string, i int) {
	logs := wstest.New(t)
	n := e.hostingNode(t, "m"+strconv.Itoa(i),
		"--hub", h.url, "--upgrade-publisher-key", hex.EncodeToString(h.key.Public().Key), "--upgrade-first-check", "24h",
		"--machine-backends", backend, "--machine-kernel", machineKernel())
	// After the node stopped (cleanups run last-registered first): a
	// failed test leaves no machine running.
	t.Cleanup(func() { killWorkloads(n.data) })
	n.up(t)
	subnet, hostPort := rand.IntN(250)+1, 20000+rand.IntN(20000)
	id := n.deploy(t, webMachine(subnet, hostPort, flistURL, logs.URL("/vm")))
	r := allOK(t, n, id)
	vm, _ := r.Deployment.Get("vm")
	wantKind := map[bool]string{true: "container", false: "vm"}[backend == "container"]
	if res := result(*vm); res["backend"] != wantKind || (wantKind == "vm" && res["hypervisor"] != backend) {
		t.Fatalf("machine result %s", vm.Result.Data)
	}
	vol, _ := r.Deployment.Get("data")
	boots := filepath.Join(result(*vol)["path"].(string), "boots")

	logs.WaitFor(t, "machine up: from-workload", 2*time.Minute)
	url := fmt.Sprintf("http://%s:%d/index.html", e.rootIP, hostPort)
	fetchFrom(t, e.ns, url, "served from an image\n")
	countBoots(t, boots, 1)

	// zosd restarts (an upgrade, a crash): the machine runs on untouched.
	if code := n.stop(t); code != 0 {
		t.Fatalf("zosd exited %d; log:\n%s", code, n.logTail())
	}
	n.up(t)
	allOK(t, n, id)
	fetchFrom(t, e.ns, url, "served from an image\n")
	countBoots(t, boots, 1)

	// A reboot: processes, mounts and namespaces are gone; the machine
	// boots again with its volume, and its log stream carries on.
	if code := n.stop(t); code != 0 {
		t.Fatalf("zosd exited %d; log:\n%s", code, n.logTail())
	}
	reboot(t, n, r)
	n.up(t)
	allOK(t, n, id)
	logs.WaitFor(t, "machine up: from-workload", 2*time.Minute)
	fetchFrom(t, e.ns, url, "served from an image\n")
	countBoots(t, boots, 2)

	n.removeAll(t, id)
}

// allOK waits for deployment id to settle and fails t unless every
// workload is ok.
func allOK(t *testing.T, n *workloadNode, id uint64) gridtypes.Record {
	t.Helper()
	r := n.settled(t, id)
	for _, w := range r.Deployment.Workloads {
		if w.Result.State != gridtypes.StateOk {
			t.Fatalf("%s: %s %s\nlog:\n%s", w.Name, w.Result.State, w.Result.Message, n.logTail())
		}
	}
	return r
}

// fetchFrom GETs url from inside namespace ns until it serves want (a
// machine under TCG takes seconds to boot).
func fetchFrom(t *testing.T, ns, url, want string) {
	t.Helper()
	var got []byte
	var err error
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		got, err = exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "5", url).Output()
		if err == nil && string(got) == want {
			return
		}
	}
	t.Fatalf("GET %s from %s: %q, %v", url, ns, got, err)
}

// countBoots waits until the machine counted want boots in its volume,
// and fails t when it counted more.
func countBoots(t *testing.T, file string, want int) {
	t.Helper()
	var n int
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		b, _ := os.ReadFile(file)
		n = bytes.Count(b, []byte("boot\n"))
		if n >= want {
			break
		}
	}
	if n != want {
		t.Fatalf("the volume counts %d boots, want %d", n, want)
	}
}

// reboot takes away what a reboot of the host would: every process of
// the node's workloads, its mounts and its namespaces.
func reboot(t *testing.T, n *workloadNode, r gridtypes.Record) {
	t.Helper()
	killWorkloads(n.data)
	for _, m := range mountsUnder(n.data) {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Fatalf("unmount %s: %v", m, err)
		}
	}
	for _, w := range r.Deployment.Workloads {
		if ns, _ := result(w)["namespace"].(string); ns != "" {
			mustIP(t, "netns", "del", ns)
		}
	}
}

// machineKernel is the kernel machines boot: $GRID4_MACHINE_KERNEL, else
// where scripts/machine-kernel.sh puts it.
func machineKernel() string {
	if k := os.Getenv("GRID4_MACHINE_KERNEL"); k != "" {
		return k
	}
	return vmd.DefaultKernel
}

// killWorkloads kills what runs from or in data: the node's hypervisors
// and file servers (data is in their command lines) and containers (in
// mount namespaces of their own, on a root mounted from data).
func killWorkloads(data string) {
	process.KillUsing(data)
	time.Sleep(200 * time.Millisecond) // the killed release their mounts
}
