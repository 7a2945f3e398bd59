package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryNonceStore(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Unix(1000, 0))
	s := NewMemoryNonceStore(3, clk.Now)
	exp := clk.Now().Add(10 * time.Second)

	if err := s.UseNonce(ctx, "1", "n1", exp); err != nil {
		t.Fatal(err)
	}
	if err := s.UseNonce(ctx, "1", "n1", exp); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// Same nonce, other key: separate namespace.
	if err := s.UseNonce(ctx, "2", "n1", exp); err != nil {
		t.Fatal(err)
	}
	if err := s.UseNonce(ctx, "1", "n2", exp.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Full (3 live): fail closed.
	if err := s.UseNonce(ctx, "1", "n3", exp); !errors.Is(err, ErrNonceStoreFull) {
		t.Fatalf("full: %v", err)
	}
	if HTTPStatus(fmt.Errorf("x: %w", ErrNonceStoreFull)) != 503 {
		t.Fatal("full store is not 503")
	}
	// An already expired nonce is accepted and not stored.
	if err := s.UseNonce(ctx, "1", "old", clk.Now()); err != nil {
		t.Fatal(err)
	}
	// After expiry the first two entries are swept; n1 is usable again.
	clk.Advance(10 * time.Second)
	if n := s.Len(); n != 1 {
		t.Fatalf("Len = %d after sweep, want 1", n)
	}
	if err := s.UseNonce(ctx, "1", "n1", clk.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.UseNonce(ctx, "1", "n2", clk.Now().Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("n2 still live: %v", err)
	}
	// A cancelled context is an error, not a pass.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.UseNonce(cctx, "1", "n9", exp); err == nil || errors.Is(err, ErrReplay) {
		t.Fatalf("cancelled: %v", err)
	}
	if d := NewMemoryNonceStore(0, nil); d.max != DefaultMaxNonces || d.now == nil {
		t.Fatal("defaults")
	}
}

func TestMemoryNonceStoreConcurrent(t *testing.T) {
	ctx := context.Background()
	clk := newClock(time.Unix(1000, 0))
	s := NewMemoryNonceStore(100000, clk.Now)
	var ok, replays atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				err := s.UseNonce(ctx, "k", fmt.Sprint(i), clk.Now().Add(time.Duration(i%7+1)*time.Second))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrReplay):
					replays.Add(1)
				default:
					t.Error(err)
				}
				if i%100 == 0 {
					clk.Advance(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	// Every nonce is accepted exactly once (none expires within the test).
	if ok.Load() != 500 || replays.Load() != 15*500 {
		t.Fatalf("accepted %d, replays %d", ok.Load(), replays.Load())
	}
}

// TestNonceStoreFullThroughMiddleware: a full store answers 503, not 200.
func TestNonceStoreFullThroughMiddleware(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, "ed25519")
	e.db.add(1, kp)
	c := e.client(kp, 1, false, nil)
	for i := 0; i < 1000; i++ {
		_ = e.nonce.UseNonce(context.Background(), "filler", fmt.Sprint(i), e.clk.Now().Add(time.Minute))
	}
	wantStatus(t, doReq(t, c, "GET", e.srv.URL+"/protected/", nil), 503, "retry later")
}
