package ctxsleep

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestSleep(t *testing.T) {
	start := time.Now()
	if err := Sleep(context.Background(), 20*time.Millisecond); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("slept %s: %v", time.Since(start), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: %v", err)
	}
	if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context, no wait: %v", err)
	}
	if err := Sleep(context.Background(), -time.Second); err != nil {
		t.Fatalf("negative wait: %v", err)
	}
}

func TestUntil(t *testing.T) {
	calls := 0
	done := func(ctx context.Context) bool {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("done's context has no deadline")
		}
		calls++
		return calls == 3
	}
	if !Until(context.Background(), time.Minute, time.Millisecond, done) || calls != 3 {
		t.Fatalf("condition met at the third call: %d calls", calls)
	}
	start := time.Now()
	never := func(context.Context) bool { return false }
	if Until(context.Background(), 30*time.Millisecond, 5*time.Millisecond, never) || time.Since(start) < 30*time.Millisecond {
		t.Fatalf("limit passed: returned true or after %s", time.Since(start))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Until(ctx, time.Hour, time.Hour, never) {
		t.Fatal("ended context: true")
	}
	if !Until(ctx, time.Hour, time.Hour, func(context.Context) bool { return true }) {
		t.Fatal("condition already met, ended context: false")
	}
}
