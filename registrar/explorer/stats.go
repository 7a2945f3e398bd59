package explorer

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/grid4/grid4/store"
)

// gridStats are the grid's counts and totals at one time.
type gridStats struct {
	At       time.Time
	Cutoff   time.Duration
	Farms    uint64
	Nodes    nodeTally
	Status   store.StatusTotals
	Versions []versionTally // most nodes first
	byFarm   map[uint64]nodeTally
}

// nodeTally counts nodes: all, online and approved.
type nodeTally struct {
	Nodes, Online, Approved uint64
}

func (t *nodeTally) add(c store.NodeCount) {
	t.Nodes += c.Nodes
	t.Online += c.Online
	if c.Approved {
		t.Approved += c.Nodes
	}
}

// versionTally is the nodes running one ZOS version.
type versionTally struct {
	Version string
	nodeTally
}

// farm returns the tally of farm id (zero when it has no node).
func (g *gridStats) farm(id uint64) nodeTally { return g.byFarm[id] }

// loadStats counts the grid: three queries over whole tables.
func (e *Explorer) loadStats(ctx context.Context) (*gridStats, error) {
	now := e.d.Now()
	cutoff := e.d.OnlineCutoff(ctx)
	since := now.Add(-cutoff)
	g := &gridStats{At: now, Cutoff: cutoff, byFarm: map[uint64]nodeTally{}}
	var err error
	if g.Farms, err = e.d.Store.CountFarms(ctx); err != nil {
		return nil, err
	}
	counts, err := e.d.Store.NodeCounts(ctx, since)
	if err != nil {
		return nil, err
	}
	if g.Status, err = e.d.Store.StatusTotals(ctx, since); err != nil {
		return nil, err
	}
	versions := map[string]*versionTally{}
	for _, c := range counts {
		g.Nodes.add(c)
		f := g.byFarm[c.FarmID]
		f.add(c)
		g.byFarm[c.FarmID] = f
		v := versions[c.Version]
		if v == nil {
			v = &versionTally{Version: c.Version}
			versions[c.Version] = v
		}
		v.add(c)
	}
	for _, v := range versions {
		g.Versions = append(g.Versions, *v)
	}
	slices.SortFunc(g.Versions, func(a, b versionTally) int {
		return cmp.Or(cmp.Compare(b.Nodes, a.Nodes), cmp.Compare(a.Version, b.Version))
	})
	return g, nil
}

// statsRefreshTimeout bounds one computation of the grid's counts.
const statsRefreshTimeout = time.Minute

// statsCache keeps the grid's counts for ttl. Once they are older it
// still serves them while one computation runs in the background, so
// that no visitor waits for a count of a million nodes; only the very
// first visitors wait (all for the same computation).
type statsCache struct {
	load func(ctx context.Context) (*gridStats, error)
	now  func() time.Time
	ttl  time.Duration
	log  *slog.Logger

	mu     sync.Mutex
	cur    *gridStats
	flight *statsFlight // the computation running, if any
}

// statsFlight is one computation of the counts, shared by its waiters.
type statsFlight struct {
	done  chan struct{}
	stats *gridStats
	err   error
}

func newStatsCache(load func(ctx context.Context) (*gridStats, error), now func() time.Time, ttl time.Duration, log *slog.Logger) *statsCache {
	return &statsCache{load: load, now: now, ttl: ttl, log: log}
}

// get returns the counts: the cached ones (starting a new computation
// when they are older than ttl), or, before the first, the result of a
// computation it waits for.
func (c *statsCache) get(ctx context.Context) (*gridStats, error) {
	c.mu.Lock()
	cur := c.cur
	if cur != nil && c.now().Sub(cur.At) < c.ttl {
		c.mu.Unlock()
		return cur, nil
	}
	fl := c.flight
	if fl == nil {
		fl = &statsFlight{done: make(chan struct{})}
		c.flight = fl
		go c.compute(fl)
	}
	c.mu.Unlock()
	if cur != nil {
		return cur, nil
	}
	select {
	case <-fl.done:
		return fl.stats, fl.err
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the grid's counts: %w", ctx.Err())
	}
}

// compute runs one computation, detached from the request that started
// it (others wait for it, or are served the previous counts).
func (c *statsCache) compute(fl *statsFlight) {
	ctx, cancel := context.WithTimeout(context.Background(), statsRefreshTimeout)
	defer cancel()
	start := time.Now()
	st, err := c.load(ctx)
	c.mu.Lock()
	if err == nil {
		c.cur = st
	}
	c.flight = nil
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("explorer: counting the grid", "error", err)
		err = fmt.Errorf("counting the grid: %w", err)
	} else {
		c.log.Debug("explorer: counted the grid", "nodes", st.Nodes.Nodes, "took", time.Since(start))
	}
	fl.stats, fl.err = st, err
	close(fl.done)
}
