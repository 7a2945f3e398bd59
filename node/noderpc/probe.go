package noderpc

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/grid4/grid4/node/noderpc/api"
	regapi "github.com/grid4/grid4/registrar/api"
)

// Defaults of the probes.
const (
	// DefaultProbes is how many peers one probe round pings.
	DefaultProbes = 3
	// ProbeTimeout bounds one ping.
	ProbeTimeout = 3 * time.Second
)

// Prober pings a few other nodes of the node's farm each round, in turn
// (a round starts where the last one stopped, so every node of a large
// farm is probed in a while), for the status report: a node that reaches
// none of its peers but the registrar is cut off from its farm; a node
// the registrar no longer hears from but its peers reach is cut off from
// the registrar; one that neither hears from is down (docs/node-rpc.md).
type Prober struct {
	peers *Peers
	self  Self
	n     int

	mu      sync.Mutex
	next    int
	last    regapi.PeerReachability
	running bool
}

// NewProber returns a prober of n peers a round (DefaultProbes when 0)
// of self's farm.
func NewProber(p *Peers, self Self, n int) *Prober {
	if n <= 0 {
		n = DefaultProbes
	}
	return &Prober{peers: p, self: self, n: n}
}

// Last returns the last finished round (none, Probed 0, before the
// first) and starts the next one in the background unless one runs: the
// status report never waits for peers that do not answer.
func (p *Prober) Last(ctx context.Context) (regapi.PeerReachability, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		p.running = true
		go func() {
			// Detached from the asking call, bounded by its own time.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*ProbeTimeout)
			defer cancel()
			r, err := p.Probe(rctx)
			p.mu.Lock()
			defer p.mu.Unlock()
			p.running = false
			if err == nil {
				p.last = r
			}
		}()
	}
	return p.last, nil
}

// Probe pings the next few nodes of the farm now. A farm of one node
// probes nothing (Probed 0).
func (p *Prober) Probe(ctx context.Context) (regapi.PeerReachability, error) {
	nodes, err := p.peers.Farm(ctx, p.self.FarmID)
	if err != nil {
		return regapi.PeerReachability{}, err
	}
	var ids []uint64
	for _, n := range nodes {
		if n.NodeID != p.self.NodeID {
			ids = append(ids, n.NodeID)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return regapi.PeerReachability{}, nil
	}
	p.mu.Lock()
	start := p.next % len(ids)
	p.next = start + min(p.n, len(ids))
	p.mu.Unlock()
	var pick []uint64
	for i := range min(p.n, len(ids)) {
		pick = append(pick, ids[(start+i)%len(ids)])
	}
	out := regapi.PeerReachability{Probed: uint64(len(pick)), Probes: make([]regapi.PeerProbe, len(pick))}
	var wg sync.WaitGroup
	for i, id := range pick {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
			defer cancel()
			pr := regapi.PeerProbe{NodeID: id, Reached: true}
			if err := p.peers.Call(cctx, id, api.MethodPing, nil, nil); err != nil {
				pr.Reached, pr.Error = false, err.Error()
			}
			out.Probes[i] = pr
		})
	}
	wg.Wait()
	for _, pr := range out.Probes {
		if pr.Reached {
			out.Reached++
		}
	}
	return out, nil
}
