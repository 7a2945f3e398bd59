package generation

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crashAt is a panic standing for a process killed at a step.
type crashAt Step

// TestFailTrialCrashAtEveryStep: the bootstrap's switch back from a
// generation on trial, interrupted at each of its steps and done again by
// the next bootstrap, ends on the trial's From with the rollback recorded
// once, under the first reason.
func TestFailTrialCrashAtEveryStep(t *testing.T) {
	for _, at := range []Step{StepStateTemp, StepRollingBack, StepLinkTemp, StepSwitchedBack, StepRolledBack, ""} {
		t.Run(string(at)+"-", func(t *testing.T) {
			d := Dir{Root: filepath.Join(t.TempDir(), "upgrade")}
			if err := d.Init(); err != nil {
				t.Fatal(err)
			}
			if err := d.WriteState(State{Previous: 0, LastGeneration: 2, Trial: &Trial{Generation: 2, From: 1, Version: "v4.1.2", Serial: 7, Phase: PhaseSwitching}}); err != nil {
				t.Fatal(err)
			}
			if err := d.SwitchTo(2); err != nil {
				t.Fatal(err)
			}
			crashed := func() (crashed bool) {
				defer func() {
					if r := recover(); r != nil {
						if _, ok := r.(crashAt); !ok {
							panic(r)
						}
						crashed = true
					}
				}()
				d.AtStep = func(s Step) {
					if s == at {
						panic(crashAt(s))
					}
				}
				if _, err := d.FailTrial(2, "the zosd of generation 2 hung", time.Now()); err != nil {
					t.Fatal(err)
				}
				return false
			}()
			if crashed != (at != "") {
				t.Fatalf("crashed %v at %q", crashed, at)
			}
			d.AtStep = nil
			// The next bootstrap: the generation is still on trial
			// (or already switched back from).
			tr, err := d.FailTrial(2, "another reason", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			p, err := d.ReadState()
			if err != nil {
				t.Fatal(err)
			}
			cur, _ := d.Current()
			rb := p.RolledBack
			if cur != 1 || p.Trial != nil || rb == nil || rb.Version != "v4.1.2" || rb.Serial != 7 || !rb.Switched {
				t.Fatalf("after a crash at %q: current %d, state %+v", at, cur, p)
			}
			want := "the zosd of generation 2 hung"
			if at == StepStateTemp {
				// Killed before the reason was written down.
				want = "another reason"
			}
			if !strings.Contains(rb.Reason, want) || tr == nil && at != StepRolledBack && at != "" {
				t.Errorf("after a crash at %q: reason %q, second trial %v", at, rb.Reason, tr)
			}
		})
	}
}
