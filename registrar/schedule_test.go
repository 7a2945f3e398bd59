package registrar

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func TestReportInterval(t *testing.T) {
	s := reportSchedule{base: 40 * time.Minute, rate: 250, multiple: 3}
	for _, c := range []struct {
		nodes uint64
		want  time.Duration
	}{
		{0, 40 * time.Minute},
		{1000, 40 * time.Minute},
		{600_000, 40 * time.Minute}, // exactly 250/s over 40 minutes
		{1_000_000, 4000 * time.Second},
		{10_000_000, 40000 * time.Second},
	} {
		if got := s.interval(c.nodes); got != c.want {
			t.Errorf("interval(%d) = %s, want %s", c.nodes, got, c.want)
		}
	}
	s.rate = 0
	if got := s.interval(10_000_000); got != 40*time.Minute {
		t.Errorf("rate 0 stretched the interval to %s", got)
	}
}

// TestCutoffExceedsEveryNextReport is the property the online status
// rests on: for any node, time, fleet size and allowed setting, the delay
// handed out (rounded up to whole seconds, as sent) plus the safety margin
// stays below the online cutoff.
func TestCutoffExceedsEveryNextReport(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, base := range []time.Duration{time.Second, time.Minute, 40 * time.Minute, 24 * time.Hour} {
		for _, multiple := range []float64{1.5, 2, 3, 10} {
			for _, rate := range []float64{0, 1, 250, 5000} {
				s := reportSchedule{base: base, rate: rate, multiple: multiple}
				for _, nodes := range []uint64{0, 1, 1000, 1_000_000, 50_000_000} {
					iv := s.interval(nodes)
					cutoff := s.cutoff(iv)
					for range 2000 {
						id := rng.Uint64()
						now := time.Unix(0, rng.Int64N(1<<62))
						next := s.next(id, now, iv)
						sent := (next + time.Second - 1) / time.Second * time.Second
						if next < iv/minReportGapDivisor || next >= maxNext(iv) {
							t.Fatalf("base %s rate %g nodes %d: next %s outside [%s, %s)", base, rate, nodes, next, iv/minReportGapDivisor, maxNext(iv))
						}
						if sent+onlineSlack > cutoff {
							t.Fatalf("base %s multiple %g rate %g nodes %d: next report in %s, cutoff %s leaves less than %s",
								base, multiple, rate, nodes, sent, cutoff, onlineSlack)
						}
					}
				}
			}
		}
	}
}

// TestMassRebootIsSpread: a whole fleet reporting at the same instant (a
// mass reboot) is told to come back spread evenly over the interval.
func TestMassRebootIsSpread(t *testing.T) {
	s := reportSchedule{base: 40 * time.Minute, rate: 250, multiple: 3}
	const nodes = 20_000
	iv := s.interval(nodes)
	now := time.Unix(1_750_000_000, 0)
	const buckets = 40
	var hist [buckets]int
	for id := uint64(1); id <= nodes; id++ {
		at := now.Add(s.next(id, now, iv))
		slot := time.Duration(at.UnixNano()) % iv
		hist[int(slot*buckets/iv)]++
	}
	mean := nodes / buckets
	for i, n := range hist {
		if n < mean*7/10 || n > mean*13/10 {
			t.Errorf("bucket %d of the interval has %d next reports, mean %d: %v", i, n, mean, hist)
			break
		}
	}
}

// TestSteadyReportsKeepTheirPhase: a node that follows the schedule reports
// about once per interval, at its own phase.
func TestSteadyReportsKeepTheirPhase(t *testing.T) {
	s := reportSchedule{base: 40 * time.Minute, rate: 250, multiple: 3}
	iv := s.interval(100)
	now := time.Unix(1_750_000_123, 0)
	const id = 4242
	now = now.Add(s.next(id, now, iv)) // first report after boot
	for range 50 {
		wait := s.next(id, now, iv)
		if wait < iv-maxJitter(iv) || wait > iv+2*maxJitter(iv) {
			t.Fatalf("steady wait %s, want about %s", wait, iv)
		}
		now = now.Add(wait)
	}
	a, b := s.next(id, now, iv), s.next(id, now, iv)
	if a != b {
		t.Fatal("next is not deterministic")
	}
}

func TestNodeCounterCaches(t *testing.T) {
	var calls atomic.Int64
	var fail atomic.Bool
	clock := newFakeClock()
	c := newNodeCounter(func(context.Context) (uint64, error) {
		n := calls.Add(1)
		if fail.Load() {
			return 0, errors.New("down")
		}
		return uint64(n * 10), nil
	}, clock.Now, time.Minute)
	ctx := context.Background()
	if got := c.get(ctx); got != 10 {
		t.Fatalf("first get %d", got)
	}
	c.get(ctx)
	if calls.Load() != 1 {
		t.Fatalf("cached value not used: %d calls", calls.Load())
	}
	clock.Advance(time.Minute)
	if got := c.get(ctx); got != 20 {
		t.Fatalf("stale value not refreshed: %d", got)
	}
	clock.Advance(time.Minute)
	fail.Store(true)
	if got := c.get(ctx); got != 20 {
		t.Fatalf("a failed refresh must keep the old value, got %d", got)
	}
}
