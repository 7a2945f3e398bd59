package registrar

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// accountStub serves AccountByTwin from a map (the only Store method the
// key cache uses) and counts lookups.
type accountStub struct {
	Store
	mu      sync.Mutex
	keys    map[uint64][]byte
	lookups int
}

func (s *accountStub) AccountByTwin(_ context.Context, twin uint64) (api.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	k, ok := s.keys[twin]
	if !ok {
		return api.Account{}, fmt.Errorf("twin %d: %w", twin, store.ErrNotFound)
	}
	return api.Account{TwinID: twin, PublicKey: base64.StdEncoding.EncodeToString(k)}, nil
}

func TestKeyCache(t *testing.T) {
	clock := newFakeClock()
	st := &accountStub{keys: map[uint64][]byte{1: make([]byte, 32)}}
	c := newKeyCache(st, 30*time.Second, clock.Now)
	ctx := context.Background()

	for range 3 {
		if _, err := c.TwinPublicKey(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if st.lookups != 1 {
		t.Fatalf("%d store lookups, want 1 (cached)", st.lookups)
	}
	// A changed key is used once the entry expires.
	newKey := make([]byte, 32)
	newKey[0] = 1
	st.keys[1] = newKey
	clock.Advance(30 * time.Second)
	if k, _ := c.TwinPublicKey(ctx, 1); k[0] != 1 {
		t.Fatal("a changed key is not picked up after the TTL")
	}
	// Unknown twins are not cached: an account created a moment later works.
	if _, err := c.TwinPublicKey(ctx, 2); !errors.Is(err, auth.ErrUnknownTwin) {
		t.Fatalf("unknown twin: %v", err)
	}
	st.keys[2] = make([]byte, 32)
	if _, err := c.TwinPublicKey(ctx, 2); err != nil {
		t.Fatalf("a new account is refused: %v", err)
	}
	// TTL 0 disables the cache.
	st.lookups = 0
	off := newKeyCache(st, 0, clock.Now)
	off.TwinPublicKey(ctx, 1)
	off.TwinPublicKey(ctx, 1)
	if st.lookups != 2 {
		t.Fatalf("TTL 0 cached: %d lookups", st.lookups)
	}
}

func TestStoreNoncesMapsConflictToReplay(t *testing.T) {
	db := openStore(t, "sqlite")
	n := storeNonces{db}
	ctx := context.Background()
	exp := time.Now().Add(time.Minute)
	if err := n.UseNonce(ctx, "7", "abcdefghijklmnop", exp); err != nil {
		t.Fatal(err)
	}
	if err := n.UseNonce(ctx, "7", "abcdefghijklmnop", exp); !errors.Is(err, auth.ErrReplay) {
		t.Fatalf("second use: %v, want auth.ErrReplay", err)
	}
	if err := n.UseNonce(ctx, "8", "abcdefghijklmnop", exp); err != nil {
		t.Fatalf("same nonce, other key: %v", err)
	}
}

// TestServeShutsDownGracefully runs Serve on a real listener and cancels it.
func TestServeShutsDownGracefully(t *testing.T) {
	db := openStore(t, "sqlite")
	cfg := testConfig()
	cfg.ShutdownTimeout = 5 * time.Second
	srv, err := New(cfg, Deps{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	res, err := http.Get("http://" + ln.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("readyz %d", res.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("still serving after shutdown")
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	cfg := testConfig()
	cfg.OnlineMultiple = 1
	if _, err := New(cfg, Deps{Store: &accountStub{}}); err == nil {
		t.Fatal("bad config accepted")
	}
	if _, err := New(testConfig(), Deps{}); err == nil {
		t.Fatal("missing store accepted")
	}
}
