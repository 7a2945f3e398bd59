package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/node/upgrader/upgradetest"
	"github.com/grid4/grid4/node/zosd"
)

// exitsAtStart and hangs are the zosd of broken releases: both pass the
// upgrader's probe (`zosd version`); one exits as soon as it is started,
// the other never beats.
const (
	exitsAtStart = "#!/bin/sh\ncase \"$1\" in version) echo zosd; exit 0 ;; esac\necho 'zosd: panic: release bug' >&2\nexit 1\n"
	hangs        = "#!/bin/sh\ncase \"$1\" in version) echo zosd; exit 0 ;; esac\nexec sleep 3600\n"
)

// e2e is a node started by a bootstrap process, against a real hub and
// registrar, with programs built from the repository.
type e2e struct {
	t         *testing.T
	bin, data string
	g         *upgradetest.Grid
	farm      uint64
	pause     string
	log       lockedBuffer

	boot   *exec.Cmd
	exited chan error
}

func (e *e2e) startBootstrap() {
	e.t.Helper()
	e.boot = exec.Command(filepath.Join(e.bin, "bootstrap"),
		"--data", e.data, "--zosd", filepath.Join(e.bin, "zosd"), "--upgrade-publisher-key", hex.EncodeToString(e.g.PublisherKey),
		"--start-deadline", "5s", "--heartbeat-deadline", "5s", "--trial-deadline", "40s", "--stop-grace", "10s", "--restart-min", "100ms",
		"--",
		"--registrar", e.g.RegistrarURL, "--farm", fmt.Sprint(e.farm), "--zos-version", "v4.1.0",
		"--interface", "lo", "--geoip-url", "none", "--min-free-disk", "1MiB", "--restart-min", "100ms", "--api-listen", "127.0.0.1:0",
		"--hub", e.g.HubURL, "--upgrade-interval", "1s", "--upgrade-jitter", "0s",
		"--upgrade-health-stable", "1s", "--upgrade-health-deadline", "20s")
	e.boot.Env = append(os.Environ(), zosd.TestPauseEnv+"="+e.pause)
	e.boot.Stdout, e.boot.Stderr = &e.log, &e.log
	if err := e.boot.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan error, 1)
	e.exited = exited
	go func() { exited <- e.boot.Wait() }()
}

func (e *e2e) stopBootstrap() {
	if p := os.Getenv("BOOTSTRAP_E2E_LOG"); p != "" {
		defer func() { _ = os.WriteFile(p, []byte(e.log.String()), 0o644) }()
	}
	_ = e.boot.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(30 * time.Second):
		_ = e.boot.Process.Kill()
		<-e.exited
	}
}

func (e *e2e) status() (zosd.Report, bool) {
	out, err := exec.Command(filepath.Join(e.bin, "zosd"), "status", "--data", e.data, "-o", "json").Output()
	var r zosd.Report
	return r, err == nil && json.Unmarshal(out, &r) == nil
}

// waitFor polls the node's status until ok says so.
func (e *e2e) waitFor(what string, ok func(r zosd.Report) bool) zosd.Report {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		select {
		case err := <-e.exited:
			e.t.Fatalf("bootstrap exited: %v\n%s", err, e.log.String())
		default:
		}
		r, answered := e.status()
		if answered && r.Upgrade != nil && ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: not within 90s; upgrade %+v\nlog:\n%s", what, r.Upgrade, e.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settled: the node runs version, no switch in progress, every module
// running.
func settled(version string) func(r zosd.Report) bool {
	return func(r zosd.Report) bool {
		if r.Upgrade.Running.Version != version || r.Upgrade.Trial != nil || len(r.Modules) == 0 {
			return false
		}
		for _, m := range r.Modules {
			if m.State != "running" {
				return false
			}
		}
		return true
	}
}

// oneGeneration checks that exactly one zosd runs the node, from the
// current generation (or the base zosd), and every module process with
// it.
func (e *e2e) oneGeneration() string {
	e.t.Helper()
	want := filepath.Join(e.bin, "zosd")
	if p, err := filepath.EvalSymlinks(filepath.Join(e.data, "upgrade", upgrader.CurrentLink, upgrader.ZosLink, upgrader.ZosBinary)); err == nil {
		want = p
	}
	nodes, modules := 0, 0
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join(p, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("--data="+e.data+"\x00")) && !bytes.HasSuffix(cmdline, []byte("--data="+e.data+"\x00")) {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if filepath.Base(args[0]) == "bootstrap" {
			continue
		}
		exe, _ := os.Readlink(filepath.Join(p, "exe"))
		if exe != want {
			e.t.Errorf("%s (%v) runs %s, not the current generation's %s", p, args[:min(len(args), 3)], exe, want)
		}
		if len(args) > 1 && args[1] == "run" {
			modules++
		} else {
			nodes++
		}
	}
	if nodes != 1 || modules == 0 {
		e.t.Errorf("%d zosd and %d modules run the node, want 1 zosd and its modules", nodes, modules)
	}
	return want
}

// TestBootstrapUpgrades: a node started by the bootstrap takes a release
// with a new zosd (the whole node runs from the generation, zosd
// included), reports the new version to the registrar; releases whose
// zosd exits at start or hangs leave it on the previous generation with
// the reason recorded; and SIGKILL of the bootstrap or of zosd at each
// step of a switch leaves exactly one generation running.
func TestBootstrapUpgrades(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("needs redis-server")
	}
	begin := time.Now()
	dir := t.TempDir()
	e := &e2e{t: t, bin: filepath.Join(dir, "bin"), data: filepath.Join(dir, "node"), pause: filepath.Join(dir, "pause")}
	if out, err := exec.Command("go", "build", "-ldflags=-s -w", "-o", e.bin+"/", "github.com/grid4/grid4/cmd/zosd", "github.com/grid4/grid4/cmd/bootstrap").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e.g = upgradetest.Start(t)
	e.farm = e.g.Farm(t)
	e.startBootstrap()
	t.Cleanup(e.stopBootstrap)
	r := e.waitFor("registered on the base zosd", func(r zosd.Report) bool {
		return r.Registration != nil && r.Registration.NodeID != 0 && settled("v4.1.0")(r)
	})
	nodeID := r.Registration.NodeID
	e.oneGeneration()
	mark := func(what string) {
		t.Logf("%-70s %5.1fs", what, time.Since(begin).Seconds())
		begin = time.Now()
	}
	mark("built, node registered on the base zosd")

	// A release whose zos package is this repository's zosd.
	zosDir := filepath.Join(dir, "zospkg")
	if err := os.MkdirAll(filepath.Join(zosDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", filepath.Join(e.bin, "zosd"), filepath.Join(zosDir, "bin", "zosd")).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	zos := e.g.PublishDir(t, "zos-real", zosDir).ID()
	release := func(version string, id flist.ID) {
		e.g.Tag(t, version, upgradetest.Entry{Name: "zos", Flist: id, Role: flist.RoleZos})
		e.g.SetVersion(t, version, true)
	}
	release("v4.1.1", zos)
	e.waitFor("upgraded to v4.1.1", settled("v4.1.1"))
	if prog := e.oneGeneration(); !strings.Contains(prog, "/upgrade/packages/"+zos.String()+"/") {
		t.Errorf("zosd runs %s, not the release's", prog)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := e.g.Registrar(t).Node(context.Background(), nodeID)
		if err == nil && n.ZosVersion == "v4.1.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registrar shows %q, %v", n.ZosVersion, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mark("a release with a new zosd: switched, the registrar shows v4.1.1")

	for _, c := range []struct{ version, script, reason string }{
		{"v4.1.2", exitsAtStart, "exited with status 1: zosd: panic: release bug"},
		{"v4.1.3", hangs, "hung: no heartbeat within 5s"},
	} {
		broken := e.g.PublishPackage(t, "zos-"+c.version, upgradetest.Tree{"bin/zosd": c.script}).ID()
		release(c.version, broken)
		r := e.waitFor("rolled back from "+c.version, func(r zosd.Report) bool {
			return r.Upgrade.RolledBack != nil && r.Upgrade.RolledBack.Version == c.version && settled("v4.1.1")(r)
		})
		if rb := r.Upgrade.RolledBack; !rb.Switched || !strings.Contains(rb.Reason, c.reason) {
			t.Errorf("%s: rolled back %+v, want the reason to say %q", c.version, rb, c.reason)
		}
		e.oneGeneration()
		mark(fmt.Sprintf("%s (zosd %s): back on v4.1.1, reason recorded", c.version, map[bool]string{true: "exits at start", false: "hangs"}[c.script == exitsAtStart]))
	}

	// SIGKILL at each step of a switch: before the link moves (trial),
	// after it moved but before the handover (switched), in the new zosd
	// before and after its upgrader judged it (restarted, healthy).
	for i, c := range []struct {
		step   upgrader.Step
		victim string
	}{
		{upgrader.StepTrial, "bootstrap"}, {upgrader.StepSwitched, "zosd"}, {upgrader.StepSwitched, "bootstrap"},
		{upgrader.StepRestarted, "zosd"}, {upgrader.StepRestarted, "bootstrap"}, {upgrader.StepHealthy, "bootstrap"},
	} {
		version := "v4.2." + strconv.Itoa(i)
		if err := os.WriteFile(e.pause, []byte(c.step), 0o644); err != nil {
			t.Fatal(err)
		}
		before, _ := e.status()
		release(version, zos)
		e.waitPaused()
		e.kill(c.victim)
		r := e.waitFor("settled after a kill", func(r zosd.Report) bool {
			return (settled(version)(r) || r.Upgrade.RolledBack != nil && r.Upgrade.RolledBack.Version == version && settled(before.Upgrade.Running.Version)(r)) &&
				r.Upgrade.Last != nil && r.Upgrade.Last.Version == version
		})
		e.oneGeneration()
		how := "upgraded"
		if r.Upgrade.Running.Version != version {
			how = "rolled back: " + r.Upgrade.RolledBack.Reason
		}
		mark(fmt.Sprintf("%s killed at %s: one generation runs (%s)", c.victim, c.step, how))
	}
}

// waitPaused waits for the upgrader to stop at the pause step.
func (e *e2e) waitPaused() {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(e.pause + ".hit"); err == nil {
			os.Remove(e.pause + ".hit")
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("the upgrader did not reach the step in %s\nlog:\n%s", e.pause, e.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill SIGKILLs the bootstrap (and starts a new one, as the host's
// service manager would) or the node's zosd.
func (e *e2e) kill(victim string) {
	e.t.Helper()
	if victim == "bootstrap" {
		_ = e.boot.Process.Kill()
		<-e.exited
		e.startBootstrap()
		return
	}
	b, err := os.ReadFile(filepath.Join(e.data, "zosd.run"))
	var info zosd.RunInfo
	if err != nil || json.Unmarshal(b, &info) != nil || info.PID == 0 {
		e.t.Fatalf("no run file: %v", err)
	}
	if err := syscall.Kill(info.PID, syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
}

// lockedBuffer is a bytes.Buffer processes write while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
