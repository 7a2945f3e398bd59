package auth

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// NonceStore remembers nonces until they expire, to refuse replays.
//
// UseNonce records nonce for keyID until expires and returns nil, or
// returns an error wrapping ErrReplay when the same (keyID, nonce) was
// recorded before and has not expired yet. Any other error makes the
// verifier answer 500 (or 503 for ErrNonceStoreFull). Implementations must
// be safe for concurrent use; the check and the record must be atomic (for
// SQL: INSERT ... ON CONFLICT DO NOTHING and look at the row count, after
// deleting or ignoring expired rows).
type NonceStore interface {
	UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error
}

// DefaultMaxNonces is the default bound of a MemoryNonceStore.
const DefaultMaxNonces = 200_000

// MemoryNonceStore is an in-process NonceStore. It is bounded: when full it
// first drops expired entries and, if still full, refuses new nonces with
// ErrNonceStoreFull rather than forgetting live ones (failing closed).
// Expired entries are swept on every call, oldest first, in O(log n) each.
// The zero value is not usable; call NewMemoryNonceStore.
type MemoryNonceStore struct {
	mu      sync.Mutex
	now     func() time.Time
	max     int
	entries map[nonceKey]time.Time
	byTime  nonceHeap
}

type nonceKey struct{ keyID, nonce string }

type nonceEntry struct {
	key     nonceKey
	expires time.Time
}

// nonceHeap is a min-heap of entries by expiry.
type nonceHeap []nonceEntry

func (h nonceHeap) Len() int           { return len(h) }
func (h nonceHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h nonceHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *nonceHeap) Push(x any)        { *h = append(*h, x.(nonceEntry)) }
func (h *nonceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// NewMemoryNonceStore makes an in-memory store holding at most maxEntries
// live nonces (<= 0 means DefaultMaxNonces). now is its clock (nil means
// time.Now).
func NewMemoryNonceStore(maxEntries int, now func() time.Time) *MemoryNonceStore {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxNonces
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryNonceStore{now: now, max: maxEntries, entries: make(map[nonceKey]time.Time)}
}

// UseNonce implements NonceStore. A nonce whose expires time is already past
// is accepted and not stored: the verifier refuses expired signatures anyway.
func (s *MemoryNonceStore) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	k := nonceKey{keyID, nonce}
	if _, seen := s.entries[k]; seen {
		return fmt.Errorf("%w: nonce %q of key %q was already used", ErrReplay, nonce, keyID)
	}
	if !expires.After(now) {
		return nil
	}
	if len(s.entries) >= s.max {
		return fmt.Errorf("%w: %d live nonces", ErrNonceStoreFull, len(s.entries))
	}
	s.entries[k] = expires
	heap.Push(&s.byTime, nonceEntry{key: k, expires: expires})
	return nil
}

// Len returns the number of live (unexpired, not yet swept) nonces.
func (s *MemoryNonceStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	return len(s.entries)
}

func (s *MemoryNonceStore) sweepLocked(now time.Time) {
	for len(s.byTime) > 0 && !s.byTime[0].expires.After(now) {
		e := heap.Pop(&s.byTime).(nonceEntry)
		delete(s.entries, e.key)
	}
}
