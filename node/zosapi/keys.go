package zosapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// AccountLookup finds a twin's account on the registrar
// (the registrar's client.Client does).
type AccountLookup interface {
	AccountByTwin(ctx context.Context, twinID uint64) (api.Account, error)
}

// Defaults of KeyCacheConfig.
const (
	DefaultKeyTTL         = 5 * time.Minute
	DefaultNegativeKeyTTL = 30 * time.Second
	DefaultKeyCacheSize   = 10_000
	// DefaultMinRefresh is how old a cached key must be before a bad
	// signature makes the cache ask the registrar again.
	DefaultMinRefresh = 10 * time.Second
)

// KeyCacheConfig configures a TwinKeyCache; zero values mean the
// defaults.
type KeyCacheConfig struct {
	// TTL is how long a key is used before it is fetched again.
	TTL time.Duration
	// NegativeTTL is how long "no such twin" is remembered.
	NegativeTTL time.Duration
	// MinRefresh is the least age of a key that a failed signature may
	// evict (so a flood of bad signatures cannot flood the registrar).
	MinRefresh time.Duration
	// MaxEntries bounds the cache.
	MaxEntries int
	// Now is the clock (time.Now).
	Now func() time.Time
}

// TwinKeyCache is the node's auth.TwinKeys (and gridtypes.TwinKeys): a
// twin's public key as its registrar account says, cached for TTL. A twin
// whose key changed on the registrar is therefore never locked out for
// longer than TTL, and less when its new signatures arrive: a signature
// that does not verify against a key older than MinRefresh evicts it, and
// the request is checked again with the registrar's current key (see
// Server).
type TwinKeyCache struct {
	accounts AccountLookup
	c        KeyCacheConfig
	group    singleflight.Group

	mu      sync.Mutex
	entries map[uint64]keyEntry
}

type keyEntry struct {
	key     []byte // nil: the twin does not exist
	fetched time.Time
}

// NewTwinKeyCache returns a cache over accounts.
func NewTwinKeyCache(accounts AccountLookup, c KeyCacheConfig) *TwinKeyCache {
	if c.TTL <= 0 {
		c.TTL = DefaultKeyTTL
	}
	if c.NegativeTTL <= 0 {
		c.NegativeTTL = DefaultNegativeKeyTTL
	}
	if c.MinRefresh <= 0 {
		c.MinRefresh = DefaultMinRefresh
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultKeyCacheSize
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &TwinKeyCache{accounts: accounts, c: c, entries: map[uint64]keyEntry{}}
}

// lookupNote, in a request's context, records which twin's key the
// verifier looked up, so the server knows which entry a bad signature
// concerns.
type lookupNote struct {
	twin  uint64
	found bool
}

type noteKey struct{}

func withLookupNote(ctx context.Context, n *lookupNote) context.Context {
	return context.WithValue(ctx, noteKey{}, n)
}

// TwinPublicKey returns the twin's 32-byte key. Unknown twins give an
// error wrapping auth.ErrUnknownTwin; a registrar that cannot be asked
// gives another error (the verifier answers 500).
func (c *TwinKeyCache) TwinPublicKey(ctx context.Context, twinID uint64) ([]byte, error) {
	if n, ok := ctx.Value(noteKey{}).(*lookupNote); ok {
		n.twin, n.found = twinID, true
	}
	now := c.c.Now()
	c.mu.Lock()
	e, ok := c.entries[twinID]
	c.mu.Unlock()
	if ok {
		ttl := c.c.TTL
		if e.key == nil {
			ttl = c.c.NegativeTTL
		}
		if now.Sub(e.fetched) < ttl {
			return e.result()
		}
	}
	v, err, _ := c.group.Do(fmt.Sprint(twinID), func() (any, error) {
		// Detached from the caller: the result is shared by every
		// request waiting for this twin.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		acc, err := c.accounts.AccountByTwin(lctx, twinID)
		var e keyEntry
		switch {
		case errors.Is(err, client.ErrNotFound):
			e = keyEntry{fetched: c.c.Now()}
		case err != nil:
			return nil, fmt.Errorf("key of twin %d from the registrar: %w", twinID, err)
		default:
			key, derr := strictb64.Std(acc.PublicKey)
			if derr != nil || len(key) != keys.PublicKeySize {
				return nil, fmt.Errorf("registrar account of twin %d has an unusable public key", twinID)
			}
			e = keyEntry{key: key, fetched: c.c.Now()}
		}
		c.store(twinID, e)
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(keyEntry).result()
}

func (e keyEntry) result() ([]byte, error) {
	if e.key == nil {
		// The verifier names the twin already.
		return nil, fmt.Errorf("%w: no account on the registrar", auth.ErrUnknownTwin)
	}
	return e.key, nil
}

func (c *TwinKeyCache) store(twinID uint64, e keyEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.c.MaxEntries {
		// Full: drop the expired entries, or else the oldest one.
		now := c.c.Now()
		var oldest uint64
		var oldestAt time.Time
		for id, x := range c.entries {
			if now.Sub(x.fetched) >= c.c.TTL {
				delete(c.entries, id)
				continue
			}
			if oldestAt.IsZero() || x.fetched.Before(oldestAt) {
				oldest, oldestAt = id, x.fetched
			}
		}
		if len(c.entries) >= c.c.MaxEntries {
			delete(c.entries, oldest)
		}
	}
	c.entries[twinID] = e
}

// Refresh evicts the twin's entry if it is older than MinRefresh, and
// reports whether it did (then the next lookup asks the registrar).
func (c *TwinKeyCache) Refresh(twinID uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[twinID]
	if !ok || c.c.Now().Sub(e.fetched) < c.c.MinRefresh {
		return false
	}
	delete(c.entries, twinID)
	return true
}
