package clock

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Fake is a Clock that only moves when told to. Tests advance it to the
// next timer's deadline (AdvanceToNext) or by a duration (Advance), and
// wait for the code under test to arm its timers (WaitTimers) before
// moving on, so a schedule of hours runs in microseconds and every timer
// fires at exactly its deadline.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	pending []*fakeTimer  // armed, unfired timers
	changed chan struct{} // closed and replaced whenever pending changes
}

// NewFake returns a Fake clock reading start.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer firing when the fake time reaches now + d. A
// timer of d <= 0 fires at once.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, d)
	return t
}

// Advance moves the time forward by d, firing every timer whose deadline
// is reached, earliest first.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advanceTo(f.now.Add(d))
}

// AdvanceToNext moves the time to the earliest deadline of the pending
// timers and fires every timer due then. It returns the new time, and
// false (without moving) when no timer is pending.
func (f *Fake) AdvanceToNext() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return f.now, false
	}
	f.advanceTo(f.pending[0].when)
	return f.now, true
}

// Pending returns the number of armed timers that have not fired.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pending)
}

// NextDeadline returns the earliest deadline of the pending timers.
func (f *Fake) NextDeadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) == 0 {
		return time.Time{}, false
	}
	return f.pending[0].when, true
}

// WaitTimers waits until at least n timers are pending, or ctx ends. Tests
// call it after moving the clock, to know that the code under test has
// handled what fired and armed its next timers.
func (f *Fake) WaitTimers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		ok, ch := len(f.pending) >= n, f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// advanceTo fires the timers due at or before t, in deadline order, then
// sets the time to t. f.mu is held.
func (f *Fake) advanceTo(t time.Time) {
	for len(f.pending) > 0 && !f.pending[0].when.After(t) {
		ft := f.pending[0]
		f.pending = f.pending[1:]
		f.now = ft.when
		select {
		case ft.c <- ft.when:
		default: // a value is already waiting: timers fire once per arming
		}
	}
	if t.After(f.now) {
		f.now = t
	}
	f.notify()
}

// arm schedules t at now + d, after dropping any stale value. f.mu is held.
func (f *Fake) arm(t *fakeTimer, d time.Duration) {
	f.remove(t)
	select {
	case <-t.c:
	default:
	}
	t.when = f.now.Add(d)
	if d <= 0 {
		t.c <- f.now
		f.notify()
		return
	}
	i, _ := slices.BinarySearchFunc(f.pending, t.when, func(p *fakeTimer, w time.Time) int {
		// Equal deadlines keep their arming order: insert after them.
		if p.when.After(w) {
			return 1
		}
		return -1
	})
	f.pending = slices.Insert(f.pending, i, t)
	f.notify()
}

// remove unschedules t and reports whether it was pending. f.mu is held.
func (f *Fake) remove(t *fakeTimer) bool {
	i := slices.Index(f.pending, t)
	if i < 0 {
		return false
	}
	f.pending = slices.Delete(f.pending, i, i+1)
	f.notify()
	return true
}

// notify wakes WaitTimers. f.mu is held.
func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

type fakeTimer struct {
	f    *Fake
	c    chan time.Time
	when time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := t.f.remove(t)
	select {
	case <-t.c:
	default:
	}
	return was
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	was := slices.Contains(t.f.pending, t)
	t.f.arm(t, d)
	return was
}
