package registrar

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// Store is what the registrar needs from its persistence. *store.DB
// implements it; tests may wrap it.
type Store interface {
	Ping(ctx context.Context) error

	CreateAccount(ctx context.Context, a api.Account) (api.Account, error)
	AccountByTwin(ctx context.Context, twinID uint64) (api.Account, error)
	AccountByPublicKey(ctx context.Context, pubB64 string) (api.Account, error)
	UpdateAccount(ctx context.Context, twinID uint64, relays []string, rmbEncKey *string) (api.Account, error)

	CreateFarm(ctx context.Context, f api.Farm) (api.Farm, error)
	Farm(ctx context.Context, farmID uint64) (api.Farm, error)
	ListFarms(ctx context.Context, f store.FarmFilter, p store.Page) ([]api.Farm, error)
	UpdateFarm(ctx context.Context, farmID uint64, u api.UpdateFarmRequest) (api.Farm, error)

	CreateNode(ctx context.Context, n api.Node) (api.Node, error)
	Node(ctx context.Context, nodeID uint64) (api.Node, error)
	ListNodes(ctx context.Context, f store.NodeFilter, p store.Page) ([]api.Node, error)
	UpdateNode(ctx context.Context, nodeID uint64, n api.Node) (api.Node, error)
	SetApproval(ctx context.Context, farmID uint64, nodeIDs []uint64, approved bool) error
	CountNodes(ctx context.Context) (uint64, error)
	CountFarms(ctx context.Context) (uint64, error)
	NodeCounts(ctx context.Context, since time.Time) ([]store.NodeCount, error)
	StatusTotals(ctx context.Context, since time.Time) (store.StatusTotals, error)

	RecordUptime(ctx context.Context, nodeID uint64, at time.Time, uptime uint64) (store.UptimeResult, error)
	RecordUptimeOnce(ctx context.Context, nodeID uint64, at time.Time, uptime uint64, n store.Nonce) (store.UptimeResult, error)
	UptimeSessions(ctx context.Context, nodeID uint64, since, until time.Time, limit int) ([]api.UptimeSession, error)
	RecordNodeStatus(ctx context.Context, nodeID uint64, at time.Time, st api.NodeStatus) error
	NodeStatus(ctx context.Context, nodeID uint64, limit int) (*api.NodeStatus, []api.NodeStatus, error)
	PruneUptime(ctx context.Context, before time.Time) (int64, error)
	SetPowerTarget(ctx context.Context, nodeID uint64, target string, by uint64, at time.Time) error
	PowerTarget(ctx context.Context, nodeID uint64) (api.NodePower, error)

	SetZosVersion(ctx context.Context, v api.ZosVersion) (api.ZosVersion, error)
	CurrentZosVersion(ctx context.Context) (api.ZosVersion, error)
	ZosVersionHistory(ctx context.Context, p store.Page) ([]api.ZosVersion, error)

	UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error
	PruneNonces(ctx context.Context, now time.Time) (int64, error)

	SetFarmPricing(ctx context.Context, farmID uint64, at time.Time, p api.Prices) (api.PricingEntry, error)
	FarmPricing(ctx context.Context, farmID uint64) ([]api.PricingEntry, error)
	SetFarmSLA(ctx context.Context, farmID uint64, at time.Time, sla api.SLA) error
	FarmSLA(ctx context.Context, farmID uint64) (api.SLA, error)

	CreateContract(ctx context.Context, c api.Contract, at time.Time) (api.Contract, error)
	Contract(ctx context.Context, id uint64) (api.Contract, error)
	ListContracts(ctx context.Context, f store.ContractFilter) ([]api.Contract, error)
	UpdateContract(ctx context.Context, id uint64, hash *string, res *api.Capacity, at time.Time) (api.Contract, error)
	DeleteContract(ctx context.Context, id uint64, reason string, at time.Time) (api.Contract, error)
	RecordUsage(ctx context.Context, nodeID uint64, period time.Time, usage []api.Usage, at time.Time) error

	Credit(ctx context.Context, twinID uint64, amount int64, reference string, at time.Time) (int64, bool, error)
	Balance(ctx context.Context, a store.Account) (int64, error)
	Ledger(ctx context.Context, a store.Account, afterID, size uint64) ([]api.LedgerLine, error)
	Bill(ctx context.Context, p store.BillingParams) (store.BillingResult, error)
	ExpireGrace(ctx context.Context, before, at time.Time) (int64, error)
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
}

// storeNonces adapts the store's nonce table to auth.NonceStore, so that
// every registrar process on one database shares replay protection.
type storeNonces struct{ s Store }

// UseNonce implements auth.NonceStore: the store's conflict is a replay.
func (n storeNonces) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	err := n.s.UseNonce(ctx, keyID, nonce, expires)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("%w: %w", auth.ErrReplay, err)
	}
	return err
}

// twinKeyStore is implemented by stores (*store.DB) that read a twin's key
// and its node's id in one query. The key cache then fills the node owner
// cache on the way, so an uptime report whose twin and node are not cached
// (the normal case in a large fleet: each node reports once an interval)
// costs one read instead of two.
type twinKeyStore interface {
	TwinKey(ctx context.Context, twinID uint64) (pubB64 string, nodeID uint64, err error)
}

// keyCache implements auth.TwinKeys over the store with a small cache.
// Entries expire after ttl, so a key changed in the database (by another
// process, or by an operator) is picked up within ttl. Unknown twins are not
// cached: an account created a moment ago must work at once. The cache is
// bounded; when full it is emptied, which costs one store read per twin.
type keyCache struct {
	s   Store
	ttl time.Duration
	now func() time.Time
	max int
	// owners, when set and the store is a twinKeyStore, learns the node
	// of every twin whose key is read from the store.
	owners *nodeOwners

	mu      sync.Mutex
	entries map[uint64]cachedKey
}

type cachedKey struct {
	key []byte
	at  time.Time
}

// maxCachedKeys bounds the key cache (32-byte keys: a few MB at most).
const maxCachedKeys = 200_000

func newKeyCache(s Store, ttl time.Duration, now func() time.Time) *keyCache {
	return &keyCache{s: s, ttl: ttl, now: now, max: maxCachedKeys, entries: make(map[uint64]cachedKey)}
}

// TwinPublicKey implements auth.TwinKeys.
func (c *keyCache) TwinPublicKey(ctx context.Context, twinID uint64) ([]byte, error) {
	now := c.now()
	if c.ttl > 0 {
		c.mu.Lock()
		e, ok := c.entries[twinID]
		c.mu.Unlock()
		if ok && now.Sub(e.at) < c.ttl {
			return e.key, nil
		}
	}
	pubB64, err := c.load(ctx, twinID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: no account with twin id %d", auth.ErrUnknownTwin, twinID)
	}
	if err != nil {
		return nil, fmt.Errorf("loading account of twin %d: %w", twinID, err)
	}
	key, err := strictb64.Std(pubB64)
	if err != nil {
		return nil, fmt.Errorf("stored public key of twin %d is not base64: %w", twinID, err)
	}
	if c.ttl > 0 {
		c.mu.Lock()
		if len(c.entries) >= c.max {
			clear(c.entries)
		}
		c.entries[twinID] = cachedKey{key: key, at: now}
		c.mu.Unlock()
	}
	return key, nil
}

// load reads the base64 key of twinID from the store, noting the twin's
// node in the owner cache when the store tells it.
func (c *keyCache) load(ctx context.Context, twinID uint64) (string, error) {
	if ks, ok := c.s.(twinKeyStore); ok && c.owners != nil {
		pub, node, err := ks.TwinKey(ctx, twinID)
		if err == nil && node != 0 {
			c.owners.put(node, twinID)
		}
		return pub, err
	}
	acc, err := c.s.AccountByTwin(ctx, twinID)
	return acc.PublicKey, err
}

// nodeOwners caches which twin owns a node. A node's twin never changes
// (a twin registers exactly one node and PATCH cannot move it), so entries
// never go stale; the cache only saves the uptime hot path a read. It is
// bounded like keyCache.
type nodeOwners struct {
	mu      sync.Mutex
	max     int
	entries map[uint64]uint64
}

func newNodeOwners() *nodeOwners {
	return &nodeOwners{max: maxCachedKeys, entries: make(map[uint64]uint64)}
}

func (o *nodeOwners) get(nodeID uint64) (uint64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	t, ok := o.entries[nodeID]
	return t, ok
}

func (o *nodeOwners) put(nodeID, twinID uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.entries) >= o.max {
		clear(o.entries)
	}
	o.entries[nodeID] = twinID
}
