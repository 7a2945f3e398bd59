package clock

import (
	"context"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func fired(t Timer) (time.Time, bool) {
	select {
	case v := <-t.C():
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeFiresAtDeadlines(t *testing.T) {
	f := NewFake(t0)
	a := f.NewTimer(30 * time.Minute)
	b := f.NewTimer(10 * time.Minute)
	c := f.NewTimer(10 * time.Minute)
	if f.Pending() != 3 {
		t.Fatalf("pending %d", f.Pending())
	}
	if now, ok := f.AdvanceToNext(); !ok || !now.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("AdvanceToNext: %v %v", now, ok)
	}
	for _, tm := range []Timer{b, c} {
		if v, ok := fired(tm); !ok || !v.Equal(t0.Add(10*time.Minute)) {
			t.Errorf("timer at 10m: %v %v", v, ok)
		}
	}
	if _, ok := fired(a); ok {
		t.Error("30m timer fired early")
	}
	f.Advance(time.Hour)
	if v, ok := fired(a); !ok || !v.Equal(t0.Add(30*time.Minute)) {
		t.Errorf("30m timer: %v %v", v, ok)
	}
	if !f.Now().Equal(t0.Add(70 * time.Minute)) {
		t.Errorf("now %v", f.Now())
	}
	if _, ok := f.AdvanceToNext(); ok {
		t.Error("AdvanceToNext with nothing pending")
	}
}

func TestFakeStopAndResetDropStaleTicks(t *testing.T) {
	f := NewFake(t0)
	tm := f.NewTimer(time.Minute)
	f.Advance(time.Minute) // fired, value not received
	if tm.Reset(time.Hour) {
		t.Error("Reset of a fired timer reported pending")
	}
	if _, ok := fired(tm); ok {
		t.Error("stale tick after Reset")
	}
	if !tm.Stop() {
		t.Error("Stop of a pending timer reported not pending")
	}
	f.Advance(2 * time.Hour)
	if _, ok := fired(tm); ok {
		t.Error("stopped timer fired")
	}
	now := f.NewTimer(0)
	if _, ok := fired(now); !ok {
		t.Error("zero timer did not fire at once")
	}
}

func TestWaitTimers(t *testing.T) {
	f := NewFake(t0)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- f.WaitTimers(ctx, 2)
	}()
	f.NewTimer(time.Second)
	f.NewTimer(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.WaitTimers(ctx, 3); err == nil {
		t.Error("WaitTimers returned nil with 2 timers and a canceled context")
	}
}

func TestSleep(t *testing.T) {
	f := NewFake(t0)
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), f, time.Hour) }()
	if err := f.WaitTimers(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(time.Hour)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, Real{}, time.Hour); err == nil {
		t.Error("Sleep ignored a canceled context")
	}
}
