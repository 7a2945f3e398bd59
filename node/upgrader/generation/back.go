package generation

import (
	"fmt"
	"strconv"
	"time"
)

// OnTrial returns the trial of generation n when n is the current
// generation and the upgrader has not confirmed it yet (phase switching),
// else nil.
func (l Dir) OnTrial(n uint64) (*Trial, error) {
	p, err := l.ReadState()
	if err != nil {
		return nil, err
	}
	if t := p.Trial; t != nil && t.Generation == n && n != 0 {
		return t, nil
	}
	return nil, nil
}

// FailTrial switches the node back from generation n, which is on trial
// and failed where only the bootstrap sees it (its zosd exited, stopped
// beating, or ran out of trial time), and records the release as rolled
// back with reason, so that the upgrader does not install it again under
// the same version record. It returns the trial, or nil when n is not on
// trial (nothing changed). The caller holds the lock (Lock).
//
// The steps are the upgrader's rollback's, each written down first: the
// trial's phase becomes rolling_back, current is renamed back to the
// trial's From, then the rollback is recorded and the trial removed. A
// bootstrap killed in between leaves a trial rolling back, which the
// next FailTrial (or the upgrader of the old generation) finishes.
func (l Dir) FailTrial(n uint64, reason string, now time.Time) (*Trial, error) {
	p, err := l.ReadState()
	if err != nil {
		return nil, err
	}
	t := p.Trial
	if t == nil || t.Generation != n || n == 0 {
		return nil, nil
	}
	if t.Phase != PhaseRollingBack {
		t.Phase, t.Reason = PhaseRollingBack, reason
		if err := l.WriteState(p); err != nil {
			return nil, fmt.Errorf("writing the rollback down: %w", err)
		}
	}
	l.step(StepRollingBack)
	if cur, err := l.Current(); err != nil || cur != t.From {
		if err := l.SwitchTo(t.From); err != nil {
			return nil, fmt.Errorf("switching back to generation %d: %w", t.From, err)
		}
	}
	l.step(StepSwitchedBack)
	p.RolledBack = &Rollback{Version: t.Version, Serial: t.Serial, Release: t.Release, Switched: true, Reason: t.Reason, At: now.UTC()}
	p.Trial = nil
	if err := l.WriteState(p); err != nil {
		return nil, fmt.Errorf("recording the rollback: %w", err)
	}
	l.step(StepRolledBack)
	return t, nil
}

// FallBack switches the node from its current generation n, which is not
// on trial and cannot be started (it does not verify), to the previous
// one, recording why under n's version record so that the upgrader does
// not install the same release again until the record changes. It
// returns the generation now current. The caller holds the lock.
func (l Dir) FallBack(n uint64, reason string, now time.Time) (uint64, error) {
	if t, err := l.FailTrial(n, reason, now); err != nil || t != nil {
		if err != nil {
			return n, err
		}
		return t.From, nil
	}
	p, err := l.ReadState()
	if err != nil {
		return n, err
	}
	prev := p.Previous
	if prev == n {
		prev = 0
	}
	rb := &Rollback{Switched: true, Reason: reason, At: now.UTC(), Version: "generation " + strconv.FormatUint(n, 10)}
	if m, err := l.ReadManifest(n); err == nil {
		rb.Version, rb.Serial, rb.Release = m.Version, m.Serial, m.Release
	}
	// The switch first: a crash after it leaves the node on prev, which
	// the upgrader's next run finds (it removes n); only the record of
	// why is lost.
	if err := l.SwitchTo(prev); err != nil {
		return n, fmt.Errorf("switching to generation %d: %w", prev, err)
	}
	p.Previous, p.Trial, p.RolledBack = 0, nil, rb
	if err := l.WriteState(p); err != nil {
		return prev, fmt.Errorf("recording the fall back: %w", err)
	}
	return prev, nil
}
