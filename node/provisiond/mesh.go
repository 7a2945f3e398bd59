package provisiond

import (
	"context"
	"fmt"
	"net/netip"

	bolt "go.etcd.io/bbolt"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/noderpc/api"
)

// Joiner is implemented by managers whose workloads are parts of
// something spread over several nodes: a network-light with a mesh. The
// node-to-node API reaches them through the engine (JoinNetwork,
// LeaveNetwork), which finds the workload a call is for.
type Joiner interface {
	// Join adds the part of node from, reachable at host, to the
	// workload of t, and returns t's own part.
	Join(ctx context.Context, t Task, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error)
	// Leave removes the part of node from; idempotent.
	Leave(ctx context.Context, t Task, from uint64) error
}

// JoinNetwork passes another node's part to req.TwinID's network-light
// workload named req.Network (ErrNotFound when this node has none, or
// only a deleted one). The caller is a node the node-to-node API
// authenticated.
func (e *Engine) JoinNetwork(ctx context.Context, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error) {
	t, j, err := e.networkTask(req.TwinID, req.Network, req.Range)
	if err != nil {
		return api.NetworkPart{}, err
	}
	return j.Join(ctx, t, from, host, req)
}

// LeaveNetwork tells req.TwinID's network-light workload named
// req.Network that node from's part is gone. A network this node does
// not hold (any more) has nothing to forget: nil.
func (e *Engine) LeaveNetwork(ctx context.Context, from uint64, req api.NetworkLeave) error {
	t, j, err := e.networkTask(req.TwinID, req.Network, req.Range)
	if err != nil {
		return nil
	}
	return j.Leave(ctx, t, from)
}

// networkTask finds the twin's network-light workload named name, meshed
// over rng, in a deployment that is not deleted (two deployments of a
// twin may each have a network of that name). Its state does not matter:
// two nodes provisioning their parts at once each find the other's half
// made.
func (e *Engine) networkTask(twin uint64, name, rng string) (Task, Joiner, error) {
	j, ok := e.c.Managers[gridtypes.NetworkLightType].(Joiner)
	if !ok {
		return Task{}, nil, fmt.Errorf("%w: this node does not join networks across nodes", gridtypes.ErrNotFound)
	}
	var t Task
	found := false
	err := e.db.View(func(tx *bolt.Tx) error {
		return txStore{tx}.records(func(r *gridtypes.Record) bool {
			if r.Deployment.TwinID != twin || r.Deleted {
				return true
			}
			w, ok := r.Deployment.Get(name)
			if !ok || w.Type != gridtypes.NetworkLightType || w.Result != nil && w.Result.State == gridtypes.StateDeleted {
				return true
			}
			var d gridtypes.NetworkLightData
			if w.DecodeData(&d) != nil || d.Mesh == nil || d.Mesh.Range != rng {
				return true
			}
			t = Task{TwinID: twin, DeploymentID: r.Deployment.ID, Workload: *w}
			if w.Result != nil {
				t.State = w.Result.State
			}
			found = true
			return false
		})
	})
	if err != nil {
		return Task{}, nil, err
	}
	if !found {
		return Task{}, nil, fmt.Errorf("%w: twin %d has no network %q over %s on this node", gridtypes.ErrNotFound, twin, name, rng)
	}
	return t, j, nil
}
