package contd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/hosttest"
	"github.com/grid4/grid4/node/internal/iproute"
)

// applets are the busybox programs the test root file systems offer.
var applets = []string{"sh", "httpd", "sleep", "cat", "echo", "dd", "hostname", "ls", "touch"}

// testRuntime is the runtime the tests use: runc, or the one named by
// GRID4_TEST_CONTD_RUNTIME (crun).
func testRuntime() string {
	if r := os.Getenv("GRID4_TEST_CONTD_RUNTIME"); r != "" {
		return r
	}
	return DefaultRuntime
}

// needHost fails the test when the host lacks what make test installs
// (runc, a static busybox), and skips it when not root: containers and
// namespaces need root.
func needHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("containers need root")
	}
	for _, tool := range []string{testRuntime(), "ip", "blkid", "mkfs.ext4", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test-services installs it)", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("/bin/busybox is not installed (package busybox-static; make test-services installs it)")
	}
}

// rootfs makes a root file system of the static busybox, with a web page
// in /www.
func rootfs(t testing.TB) string {
	t.Helper()
	root := hosttest.BusyboxRoot(t, applets, "www", "tmp", "data")
	if err := os.WriteFile(filepath.Join(root, "www", "index.html"), []byte("served by a container\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// newService returns a salted service whose containers are stopped at
// the end of the test.
func newService(t testing.TB) *Service {
	t.Helper()
	needHost(t)
	s, err := New(Config{Dir: t.TempDir(), Runtime: testRuntime(), Salt: fmt.Sprintf("t%x", rand.Uint64()), StopGrace: 2 * time.Second})
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

// spec is a container of a fresh busybox root running script.
func spec(t testing.TB, id, script string) Spec {
	t.Helper()
	return Spec{ID: id, Root: rootfs(t), Args: []string{"/bin/sh", "-c", script}, Log: filepath.Join(t.TempDir(), "log")}
}

// eventually retries f until it succeeds or the deadline passes (things a
// container does after Start returns take their time).
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	hosttest.Eventually(t, 15*time.Second, what, f)
}

// logHas waits until the log of sp contains want.
func logHas(t testing.TB, sp Spec, want string) {
	t.Helper()
	eventually(t, "log "+sp.Log, func() error {
		b, _ := os.ReadFile(sp.Log)
		if !strings.Contains(string(b), want) {
			return fmt.Errorf("no %q in %q", want, b)
		}
		return nil
	})
}

func status(t testing.TB, s *Service, id string) State {
	t.Helper()
	st, err := s.State(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// cgroupControllers are the v1 hierarchies a container has a cgroup in.
var cgroupControllers = []string{"memory", "cpu", "cpuacct", "pids", "freezer", "devices", "blkio", "cpuset"}

// assertGone checks that nothing of container id is left on the host.
func assertGone(t testing.TB, s *Service, id string) {
	t.Helper()
	c := s.container(id)
	if _, err := s.State(context.Background(), id); !errors.Is(err, ErrNotFound) {
		t.Errorf("State after Stop: %v, want not_found", err)
	}
	if iproute.NetnsExists(c.netns) {
		t.Errorf("namespace %s left", c.netns)
	}
	if iproute.LinkExists(c.name) {
		t.Errorf("veth %s left", c.name)
	}
	for _, p := range []string{c.dir, filepath.Join(runtimeRoot(s.c.Dir), c.name)} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left", p)
		}
	}
	dirs := []string{filepath.Join(cgroupRoot, s.cgroup(c))}
	if !s.cg.v2 {
		dirs = nil
		for _, ctl := range cgroupControllers {
			dirs = append(dirs, filepath.Join(cgroupRoot, ctl, s.cgroup(c)))
		}
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("cgroup %s left", d)
		}
	}
}
