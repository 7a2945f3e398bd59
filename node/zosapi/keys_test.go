package zosapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	zosrpc "github.com/grid4/grid4/node/zosapi/api"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
	"github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// fakeAccounts is a registrar whose twins' keys the test changes.
type fakeAccounts struct {
	mu    sync.Mutex
	keys  map[uint64][]byte
	calls atomic.Int32
	fail  error
}

func (f *fakeAccounts) AccountByTwin(_ context.Context, id uint64) (api.Account, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return api.Account{}, f.fail
	}
	k, ok := f.keys[id]
	if !ok {
		return api.Account{}, fmt.Errorf("GET /accounts: %w", regclient.ErrNotFound)
	}
	return api.Account{TwinID: id, PublicKey: base64.StdEncoding.EncodeToString(k)}, nil
}

func (f *fakeAccounts) set(id uint64, k []byte) {
	f.mu.Lock()
	f.keys[id] = k
	f.mu.Unlock()
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestTwinKeyCache(t *testing.T) {
	k1, _ := keys.Generate(keys.Ed25519)
	k2, _ := keys.Generate(keys.Ed25519)
	fa := &fakeAccounts{keys: map[uint64][]byte{7: k1.Public().Key}}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c := NewTwinKeyCache(fa, KeyCacheConfig{TTL: time.Minute, NegativeTTL: 10 * time.Second, MinRefresh: 5 * time.Second, Now: clk.Now})
	ctx := context.Background()
	for range 3 {
		k, err := c.TwinPublicKey(ctx, 7)
		if err != nil || !slices.Equal(k, k1.Public().Key) {
			t.Fatalf("key %x %v", k, err)
		}
	}
	if n := fa.calls.Load(); n != 1 {
		t.Fatalf("%d registrar calls for one twin", n)
	}
	// Unknown twins are remembered briefly.
	for range 2 {
		if _, err := c.TwinPublicKey(ctx, 8); !errors.Is(err, auth.ErrUnknownTwin) {
			t.Fatalf("unknown twin: %v", err)
		}
	}
	if n := fa.calls.Load(); n != 2 {
		t.Fatalf("%d calls", n)
	}
	fa.set(8, k2.Public().Key)
	clk.Advance(11 * time.Second)
	if _, err := c.TwinPublicKey(ctx, 8); err != nil {
		t.Fatalf("twin created meanwhile: %v", err)
	}
	// The key changes on the registrar: seen after TTL.
	fa.set(7, k2.Public().Key)
	if k, _ := c.TwinPublicKey(ctx, 7); !slices.Equal(k, k1.Public().Key) {
		t.Fatal("refetched before TTL")
	}
	clk.Advance(time.Minute)
	if k, _ := c.TwinPublicKey(ctx, 7); !slices.Equal(k, k2.Public().Key) {
		t.Fatal("old key after TTL")
	}
	// Refresh only evicts keys older than MinRefresh.
	if c.Refresh(7) {
		t.Fatal("refreshed a fresh key")
	}
	clk.Advance(6 * time.Second)
	if !c.Refresh(7) {
		t.Fatal("did not refresh an old key")
	}
	// A failing registrar is an error, not "unknown twin", and not cached.
	fa.fail = errors.New("registrar down")
	if _, err := c.TwinPublicKey(ctx, 7); err == nil || errors.Is(err, auth.ErrUnknownTwin) {
		t.Fatalf("registrar down: %v", err)
	}
	fa.fail = nil
	if _, err := c.TwinPublicKey(ctx, 7); err != nil {
		t.Fatal(err)
	}
}

func TestKeyCacheBounded(t *testing.T) {
	fa := &fakeAccounts{keys: map[uint64][]byte{}}
	k, _ := keys.Generate(keys.Ed25519)
	for i := uint64(1); i <= 10; i++ {
		fa.keys[i] = k.Public().Key
	}
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	c := NewTwinKeyCache(fa, KeyCacheConfig{MaxEntries: 4, Now: clk.Now})
	for i := uint64(1); i <= 10; i++ {
		clk.Advance(time.Second)
		if _, err := c.TwinPublicKey(context.Background(), i); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	ids := make([]int, 0)
	for id := range c.entries {
		ids = append(ids, int(id))
	}
	c.mu.Unlock()
	sort.Ints(ids)
	if !slices.Equal(ids, []int{7, 8, 9, 10}) {
		t.Fatalf("cache holds %v", ids)
	}
}

// stubEngine answers node.version only.
type stubEngine struct{ Engine }

func (stubEngine) Statistics(context.Context) (gridtypes.Statistics, error) {
	return gridtypes.Statistics{}, nil
}

func (stubEngine) Capacity(context.Context) (gridtypes.CapacityReport, error) {
	return gridtypes.CapacityReport{}, nil
}

// TestChangedKeyNotLockedOut: a twin whose key changed on the registrar
// is let in at once (its first request with the new key makes the node
// fetch the key again), not after the cache's TTL.
func TestChangedKeyNotLockedOut(t *testing.T) {
	oldKey, _ := keys.Generate(keys.Ed25519)
	newKey, _ := keys.Generate(keys.Sr25519)
	fa := &fakeAccounts{keys: map[uint64][]byte{7: oldKey.Public().Key}}
	clk := &clock{t: time.Now()}
	cache := NewTwinKeyCache(fa, KeyCacheConfig{TTL: time.Hour, MinRefresh: 10 * time.Second, Now: clk.Now})
	srv, err := New(Config{Engine: stubEngine{}, Keys: cache})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	ctx := context.Background()
	call := func(kp keys.KeyPair) error {
		c, err := zosclient.New(ts.URL, kp, 7, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Version(ctx)
		return err
	}
	if err := call(oldKey); err != nil {
		t.Fatal(err)
	}
	fa.set(7, newKey.Public().Key)
	// Within MinRefresh of the last fetch, a bad signature does not make
	// the node ask again (a stream of bad signatures cannot hammer the
	// registrar).
	if err := call(newKey); !errors.Is(err, zosclient.ErrUnauthorized) {
		t.Fatalf("new key right away: %v", err)
	}
	clk.Advance(11 * time.Second)
	before := fa.calls.Load()
	if err := call(newKey); err != nil {
		t.Fatalf("new key after MinRefresh: %v", err)
	}
	if fa.calls.Load() != before+1 {
		t.Fatal("the key was not fetched again")
	}
	// The old key no longer works.
	clk.Advance(11 * time.Second)
	if err := call(oldKey); !errors.Is(err, zosclient.ErrUnauthorized) {
		t.Fatalf("old key: %v", err)
	}
}

// TestOpenRPCMatchesServer: the document lists exactly the methods the
// server answers, every $ref resolves, and every error code is one the
// server uses.
func TestOpenRPCMatchesServer(t *testing.T) {
	var doc struct {
		OpenRPC string `json:"openrpc"`
		Methods []struct {
			Name   string `json:"name"`
			Errors []struct {
				Ref string `json:"$ref"`
			} `json:"errors"`
		} `json:"methods"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
			Errors  map[string]struct {
				Code int `json:"code"`
			} `json:"errors"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenRPC(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenRPC != "1.3.2" {
		t.Fatalf("openrpc %q", doc.OpenRPC)
	}
	srv, err := New(Config{Engine: stubEngine{}, Keys: NewTwinKeyCache(&fakeAccounts{}, KeyCacheConfig{})})
	if err != nil {
		t.Fatal(err)
	}
	var inDoc, inServer []string
	for _, m := range doc.Methods {
		inDoc = append(inDoc, m.Name)
		for _, e := range m.Errors {
			name := e.Ref[len("#/components/errors/"):]
			if _, ok := doc.Components.Errors[name]; !ok {
				t.Errorf("%s: error %s undefined", m.Name, e.Ref)
			}
		}
	}
	for name := range srv.methods {
		inServer = append(inServer, name)
	}
	sort.Strings(inDoc)
	sort.Strings(inServer)
	if !slices.Equal(inDoc, inServer) {
		t.Fatalf("document %v\nserver   %v", inDoc, inServer)
	}
	codes := map[int]bool{zosrpc.CodeInvalidParams: true, zosrpc.CodeNotFound: true, zosrpc.CodeForbidden: true, zosrpc.CodeConflict: true, zosrpc.CodeBusy: true, zosrpc.CodeCapacity: true, zosrpc.CodeSignature: true, zosrpc.CodeContract: true}
	for name, e := range doc.Components.Errors {
		if !codes[e.Code] {
			t.Errorf("error %s has code %d the server does not use", name, e.Code)
		}
	}
	// Every schema reference resolves.
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				const p = "#/components/schemas/"
				if len(ref) > len(p) && ref[:len(p)] == p {
					if _, ok := doc.Components.Schemas[ref[len(p):]]; !ok {
						t.Errorf("dangling %s", ref)
					}
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	var all any
	_ = json.Unmarshal(OpenRPC(), &all)
	walk(all)
}
