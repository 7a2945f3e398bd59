package provisiond

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/hostinfo"
)

// CapacityProvider reports the node's total capacity for workloads.
type CapacityProvider interface {
	Total(ctx context.Context) (gridtypes.Resources, error)
}

// FixedCapacity is a capacity given by configuration.
type FixedCapacity gridtypes.Resources

// Total returns c.
func (c FixedCapacity) Total(context.Context) (gridtypes.Resources, error) {
	return gridtypes.Resources(c), nil
}

// Prober probes the machine (hostinfo.Prober does).
type Prober interface {
	Probe(ctx context.Context) (hostinfo.Facts, error)
}

// HostCapacity is the capacity of the machine as node/hostinfo measures it,
// minus what the node keeps for itself, plus the public IPv4 addresses the
// node was configured with. Probes are cached for TTL: the hardware does
// not change between two deployments.
type HostCapacity struct {
	prober    Prober
	reserved  gridtypes.Resources
	publicIPs uint64
	ttl       time.Duration
	now       func() time.Time

	mu     sync.Mutex
	cached gridtypes.Resources
	at     time.Time
}

// NewHostCapacity returns a HostCapacity. reserved is subtracted from the
// probed resources (memory and disk for the node's own services);
// publicIPs is the size of the node's public address pool; ttl zero means
// ten minutes; now nil means time.Now.
func NewHostCapacity(p Prober, reserved gridtypes.Resources, publicIPs uint64, ttl time.Duration, now func() time.Time) *HostCapacity {
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	if now == nil {
		now = time.Now
	}
	return &HostCapacity{prober: p, reserved: reserved, publicIPs: publicIPs, ttl: ttl, now: now}
}

// Total probes the machine (or returns the cached probe).
func (h *HostCapacity) Total(ctx context.Context) (gridtypes.Resources, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && h.now().Sub(h.at) < h.ttl {
		return h.cached, nil
	}
	f, err := h.prober.Probe(ctx)
	if err != nil {
		return gridtypes.Resources{}, fmt.Errorf("probe node capacity: %w", err)
	}
	r := f.Resources()
	total := gridtypes.Resources{CRU: r.CRU, MRU: r.MRU, SRU: r.SRU, HRU: r.HRU}.Sub(h.reserved)
	total.IPv4 = h.publicIPs
	h.cached, h.at = total, h.now()
	return total, nil
}

// holdsResources reports whether a workload in state s counts against the
// node's capacity. Queued, running and paused workloads do; failed ones
// were rolled back and deleted ones are gone.
func holdsResources(s gridtypes.State) bool {
	return s == gridtypes.StateInit || s == gridtypes.StateOk || s == gridtypes.StatePaused
}
