package explorer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// TestStatsCache: counts are computed once for concurrent first
// visitors, served from memory within the TTL, and once stale served
// while one new computation runs.
func TestStatsCache(t *testing.T) {
	var (
		mu      sync.Mutex
		now     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		loads   int
		release = make(chan struct{}, 10)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	load := func(context.Context) (*gridStats, error) {
		<-release
		mu.Lock()
		defer mu.Unlock()
		loads++
		if loads == 3 {
			return nil, errors.New("database down")
		}
		return &gridStats{At: now, Farms: uint64(loads)}, nil
	}
	c := newStatsCache(load, clock, 30*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if st, err := c.get(ctx); err != nil || st.Farms != 1 {
				t.Errorf("first visitors: %+v %v", st, err)
			}
		})
	}
	release <- struct{}{}
	wg.Wait()
	if st, _ := c.get(ctx); st.Farms != 1 || loads != 1 {
		t.Fatalf("within the TTL: %+v after %d loads", st, loads)
	}
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	// Stale: served at once while the second computation waits.
	if st, err := c.get(ctx); err != nil || st.Farms != 1 {
		t.Fatalf("stale counts: %+v %v", st, err)
	}
	release <- struct{}{}
	waitFor(t, func() bool { st, _ := c.get(ctx); return st.Farms == 2 })
	// A failed computation keeps the last counts.
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	release <- struct{}{}
	_, _ = c.get(ctx)
	waitFor(t, func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.flight == nil && loads == 3 })
	if st, err := c.get(ctx); err != nil || st.Farms != 2 {
		t.Fatalf("after a failure: %+v %v", st, err)
	}
	release <- struct{}{}
	waitFor(t, func() bool { st, _ := c.get(ctx); return st.Farms == 4 })
}

// waitFor polls cond (the cache computes in a goroutine of its own).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition not met")
}

// TestUptimeChart: each day's bar is the share of the day the node was
// up, from its registration on, today up to now.
func TestUptimeChart(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	day := func(d int, h int) time.Time { return time.Date(2026, 3, d, h, 0, 0, 0, time.UTC) }
	sessions := []api.UptimeSession{
		{BootTime: day(9, 12), LastReport: day(10, 12)}, // half of the 9th, all of today so far
		{BootTime: day(7, 0), LastReport: day(8, 0)},    // all of the 7th
	}
	c := newUptimeChart(sessions, 5, now, day(6, 12))
	want := []struct {
		class string
		frac  float64
	}{
		{"down", 0},      // the 6th: registered at noon, down since
		{"up", 1},        // the 7th
		{"down", 0},      // the 8th
		{"partial", 0.5}, // the 9th
		{"up", 1},        // today, up to now
	}
	if len(c.Bars) != 5 {
		t.Fatalf("%d bars", len(c.Bars))
	}
	for i, b := range c.Bars {
		if b.Class != want[i].class || b.Fraction != want[i].frac {
			t.Errorf("bar %d (%s): %s %.2f, want %s %.2f", i, b.Day.Format("01-02"), b.Class, b.Fraction, want[i].class, want[i].frac)
		}
	}
	// Up: 12h (9th) + 12h (today) + 24h (7th) of 12+24+24+24+12 hours.
	if c.Up != "50.00%" || c.Width != 100 {
		t.Errorf("Up %q, Width %d", c.Up, c.Width)
	}
	if c := newUptimeChart(nil, 3, now, now.Add(time.Hour)); c.Up != "" || c.Bars[2].Class != "none" {
		t.Errorf("a node registered after now: %+v", c)
	}
}
