package noderpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grid4/grid4/internal/jsonrpc"
	rpcclient "github.com/grid4/grid4/node/noderpc/client"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// Registrar is what Peers reads of the registrar: node records (public
// reads; the registrar's client.Client does).
type Registrar interface {
	Node(ctx context.Context, nodeID uint64) (api.Node, error)
	NodeByTwin(ctx context.Context, twinID uint64) (api.Node, error)
	ListNodes(ctx context.Context, filter client.NodeFilter, page client.Page) ([]api.Node, error)
}

// ErrNotNode is returned for a twin or node id the registrar has no node
// record of.
var ErrNotNode = errors.New("not a registered node")

// ErrNoEndpoint is returned for a node that published no usable API
// endpoint.
var ErrNoEndpoint = errors.New("the node published no API endpoint")

// Defaults of PeersConfig.
const (
	DefaultPeerTTL     = 5 * time.Minute
	DefaultNegativeTTL = 30 * time.Second
	DefaultMaxPeers    = 10_000
)

// PeersConfig configures Peers; zero values mean the defaults.
type PeersConfig struct {
	// TTL is how long a node record is used before it is read again.
	TTL time.Duration
	// NegativeTTL is how long "no such node" is remembered.
	NegativeTTL time.Duration
	// MaxEntries bounds the cache (it is emptied when full).
	MaxEntries int
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Peers is the node's view of the other nodes: their records from the
// registrar (the node key is the record's twin's, the endpoints are its
// published zos-api-light endpoints), cached for TTL and read again when a
// call to the node fails, and the calls to them.
type Peers struct {
	reg    Registrar
	client *rpcclient.Client
	c      PeersConfig

	mu     sync.Mutex
	byTwin map[uint64]peerEntry
	byID   map[uint64]peerEntry
	farms  map[uint64]farmEntry
}

type peerEntry struct {
	node    *api.Node // nil: no such node
	fetched time.Time
}

type farmEntry struct {
	nodes   []api.Node
	fetched time.Time
}

// NewPeers returns the peers read from reg and called with c (nil: Peers
// only identifies callers).
func NewPeers(reg Registrar, c *rpcclient.Client, cfg PeersConfig) *Peers {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultPeerTTL
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = DefaultNegativeTTL
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxPeers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Peers{reg: reg, client: c, c: cfg, byTwin: map[uint64]peerEntry{}, byID: map[uint64]peerEntry{}, farms: map[uint64]farmEntry{}}
}

// ByTwin returns the node whose twin is twinID; ErrNotNode when the twin
// has none (a user's twin, or no twin at all).
func (p *Peers) ByTwin(ctx context.Context, twinID uint64) (api.Node, error) {
	return p.lookup(ctx, p.byTwin, twinID, func(ctx context.Context) (api.Node, error) { return p.reg.NodeByTwin(ctx, twinID) })
}

// Node returns the node nodeID; ErrNotNode when there is none.
func (p *Peers) Node(ctx context.Context, nodeID uint64) (api.Node, error) {
	return p.lookup(ctx, p.byID, nodeID, func(ctx context.Context) (api.Node, error) { return p.reg.Node(ctx, nodeID) })
}

// lookup answers from cache when fresh, else from fetch.
func (p *Peers) lookup(ctx context.Context, cache map[uint64]peerEntry, key uint64, fetch func(context.Context) (api.Node, error)) (api.Node, error) {
	now := p.c.Now()
	p.mu.Lock()
	e, ok := cache[key]
	p.mu.Unlock()
	if ok {
		ttl := p.c.TTL
		if e.node == nil {
			ttl = p.c.NegativeTTL
		}
		if now.Sub(e.fetched) < ttl {
			return e.result()
		}
	}
	n, err := fetch(ctx)
	switch {
	case errors.Is(err, client.ErrNotFound):
		e = peerEntry{fetched: now}
		p.mu.Lock()
		p.makeRoom()
		cache[key] = e
		p.mu.Unlock()
		return e.result()
	case err != nil:
		return api.Node{}, fmt.Errorf("node record from the registrar: %w", err)
	}
	p.remember(n, now)
	return n, nil
}

func (e peerEntry) result() (api.Node, error) {
	if e.node == nil {
		return api.Node{}, ErrNotNode
	}
	return *e.node, nil
}

// remember caches n under its twin and node ids.
func (p *Peers) remember(n api.Node, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.makeRoom()
	e := peerEntry{node: &n, fetched: now}
	p.byTwin[n.TwinID] = e
	p.byID[n.NodeID] = e
}

// makeRoom empties the caches when full (p.mu held): entries are cheap to
// read again, and a full cache means many callers, not a few hot ones.
func (p *Peers) makeRoom() {
	if len(p.byTwin)+len(p.byID) >= p.c.MaxEntries {
		clear(p.byTwin)
		clear(p.byID)
		clear(p.farms)
	}
}

// Forget drops what is cached of nodeID, so the next use reads the
// registrar again (a call to it failed: it may have moved).
func (p *Peers) Forget(nodeID uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.byID[nodeID]; ok && e.node != nil {
		delete(p.byTwin, e.node.TwinID)
		delete(p.farms, e.node.FarmID)
	}
	delete(p.byID, nodeID)
}

// Farm returns the nodes of farmID (cached for TTL).
func (p *Peers) Farm(ctx context.Context, farmID uint64) ([]api.Node, error) {
	now := p.c.Now()
	p.mu.Lock()
	e, ok := p.farms[farmID]
	p.mu.Unlock()
	if ok && now.Sub(e.fetched) < p.c.TTL {
		return e.nodes, nil
	}
	var nodes []api.Node
	for page := uint64(1); ; page++ {
		batch, err := p.reg.ListNodes(ctx, client.NodeFilter{FarmID: farmID}, client.Page{Number: page, Size: client.DefaultPageSize})
		if err != nil {
			return nil, fmt.Errorf("nodes of farm %d from the registrar: %w", farmID, err)
		}
		nodes = append(nodes, batch...)
		if len(batch) < client.DefaultPageSize {
			break
		}
	}
	for _, n := range nodes {
		p.remember(n, now)
	}
	p.mu.Lock()
	p.farms[farmID] = farmEntry{nodes: nodes, fetched: now}
	p.mu.Unlock()
	return nodes, nil
}

// Call calls method on node nodeID, trying its published endpoints in
// turn. When none answers, the node's record is read again from the
// registrar and its endpoints tried once more. An answer of the node
// (a JSON-RPC error or an HTTP refusal) is returned as it is.
func (p *Peers) Call(ctx context.Context, nodeID uint64, method string, params, result any) error {
	if p.client == nil {
		return errors.New("noderpc: these peers have no client")
	}
	var last error
	for attempt := 0; attempt < 2; attempt++ {
		n, err := p.Node(ctx, nodeID)
		if err != nil {
			return fmt.Errorf("node %d: %w", nodeID, err)
		}
		last = fmt.Errorf("node %d: %w", nodeID, ErrNoEndpoint)
		for _, ep := range n.APIEndpoints {
			url, err := rpcclient.Endpoint(ep)
			if err != nil {
				continue
			}
			err = p.client.Call(ctx, url, nodeID, method, params, result)
			if err == nil || answered(err) || ctx.Err() != nil {
				return err
			}
			last = err
		}
		p.Forget(nodeID)
	}
	return last
}

// answered reports whether err is the node's own answer (not a failure to
// reach it).
func answered(err error) bool {
	var re *jsonrpc.Error
	var he *jsonrpc.HTTPError
	return errors.As(err, &re) || errors.As(err, &he)
}
