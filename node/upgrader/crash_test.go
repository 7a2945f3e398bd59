package upgrader

import (
	"context"
	"errors"
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

	"github.com/grid4/grid4/node/upgrader/upgradetest"
)

// crashEnv names the step at which the crash helper kills itself:
// "STEP" or "STEP#N" (its Nth occurrence); deadlineEnv is its health
// deadline.
const (
	crashEnv    = "UPGRADE_CRASH_AT"
	deadlineEnv = "UPGRADE_CRASH_DEADLINE"
)

func TestMain(m *testing.M) {
	if at := os.Getenv(crashEnv); at != "" {
		os.Exit(crashHelper(at))
	}
	os.Exit(m.Run())
}

// crashHelper is the child process of TestCrashAtEveryStep: a node whose
// upgrader checks once and SIGKILLs its own process at the named step
// (or, for "download", is killed by the test when a block download
// begins). It returns only when the step was never reached.
func crashHelper(at string) int {
	spec, err := specFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		return 2
	}
	name, nth := at, 1
	if i := strings.IndexByte(at, '#'); i >= 0 {
		name = at[:i]
		if nth, err = strconv.Atoi(at[i+1:]); err != nil {
			return 2
		}
	}
	deadline, err := time.ParseDuration(os.Getenv(deadlineEnv))
	if err != nil {
		return 2
	}
	var mu sync.Mutex
	seen := 0
	n, err := buildNode(spec, options{stable: 100 * time.Millisecond, deadline: deadline, atStep: func(s Step) {
		mu.Lock()
		defer mu.Unlock()
		if string(s) != name {
			return
		}
		if seen++; seen == nth {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := n.up.CheckNow(ctx)
	n.stop()
	fmt.Fprintf(os.Stderr, "crash helper: step %s never reached (seen %d times); check: %+v %v\n%s", at, seen, r, err, n.log)
	return 3
}

// TestCrashAtEveryStep kills the upgrader (its whole process, SIGKILL) at
// every step of an upgrade, and of a rollback, and checks that the node is
// then on exactly the old or the new generation, complete; and that the
// next upgrader cleans what was left, finishes or undoes the switch and
// ends on a consistent state.
func TestCrashAtEveryStep(t *testing.T) {
	begin := time.Now()
	g := upgradetest.Start(t)
	farm := g.Farm(t)
	release(t, g, "v4.1.1", upgradetest.ZosScript("v4.1.1"))
	release(t, g, "v4.1.2", upgradetest.ZosScript("v4.1.2"))
	release(t, g, "v4.1.3", upgradetest.BrokenModuleScript("v4.1.3"))

	// The node every case starts from: on v4.1.1 (generation 1), copied.
	g.SetVersion(t, "v4.1.1", true)
	tmplRoot := t.TempDir()
	tmpl := specAt(tmplRoot, g, farm, "v4.1.0")
	upgradetest.Write(t, filepath.Join(tmplRoot, "bootstrap"), upgradetest.Tree{"zosd": upgradetest.ZosScript("v4.1.0")})
	if err := os.Mkdir(tmpl.Marks, 0o755); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, tmpl, options{})
	n.expect(t, Upgraded, "upgraded to v4.1.1")
	n.stop()

	fresh := func(t *testing.T) nodeSpec {
		root := filepath.Join(t.TempDir(), "node")
		if out, err := exec.Command("cp", "-a", tmplRoot, root).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v %s", err, out)
		}
		return specAt(root, g, farm, "v4.1.0")
	}
	// crash runs the helper until it dies at step.
	// A release that works gets a long health deadline (it ends as soon
	// as the modules are stable, so a loaded machine does not make it
	// fail); one whose modules die a short one (it always runs out).
	deadline := 5 * time.Second
	crash := func(t *testing.T, spec nodeSpec, at string) {
		t.Helper()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(append(os.Environ(), spec.env()...), crashEnv+"="+at, deadlineEnv+"="+deadline.String())
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if at == "download" {
			var once sync.Once
			g.Hub().OnBlock(func() { once.Do(func() { _ = cmd.Process.Kill() }) })
			defer g.Hub().OnBlock(nil)
		}
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("helper at %s: %v, want killed by SIGKILL\n%s", at, err, out.String())
		}
	}
	// after checks the state an upgrader finds and what it makes of it.
	// gens is how many generations are kept: generation 1, and the new
	// one when the upgrade went through (numbered 2, or 3 when the
	// interrupted attempt had given out 2).
	after := func(t *testing.T, spec nodeSpec, old, new string, want Outcome, final string, gens int) {
		t.Helper()
		run := checkGeneration(t, spec.Dir, currentVersion(t, spec.Dir))
		if run.Version != old && run.Version != new {
			t.Fatalf("after the crash the node runs %s, neither %s nor %s", run.Version, old, new)
		}
		t.Logf("left on %s (generation %d); leftovers %v", run.Version, run.Generation, leftovers(t, spec.Dir))
		for _, m := range testModules {
			_ = os.Remove(filepath.Join(spec.Marks, m))
		}
		n := startNode(t, spec, options{stable: 100 * time.Millisecond, deadline: deadline})
		r := n.check(t)
		if r.Outcome != want {
			t.Fatalf("check after the crash: %s %q, want %s\nlog:\n%s", r.Outcome, r.Detail, want, n.log)
		}
		n.waitModules(t, final)
		end := checkGeneration(t, spec.Dir, final)
		if l := leftovers(t, spec.Dir); len(l) > 0 {
			t.Errorf("leftovers after the restart: %v", l)
		}
		got := generationsOnDisk(t, spec.Dir)
		if len(got) != gens || got[0] != 1 || end.Generation != got[len(got)-1] {
			t.Errorf("generations %v, want %d of them from 1", got, gens)
		}
		p, err := layout{Root: spec.Dir}.ReadState()
		wantPrev := uint64(0) // generation 1 came from the bootstrap
		if gens == 2 {
			wantPrev = 1
		}
		if err != nil || p.Trial != nil || p.Previous != wantPrev {
			t.Errorf("state after the restart: %+v %v", p, err)
		}
		ents, _ := os.ReadDir(filepath.Join(spec.Dir, PackagesDir))
		if len(ents) != gens+1 { // containerd, and one zos package per generation
			t.Errorf("packages: %d, want %d", len(ents), gens+1)
		}
		n.stop()
	}

	// Forward: v4.1.1 → v4.1.2. Whatever the step, the next upgrader ends
	// on v4.1.2 with generations 1 and 2.
	g.SetVersion(t, "v4.1.2", true)
	forward := []string{
		"download", string(StepStateTemp) + "#1", string(StepChecked), string(StepVerified), string(StepPackage),
		string(StepManifestTemp), string(StepGenerationTemp), string(StepGeneration), string(StepProbed),
		string(StepStateTemp) + "#2", string(StepTrial), string(StepLinkTemp), string(StepSwitched),
		string(StepStateTemp) + "#3", string(StepRestarted), string(StepHealthy), string(StepStateTemp) + "#4", string(StepCommitted),
	}
	for _, at := range forward {
		t.Run("upgrade/"+at, func(t *testing.T) {
			spec := fresh(t)
			crash(t, spec, at)
			// Up to the switch the next check upgrades; after it the
			// resumed health check commits, and the check finds the node
			// up to date.
			want := Upgraded
			if v := currentVersion(t, spec.Dir); v == "v4.1.2" {
				want = UpToDate
			}
			after(t, spec, "v4.1.1", "v4.1.2", want, "v4.1.2", 2)
		})
	}

	// Backward: v4.1.1 → v4.1.3, whose modules die, → v4.1.1. The next
	// upgrader finishes the rollback; v4.1.3 is not tried again.
	g.SetVersion(t, "v4.1.3", true)
	deadline = 600 * time.Millisecond
	backward := []string{
		string(StepSwitched), string(StepRestarted), string(StepStateTemp) + "#4", string(StepRollingBack),
		string(StepLinkTemp) + "#2", string(StepSwitchedBack), string(StepStateTemp) + "#5", string(StepRolledBack),
	}
	for _, at := range backward {
		t.Run("rollback/"+at, func(t *testing.T) {
			spec := fresh(t)
			crash(t, spec, at)
			after(t, spec, "v4.1.1", "v4.1.3", Skipped, "v4.1.1", 1)
			p, _ := layout{Root: spec.Dir}.ReadState()
			if p.RolledBack == nil || p.RolledBack.Version != "v4.1.3" || !p.RolledBack.Switched {
				t.Errorf("rollback record: %+v", p.RolledBack)
			}
		})
	}
	t.Logf("%d crashes in %.1fs", len(forward)+len(backward), time.Since(begin).Seconds())
}

// currentVersion is the version dir's current generation holds.
func currentVersion(t testing.TB, dir string) string {
	t.Helper()
	run, err := readRunning(layout{Root: dir}, "v4.1.0")
	if err != nil {
		t.Fatal(err)
	}
	return run.Version
}
