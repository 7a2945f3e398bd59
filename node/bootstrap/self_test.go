package bootstrap

import (
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSelfUpgrade: a confirmed generation whose release carries a new
// bootstrap gets it installed beside the old one, switched to (current,
// previous kept) and run in place of the old one, which is confirmed once
// it kept zosd beating; a release carrying a bootstrap that does not run
// the node is switched back from by the previous bootstrap (the host's
// ExecStopPost) and never installed again, and so is one that hangs: it
// sends no keep-alive, and the host's watchdog kills it.
func TestSelfUpgrade(t *testing.T) {
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/grid4/grid4/cmd/bootstrap").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	v1, err := os.ReadFile(filepath.Join(bin, "bootstrap"))
	if err != nil {
		t.Fatal(err)
	}
	// Another bootstrap: the same program with bytes after its end (an
	// ELF file runs so).
	v2 := append(append([]byte(nil), v1...), "bootstrap v2"...)
	broken := []byte("#!/bin/sh\n[ \"$1\" = version ] && exit 0\necho 'bootstrap: broken build' >&2\nexit 1\n")

	n := newNode(t)
	self := filepath.Join(t.TempDir(), "bootstrap.d")
	if err := copyProgram(filepath.Join(bin, "bootstrap"), filepath.Join(self, "b-v1")); err != nil {
		t.Fatal(err)
	}
	if err := switchLink(self, selfCurrent, "b-v1"); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(t.TempDir(), "zosd")
	if err := os.WriteFile(base, []byte(zosScript("v4.1.0", "")), 0o755); err != nil {
		t.Fatal(err)
	}
	n.install(1, "v4.1.1", zosScript("v4.1.1", ""), v2)
	if err := n.dir.SwitchTo(1); err != nil {
		t.Fatal(err)
	}
	var log syncBuffer
	var host *manager
	run := func() *exec.Cmd {
		host = newManager(t, 1500*time.Millisecond)
		cmd := exec.Command(filepath.Join(self, selfCurrent, "bootstrap"), "--data", n.data, "--zosd", base,
			"--upgrade-publisher-key", hex.EncodeToString(n.key.Public().Key), "--self-dir", self, "--self-confirm", "300ms",
			"--heartbeat-deadline", "2s", "--restart-min", "50ms")
		cmd.Stderr = &log
		cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+host.sock, "WATCHDOG_USEC=1500000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		host.watch(cmd.Process)
		return cmd
	}
	stop := func(cmd *exec.Cmd) {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20s\nlog:\n%s", what, log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	link := func(name string) string { l, _ := os.Readlink(filepath.Join(self, name)); return l }
	trial := func() bool { _, err := os.Stat(filepath.Join(self, selfTrialFile)); return err == nil }

	cmd := run()
	n.waitRunning("v4.1.1", 1, &log)
	hash2, _ := fileHash(filepath.Join(n.dir.GenDir(1), "pkg", BootstrapPackage, "bin", "bootstrap"))
	waitFor("confirmed", func() bool { return link(selfCurrent) == "b-"+hash2[:32] && !trial() })
	if exe, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "exe")); exe != filepath.Join(self, "b-"+hash2[:32], "bootstrap") {
		t.Errorf("the bootstrap process runs %s", exe)
	}
	if link(selfPrevious) != "b-v1" {
		t.Errorf("previous -> %q, want b-v1", link(selfPrevious))
	}
	waitFor("the host told the node runs", func() bool {
		return host.got("READY=1") && host.got("STATUS=running the zosd of generation 1")
	})
	// Keep-alives every half second: six span two watchdog intervals.
	waitFor("keep-alives", func() bool { return host.count("WATCHDOG=1") >= 6 || host.fired() })
	stop(cmd)
	if host.fired() {
		t.Fatalf("the host's watchdog fired on a bootstrap that runs the node\nlog:\n%s", log.String())
	}

	// A release with a bootstrap that does not run: the process ends in
	// failure; the host runs the previous bootstrap's revert.
	n.install(2, "v4.1.2", zosScript("v4.1.2", ""), broken)
	if err := n.dir.SwitchTo(2); err != nil {
		t.Fatal(err)
	}
	cmd = run()
	if err := cmd.Wait(); err == nil || !strings.Contains(log.String(), "broken build") {
		t.Fatalf("the broken bootstrap: %v\nlog:\n%s", err, log.String())
	}
	revert := exec.Command(filepath.Join(self, selfPrevious, "bootstrap"), "revert", "--self-dir", self)
	revert.Env = append(os.Environ(), "SERVICE_RESULT=exit-code", "EXIT_CODE=exited", "EXIT_STATUS=1")
	if out, err := revert.CombinedOutput(); err != nil {
		t.Fatalf("revert: %v %s", err, out)
	}
	if link(selfCurrent) != "b-"+hash2[:32] || trial() {
		t.Fatalf("after the revert: current -> %s, trial %v", link(selfCurrent), trial())
	}
	cmd = run()
	n.waitRunning("v4.1.2", 2, &log)
	if !strings.Contains(log.String(), "the release's bootstrap failed before; keeping this one") || link(selfCurrent) != "b-"+hash2[:32] {
		t.Errorf("the failed bootstrap was installed again: current -> %s\nlog:\n%s", link(selfCurrent), log.String())
	}
	stop(cmd)

	// A release with a bootstrap that hangs: no keep-alive, the host
	// kills it and runs the previous bootstrap's revert.
	hung := []byte("#!/bin/sh\n[ \"$1\" = version ] && exit 0\nexec sleep 3600\n")
	n.install(3, "v4.1.3", zosScript("v4.1.3", ""), hung)
	if err := n.dir.SwitchTo(3); err != nil {
		t.Fatal(err)
	}
	cmd = run()
	_ = cmd.Wait()
	if !host.fired() {
		t.Fatalf("the hung bootstrap was not killed by the watchdog\nlog:\n%s", log.String())
	}
	revert = exec.Command(filepath.Join(self, selfPrevious, "bootstrap"), "revert", "--self-dir", self)
	revert.Env = append(os.Environ(), "SERVICE_RESULT=watchdog", "EXIT_CODE=killed", "EXIT_STATUS=ABRT")
	if out, err := revert.CombinedOutput(); err != nil {
		t.Fatalf("revert: %v %s", err, out)
	}
	failed, _ := os.ReadFile(filepath.Join(self, selfFailedFile))
	if link(selfCurrent) != "b-"+hash2[:32] || trial() || !strings.Contains(string(failed), "the_unit_failed:_watchdog") {
		t.Fatalf("after the revert: current -> %s, trial %v, failed:\n%s", link(selfCurrent), trial(), failed)
	}
	cmd = run()
	defer stop(cmd)
	n.waitRunning("v4.1.3", 3, &log)
}

// manager plays the host's systemd for one bootstrap process (a unit
// with NotifyAccess=main and WatchdogSec=): it listens on a notify
// socket, keeps what it is told, and kills the process with SIGABRT
// (systemd's WatchdogSignal) when no keep-alive came within its
// watchdog interval.
type manager struct {
	sock     string
	watchdog time.Duration
	conn     *net.UnixConn

	mu       sync.Mutex
	states   []string
	last     time.Time // the last keep-alive, or the start
	didFire  bool
	finished chan struct{}
}

func newManager(t *testing.T, watchdog time.Duration) *manager {
	t.Helper()
	m := &manager{sock: filepath.Join(t.TempDir(), "notify"), watchdog: watchdog, last: time.Now(), finished: make(chan struct{})}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: m.sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	m.conn = conn
	t.Cleanup(func() { close(m.finished); conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			m.mu.Lock()
			for _, st := range strings.Split(string(buf[:n]), "\n") {
				m.states = append(m.states, st)
				if st == "WATCHDOG=1" {
					m.last = time.Now()
				}
			}
			m.mu.Unlock()
		}
	}()
	return m
}

// watch kills p when a keep-alive is late, until p ends.
func (m *manager) watch(p *os.Process) {
	m.mu.Lock()
	m.last = time.Now()
	m.mu.Unlock()
	go func() {
		for {
			select {
			case <-m.finished:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if p.Signal(syscall.Signal(0)) != nil {
				return // ended
			}
			m.mu.Lock()
			late := time.Since(m.last) > m.watchdog
			if late {
				m.didFire = true
			}
			m.mu.Unlock()
			if late {
				_ = p.Signal(syscall.SIGABRT)
				return
			}
		}
	}()
}

func (m *manager) count(state string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, st := range m.states {
		if st == state {
			n++
		}
	}
	return n
}

func (m *manager) got(state string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Contains(m.states, state)
}

func (m *manager) fired() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.didFire
}
