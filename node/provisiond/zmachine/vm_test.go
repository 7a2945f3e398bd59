package zmachine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/internal/hosttest"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/vmd"
)

// vmManager is a manager running machines as virtual machines with an
// in-process vmd allowed only QEMU without KVM (what every host has).
func (e *env) vmManager() (*Manager, *vmd.Service) {
	e.t.Helper()
	for _, tool := range []string{"qemu-system-x86_64", "/usr/lib/qemu/virtiofsd"} {
		if _, err := exec.LookPath(tool); err != nil {
			e.t.Fatalf("%s is not installed (make test-services installs it)", tool)
		}
	}
	if _, err := os.Stat(hosttest.MachineKernel()); err != nil {
		e.t.Fatalf("no machine kernel (make test-services runs scripts/machine-kernel.sh): %v", err)
	}
	svc, err := vmd.New(vmd.Config{
		Dir: filepath.Join(e.dir, "vmd"), Kernel: hosttest.MachineKernel(), Init: hosttest.GuestInit(e.t),
		Backends: []string{vmd.QEMUTCG}, Salt: e.salt, StopGrace: 3 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		list, _ := svc.List(context.Background())
		for _, st := range list {
			_ = svc.Stop(context.Background(), st.ID)
		}
	})
	m, err := New(Config{
		Dir: filepath.Join(e.dir, "machines"), LogDir: filepath.Join(e.dir, "logs"),
		Backends: []Kind{VM, Container}, Machines: VMDService{svc}, Containers: e.conts, Flists: e.flists,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return m, svc
}

// TestVMMachine runs a machine from a container image as a virtual
// machine (QEMU, TCG): the workload's entrypoint and env, reachable on
// its network, its console in the log; paused and resumed; given more
// memory in place, then less by a restart; after a
// reboot (machine and mount gone) Restore boots it again with what it
// wrote; Deprovision leaves nothing.
func TestVMMachine(t *testing.T) {
	e := newEnv(t)
	web := e.publishWeb()
	m, svc := e.vmManager()
	ctx := ctxT(t)

	tk := e.machine("vm", web, `sh -c 'echo "up: $GREETING $KEEP in $(pwd)"; echo written > /www/mine.html; exec httpd -f -p 80 -h /www'`, "10.77.1.30")
	t.Cleanup(func() { _ = m.Deprovision(context.Background(), tk) })
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(Result); r.Backend != VM || r.Hypervisor != vmd.QEMUTCG || r.IPs[0] != "10.77.1.30" {
		t.Fatalf("result %+v", r)
	}
	e.getVM(t, m, tk, "10.77.1.30", "/mine.html", "written\n")
	waitFor(t, "the console line", func() bool {
		b, _ := os.ReadFile(m.Console(tk))
		return strings.Contains(string(b), "up: from-workload image in /www")
	})

	if err := m.Pause(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if st, _ := svc.State(ctx, tk.ID()); st.Status != vmd.Paused {
		t.Fatalf("paused machine: %s", st.Status)
	}
	if err := m.Resume(ctx, tk); err != nil {
		t.Fatal(err)
	}

	// More memory is given in place (the machine runs on: the same QEMU
	// process); less takes a restart.
	before, _ := svc.State(ctx, tk.ID())
	grown := tk
	var d gridtypes.ZMachineLightData
	if err := json.Unmarshal(tk.Workload.Data, &d); err != nil {
		t.Fatal(err)
	}
	d.ComputeCapacity.Memory += 128 * gridtypes.MiB
	grown.Workload.Data, _ = json.Marshal(d)
	if _, err := m.Update(ctx, grown); err != nil {
		t.Fatal(err)
	}
	if st, _ := svc.State(ctx, tk.ID()); st.Status != vmd.Running || st.Pid != before.Pid {
		t.Fatalf("more memory restarted the machine: %+v, was %+v", st, before)
	}
	if _, err := m.Update(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if st, _ := svc.State(ctx, tk.ID()); st.Status != vmd.Running || st.Pid == before.Pid {
		t.Fatalf("less memory did not restart the machine: %+v, was %+v", st, before)
	}
	e.getVM(t, m, tk, "10.77.1.30", "/mine.html", "written\n")

	// A reboot: the machine and its root mount are gone, the writable
	// layer stays. Restore boots it again with what it wrote.
	if err := svc.Stop(ctx, tk.ID()); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(m.root(tk), unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(ctx, tk); err != nil {
		t.Fatal(err)
	}
	e.getVM(t, m, tk, "10.77.1.30", "/mine.html", "written\n")
	if st, _ := svc.State(ctx, tk.ID()); st.Status != vmd.Running {
		t.Fatalf("restored machine: %+v", st)
	}

	for range 2 {
		if err := m.Deprovision(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(m.dir(tk)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("machine directory left: %v", err)
	}
	if _, err := svc.State(ctx, tk.ID()); !errors.Is(err, vmd.ErrNotFound) {
		t.Fatalf("machine left: %v", err)
	}
	if ok, _ := mountinfo.IsMountPoint(m.root(tk)); ok {
		t.Fatal("root mount left")
	}
}

// getVM waits (a machine boots for seconds under TCG; until then its
// address does not answer at all) for path on ip to serve want.
func (e *env) getVM(t *testing.T, m *Manager, tk provisiond.Task, ip, path, want string) {
	t.Helper()
	var got string
	var err error
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if got, err = e.get(ip, path); err == nil && got == want {
			return
		}
	}
	console, _ := os.ReadFile(m.Console(tk))
	t.Fatalf("GET %s%s: %q, %v; console:\n%s", ip, path, got, err, console)
}
