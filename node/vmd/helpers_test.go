package vmd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/hosttest"
	"github.com/grid4/grid4/node/internal/iproute"
)

// testInit is the guest init the tests boot, built by TestMain.
var testInit string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "g4init-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Built as make build does (no CGO_ENABLED=0): vmd's own check that
	// it is static guards the guest package's imports.
	testInit = filepath.Join(dir, InitName)
	if out, err := exec.Command("go", "build", "-o", testInit, "github.com/grid4/grid4/cmd/g4init").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building g4init: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testKernel is the machine kernel (hosttest.MachineKernel).
func testKernel() string { return hosttest.MachineKernel() }

// applets are the busybox programs the test root file systems offer.
var applets = []string{"sh", "httpd", "sleep", "cat", "echo", "hostname", "ls", "touch", "pwd", "poweroff", "nproc", "awk", "ip"}

// needHost fails the test when the host lacks what make test installs
// (QEMU, virtiofsd, the machine kernel, a static busybox), and skips it
// when not root: TAP devices, bridges and virtiofsd need root.
func needHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("virtual machines need root")
	}
	for _, tool := range []string{"qemu-system-x86_64", "ip", "blkid", "mkfs.ext4", "curl", debianVirtioFSD} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test-services installs it)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("/bin/busybox is not installed (package busybox-static; make test-services installs it)")
	}
	if _, err := os.Stat(testKernel()); err != nil {
		t.Fatalf("no machine kernel at %s (make test-services runs scripts/machine-kernel.sh)", testKernel())
	}
}

// rootfs makes a root file system of the static busybox, with a web page
// in /www.
func rootfs(t testing.TB) string {
	t.Helper()
	root := hosttest.BusyboxRoot(t, applets, "www", "tmp", "etc")
	if err := os.WriteFile(filepath.Join(root, "www", "index.html"), []byte("served by a machine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// config is a salted configuration for the test machines.
func config(t testing.TB) Config {
	return Config{
		Dir: t.TempDir(), Kernel: testKernel(), Init: testInit, Backends: []string{QEMUKVM, QEMUTCG},
		Salt: fmt.Sprintf("t%x", rand.Uint64()), StopGrace: 6 * time.Second,
	}
}

// newService returns a service on c whose machines are stopped at the
// end of the test.
func newService(t testing.TB, c Config) *Service {
	t.Helper()
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		list, _ := s.List(context.Background())
		for _, st := range list {
			if err := s.Stop(context.Background(), st.ID); err != nil {
				t.Errorf("cleanup: stop %s: %v", st.ID, err)
			}
		}
	})
	return s
}

// spec is a machine of a fresh busybox root running script.
func spec(t testing.TB, id, script string) Spec {
	t.Helper()
	return Spec{ID: id, Root: rootfs(t), Args: []string{"sh", "-c", script}, Memory: 192 << 20, Console: filepath.Join(t.TempDir(), "console.log")}
}

// eventually retries f until it succeeds or the deadline passes (a boot
// under TCG takes seconds, more on a busy host).
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	hosttest.Eventually(t, 90*time.Second, what, f)
}

// consoleHas waits until the console of sp contains each of want.
func consoleHas(t testing.TB, sp Spec, want ...string) {
	t.Helper()
	eventually(t, "console "+sp.Console, func() error {
		out := console(t, sp)
		for _, w := range want {
			if !strings.Contains(out, w) {
				return fmt.Errorf("no %q in …%q", w, out[max(0, len(out)-3000):])
			}
		}
		return nil
	})
}

// console is what sp's console shows so far, lines ending in LF (the
// guest's tty ends them with CR LF).
func console(t testing.TB, sp Spec) string {
	t.Helper()
	b, _ := os.ReadFile(sp.Console)
	return strings.ReplaceAll(string(b), "\r\n", "\n")
}

func state(t testing.TB, s *Service, id string) State {
	t.Helper()
	st, err := s.State(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// assertGone checks that nothing of machine id is left on the host.
func assertGone(t testing.TB, s *Service, id string, pids ...int) {
	t.Helper()
	m := s.machine(id)
	if _, err := s.State(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("State after Stop: %v, want not_found", err)
	}
	for i := range MaxNICs {
		if iproute.LinkExists(m.tap(i)) {
			t.Errorf("TAP %s left", m.tap(i))
		}
	}
	if _, err := os.Stat(m.dir); err == nil {
		t.Errorf("%s left", m.dir)
	}
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), m.dir) {
			t.Errorf("process %d (%q) left", pid, b)
		}
	}
}

// machinePids are the processes whose command line names m's directory.
func machinePids(t testing.TB, s *Service, id string) []int {
	t.Helper()
	m := s.machine(id)
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), m.dir+"/") {
			var pid int
			fmt.Sscanf(filepath.Base(filepath.Dir(p)), "%d", &pid)
			pids = append(pids, pid)
		}
	}
	return pids
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
