package await

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/clock"
)

func TestAnswerBacksOff(t *testing.T) {
	ctx := t.Context()
	c := clock.NewFake(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	calls := 0
	f := func(ctx context.Context) (string, error) {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a call without a deadline")
		}
		if calls < 4 {
			return "", errors.New("not yet")
		}
		return "answer", nil
	}
	type result struct {
		v  string
		ok bool
	}
	done := make(chan result, 1)
	go func() {
		v, ok := Answer(ctx, c, slog.New(slog.DiscardHandler), "the test", f)
		done <- result{v, ok}
	}()
	var pauses []time.Duration
	for range 3 {
		if err := c.WaitTimers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		before := c.Now()
		now, _ := c.AdvanceToNext()
		pauses = append(pauses, now.Sub(before))
	}
	r := <-done
	if !r.ok || r.v != "answer" || calls != 4 {
		t.Fatalf("Answer = %q, %v after %d calls", r.v, r.ok, calls)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	for i := range want {
		if pauses[i] != want[i] {
			t.Fatalf("pauses %v, want %v", pauses, want)
		}
	}
}

func TestAnswerGivesUpWithCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	v, ok := Answer(ctx, clock.Real{}, slog.New(slog.DiscardHandler), "the test", func(context.Context) (int, error) {
		calls++
		cancel()
		return 7, errors.New("down")
	})
	if ok || v != 0 || calls != 1 {
		t.Fatalf("Answer = %d, %v after %d calls", v, ok, calls)
	}
}
