package contd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/grid4/grid4/node/internal/hosttest"
)

// A container on a network serves on its address, reachable from another
// namespace on the bridge; its output lands in its log; Stop leaves
// nothing behind.
func TestContainerServesOnItsNetwork(t *testing.T) {
	s := newService(t)
	l := hosttest.NewLAN(t, 211)
	ctx := context.Background()
	sp := spec(t, "1-1-web", `echo "hello from $(hostname)"; echo "oops" >&2; exec httpd -f -p 80 -h /www`)
	sp.Network = &Network{Bridge: l.Bridge, IP: l.Addr(5), Gateway: l.Addr(1).Addr(), MAC: "02:00:00:aa:bb:cc"}
	sp.CPU, sp.Memory = 1, 64<<20
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	c := s.container(sp.ID)
	short := strings.TrimPrefix(c.name, NamePrefix)
	logHas(t, sp, "hello from "+short+"\noops\n")

	url := fmt.Sprintf("http://%s/", l.Addr(5).Addr())
	eventually(t, "fetch "+url, func() error {
		out, err := l.Fetch(url)
		if err == nil && out != "served by a container\n" {
			return fmt.Errorf("got %q", out)
		}
		return err
	})
	if out := hosttest.Sh(t, "ip", "-n", c.netns, "link", "show", "dev", Eth); !strings.Contains(out, "02:00:00:aa:bb:cc") {
		t.Errorf("eth0 has not the spec's MAC:\n%s", out)
	}
	if out := hosttest.Sh(t, "ip", "-n", c.netns, "route", "show", "default"); !strings.Contains(out, "via "+l.Addr(1).Addr().String()) {
		t.Errorf("default route: %q", out)
	}

	st := status(t, s, sp.ID)
	if st.Status != Running || st.Pid == 0 || st.Started.IsZero() || st.Log != sp.Log || st.OOMKilled {
		t.Errorf("state %+v", st)
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != sp.ID {
		t.Errorf("List = %+v, %v", list, err)
	}
	stats, err := s.Stats(ctx, sp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.CPUTime == 0 || stats.Memory == 0 || stats.MemoryLimit != 64<<20 || stats.Pids != 1 {
		t.Errorf("stats %+v", stats)
	}
	if !s.cg.v2 {
		quota, err := readUint(s.cg.file("cpu", s.cgroup(c), "cpu.cfs_quota_us"))
		if err != nil || quota != cpuPeriod {
			t.Errorf("CPU quota %d, %v; want one core (%d)", quota, err, cpuPeriod)
		}
	}

	// Starting it again with the same spec leaves it alone.
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if again := status(t, s, sp.ID); again.Pid != st.Pid {
		t.Errorf("Start of a running container made it again: pid %d, was %d", again.Pid, st.Pid)
	}

	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s, sp.ID)
	if _, err := l.Fetch(url); err == nil {
		t.Error("the container still answers after Stop")
	}
	if b, _ := os.ReadFile(sp.Log); !strings.Contains(string(b), "hello from") {
		t.Errorf("the log went with the container: %q", b)
	}
	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// A process going over the memory limit is killed, and that shows in the
// container's state and stats; a process within it is not.
func TestMemoryLimitIsEnforced(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	// dd holds a buffer of bs bytes, filled from /dev/zero.
	sp := spec(t, "1-1-hungry", `dd if=/dev/zero of=/dev/null bs=8M count=1 2>/dev/null; echo small=$?
dd if=/dev/zero of=/dev/null bs=96M count=1 2>/dev/null; echo big=$?
exec sleep 1000`)
	sp.Memory = 32 << 20
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "small=0\nbig=137\n") // 137: killed by SIGKILL
	st := status(t, s, sp.ID)
	if st.Status != Running || !st.OOMKilled {
		t.Errorf("state %+v, want running and oom_killed", st)
	}
	stats, err := s.Stats(ctx, sp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stats.OOMKills == 0 || stats.MemoryLimit != 32<<20 || stats.MemoryPeak > 32<<20 {
		t.Errorf("stats %+v", stats)
	}
}

// Pause freezes the container (it no longer answers), Resume thaws it,
// and a paused container can be stopped.
func TestPauseResume(t *testing.T) {
	s := newService(t)
	l := hosttest.NewLAN(t, 211)
	ctx := context.Background()
	sp := spec(t, "1-1-frozen", `exec httpd -f -p 80 -h /www`)
	sp.Network = &Network{Bridge: l.Bridge, IP: l.Addr(7)}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/", l.Addr(7).Addr())
	eventually(t, "fetch", func() error { _, err := l.Fetch(url); return err })

	freezer := func() string {
		if s.cg.v2 {
			b, _ := os.ReadFile(s.cg.file("", s.cgroup(s.container(sp.ID)), "cgroup.freeze"))
			return strings.TrimSpace(string(b))
		}
		b, _ := os.ReadFile(s.cg.file("freezer", s.cgroup(s.container(sp.ID)), "freezer.state"))
		return strings.TrimSpace(string(b))
	}
	for range 2 { // twice: Pause and Resume are idempotent
		if err := s.Pause(ctx, sp.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st := status(t, s, sp.ID); st.Status != Paused {
		t.Errorf("status %s after Pause", st.Status)
	}
	if f := freezer(); f != "FROZEN" && f != "1" {
		t.Errorf("freezer %q after Pause", f)
	}
	if out, err := l.Fetch(url); err == nil {
		t.Errorf("a paused container answered %q", out)
	}
	for range 2 {
		if err := s.Resume(ctx, sp.ID); err != nil {
			t.Fatal(err)
		}
	}
	if st := status(t, s, sp.ID); st.Status != Running {
		t.Errorf("status %s after Resume", st.Status)
	}
	if out, err := l.Fetch(url); err != nil {
		t.Errorf("after Resume: %v %s", err, out)
	}

	if err := s.Pause(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s, sp.ID)
	if err := s.Pause(ctx, sp.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Pause of a removed container: %v", err)
	}
}

// Containers outlive the service: a new Service on the same directory
// (contd restarted) sees them running and stops them.
func TestRestartedServiceFindsContainers(t *testing.T) {
	s := newService(t)
	l := hosttest.NewLAN(t, 211)
	ctx := context.Background()
	sp := spec(t, "1-1-lasting", `while true; do echo tick; sleep 0.1; done`)
	sp.Network = &Network{Bridge: l.Bridge, IP: l.Addr(9)}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	before := status(t, s, sp.ID)

	again, err := New(s.c)
	if err != nil {
		t.Fatal(err)
	}
	st := status(t, again, sp.ID)
	if st.Status != Running || st.Pid != before.Pid {
		t.Errorf("after restart: %+v, before %+v", st, before)
	}
	list, err := again.List(ctx)
	if err != nil || len(list) != 1 || list[0].Pid != before.Pid {
		t.Errorf("List after restart = %+v, %v", list, err)
	}
	// The log keeps growing with nobody of ours holding it.
	size := func() int64 { fi, _ := os.Stat(sp.Log); return fi.Size() }
	was := size()
	eventually(t, "log grows", func() error {
		if size() <= was {
			return errors.New("log did not grow")
		}
		return nil
	})
	if err := again.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, again, sp.ID)
}

// A container whose process died (killed from outside, or gone with a
// reboot) is made again by Start; one whose spec changed too.
func TestStartRecreates(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	sp := spec(t, "1-1-phoenix", `echo "up $GREETING"; exec sleep 1000`)
	sp.Env = []string{"GREETING=first"}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "up first\n")
	first := status(t, s, sp.ID)
	if err := syscall.Kill(first.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "stopped", func() error {
		if st := status(t, s, sp.ID); st.Status != Stopped || st.Pid != 0 {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	if _, err := s.Stats(ctx, sp.ID); err != nil {
		t.Errorf("Stats of a stopped container (its cgroup is there until Stop): %v", err)
	}
	if err := s.Pause(ctx, sp.ID); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Pause of a stopped container: %v", err)
	}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	second := status(t, s, sp.ID)
	if second.Status != Running || second.Pid == first.Pid {
		t.Errorf("after Start: %+v (first %+v)", second, first)
	}
	logHas(t, sp, "up first\nup first\n")

	sp.Env = []string{"GREETING=second"}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "up first\nup first\nup second\n")
	if third := status(t, s, sp.ID); third.Pid == second.Pid {
		t.Error("a changed spec did not make the container again")
	}
}

// Stop gives the container's processes SIGTERM first.
func TestStopIsGraceful(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	sp := spec(t, "1-1-polite", `trap 'echo bye; exit 0' TERM; echo ready; while true; do sleep 0.1; done`)
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "ready\n")
	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "ready\nbye\n")
	assertGone(t, s, sp.ID)
}

// A spec that cannot run fails with the reason and leaves nothing.
func TestStartFailures(t *testing.T) {
	s := newService(t)
	ctx := context.Background()

	sp := spec(t, "1-1-broken", "")
	sp.Args = []string{"/bin/no-such-program"}
	err := s.Start(ctx, sp)
	if !errors.Is(err, ErrRuntime) || !strings.Contains(err.Error(), "no-such-program") {
		t.Errorf("Start of a missing program: %v", err)
	}
	if b, _ := os.ReadFile(sp.Log); !strings.Contains(string(b), "no-such-program") {
		t.Errorf("the log does not say why the container did not start: %q", b)
	}
	assertGone(t, s, sp.ID)

	sp = spec(t, "1-1-lost", "true")
	sp.Network = &Network{Bridge: "t4b-nowhere", IP: netip.MustParsePrefix("10.1.2.3/24")}
	if err := s.Start(ctx, sp); !errors.Is(err, ErrNoNetwork) {
		t.Errorf("Start on a missing bridge: %v", err)
	}
	assertGone(t, s, sp.ID)

	for name, mutate := range map[string]func(*Spec){
		"no id":        func(sp *Spec) { sp.ID = "" },
		"no args":      func(sp *Spec) { sp.Args = nil },
		"relative log": func(sp *Spec) { sp.Log = "log" },
		"bad env":      func(sp *Spec) { sp.Env = []string{"NOEQUALS"} },
		"missing root": func(sp *Spec) { sp.Root = "/nonexistent/root" },
		"mount on /":   func(sp *Spec) { sp.Mounts = []Mount{{Source: sp.Root, Target: "/"}} },
		"gateway out": func(sp *Spec) {
			sp.Network = &Network{Bridge: "b", IP: netip.MustParsePrefix("10.0.0.2/24"), Gateway: netip.MustParsePrefix("10.0.1.1/24").Addr()}
		},
	} {
		sp := spec(t, "1-1-invalid", "true")
		mutate(&sp)
		if err := s.Start(ctx, sp); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if _, err := s.State(ctx, "1-1-never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("State of an unknown container: %v", err)
	}
	if err := s.Stop(ctx, "1-1-never"); err != nil {
		t.Errorf("Stop of an unknown container: %v", err)
	}
}

// A disk image is formatted when blank and mounted: what the container
// writes there is on the image, and is there again for the next
// container; a read-only directory cannot be written.
func TestDiskAndDirectoryMounts(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "note"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := spec(t, "1-1-disk", `cat /data/kept 2>/dev/null || echo nothing kept; echo kept > /data/kept; cat /shared/note; touch /shared/x 2>/dev/null || echo read-only; exec sleep 1000`)
	sp.Mounts = []Mount{{Source: img, Target: "/data"}, {Source: shared, Target: "/shared", ReadOnly: true}}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "nothing kept\nfrom the host\nread-only\n")
	if out := hosttest.Sh(t, "blkid", "-p", "-o", "value", "-s", "TYPE", img); strings.TrimSpace(out) != "ext4" {
		t.Errorf("disk image holds %q, want ext4", out)
	}
	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s, sp.ID)
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "read-only\nkept\n")
}
