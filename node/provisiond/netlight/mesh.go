package netlight

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/noderpc/api"
	"github.com/grid4/grid4/node/provisiond"
)

// A network-light workload with a mesh is one part of a twin's network
// spread over nodes. Provisioning a part makes it alone (netlightd gives
// it a WireGuard key and port), then calls each node the part lists
// (network.v1.join over the node-to-node API): a node holding a part of
// the same twin, name and range that lists this node answers with its
// own and adds this one. A node that has no part yet fails the call; it
// joins this one when it provisions its own, so the order in which the
// parts are made does not matter. Removing a part tells the others
// (network.v1.leave). Peers are recorded by netlightd with the part, so
// a restart needs no exchange; a restore after a reboot joins again.

// Peers is the node-to-node API as the manager uses it
// (noderpc.Stub): host is the other node's address, from its registrar
// record.
type Peers interface {
	JoinNetwork(ctx context.Context, node uint64, req api.NetworkJoin) (part api.NetworkPart, host netip.Addr, err error)
	LeaveNetwork(ctx context.Context, node uint64, req api.NetworkLeave) error
}

// callTimeout bounds one call to another node: a part is made whether or
// not the others answer.
const callTimeout = 10 * time.Second

// MeshResult is a part's side of a network across nodes, as reported.
type MeshResult struct {
	// Range is the whole network's range.
	Range string `json:"range"`
	// PublicKey and Port are this part's WireGuard key and UDP port.
	PublicKey string `json:"public_key"`
	Port      uint16 `json:"port"`
	// Peers are the other parts joined so far.
	Peers []MeshPeer `json:"peers"`
	// Waiting are the listed nodes not joined yet (no part there yet, or
	// unreachable): they join this part when they make theirs.
	Waiting []uint64 `json:"waiting,omitempty"`
}

// MeshPeer is another node's part as joined.
type MeshPeer struct {
	Node     uint64 `json:"node"`
	Subnet   string `json:"subnet"`
	Endpoint string `json:"endpoint"`
}

// canMesh says why this node cannot make the part, or nil.
func (m *Manager) canMesh(mesh *gridtypes.NetworkMesh) error {
	if m.c.Peers == nil {
		return fmt.Errorf("network-light: this node cannot join networks across nodes (no node-to-node API)")
	}
	if slices.Contains(mesh.Nodes, m.c.NodeID) {
		return fmt.Errorf("network-light: mesh.nodes lists this node (%d): list the other nodes only", m.c.NodeID)
	}
	return nil
}

// join makes the part, calls every listed node and sets the peers that
// answered, keeping those known before that are still listed.
func (m *Manager) join(ctx context.Context, t provisiond.Task, subnet netip.Prefix, mesh *gridtypes.NetworkMesh) (*MeshResult, error) {
	rng, err := mesh.RangePrefix()
	if err != nil {
		return nil, fmt.Errorf("network-light: %w", err)
	}
	defer m.locks.Lock(t.ID())()
	var kept []netlightd.Peer
	if cur, err := m.nets.MeshOf(ctx, t.ID()); err == nil {
		for _, p := range cur.Peers {
			if slices.Contains(mesh.Nodes, p.Node) {
				kept = append(kept, p.Peer)
			}
		}
	}
	own, err := m.nets.EnsureMesh(ctx, netlightd.MeshSpec{ID: t.ID(), Range: rng, Peers: kept})
	if err != nil {
		return nil, fmt.Errorf("network-light: %w", err)
	}
	req := api.NetworkJoin{TwinID: t.TwinID, Network: t.Workload.Name, Range: rng.String(),
		Part: api.NetworkPart{Subnet: subnet.String(), PublicKey: own.PublicKey, Port: own.Port}}
	peers := kept
	var waiting []uint64
	for _, node := range mesh.Nodes {
		p, err := m.call(ctx, node, req)
		if err != nil {
			m.log.Info("a node of the network has not joined", "network", t.ID(), "node", node, "err", err)
			if !slices.ContainsFunc(peers, func(q netlightd.Peer) bool { return q.Node == node }) {
				waiting = append(waiting, node)
			}
			continue
		}
		peers = upsert(peers, p)
	}
	own, err = m.nets.EnsureMesh(ctx, netlightd.MeshSpec{ID: t.ID(), Range: rng, Peers: peers})
	if err != nil {
		return nil, fmt.Errorf("network-light: %w", err)
	}
	return meshResult(own, waiting), nil
}

// call joins node and returns its part as a peer.
func (m *Manager) call(ctx context.Context, node uint64, req api.NetworkJoin) (netlightd.Peer, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	part, host, err := m.c.Peers.JoinNetwork(ctx, node, req)
	if err != nil {
		return netlightd.Peer{}, err
	}
	return peerOf(node, host, part)
}

// peerOf turns another node's part into netlightd's peer.
func peerOf(node uint64, host netip.Addr, part api.NetworkPart) (netlightd.Peer, error) {
	sub, err := netip.ParsePrefix(part.Subnet)
	if err != nil {
		return netlightd.Peer{}, fmt.Errorf("%w: node %d's subnet %q", gridtypes.ErrInvalid, node, part.Subnet)
	}
	if !host.IsValid() || part.Port == 0 {
		return netlightd.Peer{}, fmt.Errorf("%w: node %d has no address and port", gridtypes.ErrInvalid, node)
	}
	// Checked here, not only by netlightd: a bad key is the caller's
	// mistake (invalid params), not this node's failure.
	if _, err := netlightd.DecodeKey(part.PublicKey); err != nil {
		return netlightd.Peer{}, fmt.Errorf("%w: node %d's public key %q is not a WireGuard key (base64 of 32 bytes)", gridtypes.ErrInvalid, node, part.PublicKey)
	}
	return netlightd.Peer{Node: node, PublicKey: part.PublicKey, Endpoint: netip.AddrPortFrom(host.Unmap(), part.Port), Subnet: sub}, nil
}

// upsert replaces the peer of p's node, or adds p.
func upsert(peers []netlightd.Peer, p netlightd.Peer) []netlightd.Peer {
	out := slices.DeleteFunc(slices.Clone(peers), func(q netlightd.Peer) bool { return q.Node == p.Node })
	return append(out, p)
}

// Join implements provisiond.Joiner: node from's part of the network
// of t is added, if t's part lists from and the range is the same.
func (m *Manager) Join(ctx context.Context, t provisiond.Task, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error) {
	var d gridtypes.NetworkLightData
	if err := t.Workload.DecodeData(&d); err != nil || d.Mesh == nil {
		return api.NetworkPart{}, fmt.Errorf("%w: network %q is not meshed", gridtypes.ErrNotFound, req.Network)
	}
	if !slices.Contains(d.Mesh.Nodes, from) {
		return api.NetworkPart{}, fmt.Errorf("%w: node %d is not among the nodes of twin %d's network %q", gridtypes.ErrForbidden, from, t.TwinID, req.Network)
	}
	p, err := peerOf(from, host, req.Part)
	if err != nil {
		return api.NetworkPart{}, err
	}
	defer m.locks.Lock(t.ID())()
	cur, err := m.nets.MeshOf(ctx, t.ID())
	if err != nil {
		// This part is not made yet: the caller is joined when it is.
		return api.NetworkPart{}, fmt.Errorf("%w: network %q is not ready on this node", gridtypes.ErrNotFound, req.Network)
	}
	if !cur.Range.Contains(p.Subnet.Addr()) || cur.Range.Bits() > p.Subnet.Bits() {
		return api.NetworkPart{}, fmt.Errorf("%w: subnet %s is not inside the range %s", gridtypes.ErrInvalid, p.Subnet, cur.Range)
	}
	// An overlap contradicts what this node has (a conflict, -32013 on
	// the node-to-node API), unlike a malformed part (invalid).
	var peers []netlightd.Peer
	for _, q := range cur.Peers {
		if q.Node != from && q.Subnet.Overlaps(p.Subnet) {
			return api.NetworkPart{}, fmt.Errorf("%w: subnet %s overlaps node %d's %s", gridtypes.ErrConflict, p.Subnet, q.Node, q.Subnet)
		}
		peers = append(peers, q.Peer)
	}
	if cur.Subnet.Overlaps(p.Subnet) {
		return api.NetworkPart{}, fmt.Errorf("%w: subnet %s overlaps this node's %s", gridtypes.ErrConflict, p.Subnet, cur.Subnet)
	}
	own, err := m.nets.EnsureMesh(ctx, netlightd.MeshSpec{ID: t.ID(), Range: cur.Range, Peers: upsert(peers, p)})
	if err != nil {
		return api.NetworkPart{}, fmt.Errorf("network-light: %w", err)
	}
	m.log.Info("a node joined the network", "network", t.ID(), "node", from, "subnet", p.Subnet)
	return api.NetworkPart{Subnet: own.Subnet.String(), PublicKey: own.PublicKey, Port: own.Port}, nil
}

// Leave implements provisiond.Joiner: node from's part is forgotten.
func (m *Manager) Leave(ctx context.Context, t provisiond.Task, from uint64) error {
	defer m.locks.Lock(t.ID())()
	cur, err := m.nets.MeshOf(ctx, t.ID())
	if err != nil {
		return nil // not made, or gone: nothing to forget
	}
	var peers []netlightd.Peer
	for _, q := range cur.Peers {
		if q.Node != from {
			peers = append(peers, q.Peer)
		}
	}
	if len(peers) == len(cur.Peers) {
		return nil
	}
	if _, err := m.nets.EnsureMesh(ctx, netlightd.MeshSpec{ID: t.ID(), Range: cur.Range, Peers: peers}); err != nil {
		return fmt.Errorf("network-light: %w", err)
	}
	m.log.Info("a node left the network", "network", t.ID(), "node", from)
	return nil
}

// leave tells every listed node that this part is going. A node that
// does not answer keeps a peer that no longer answers either (WireGuard
// sends it nothing but keepalives) until its own part is redeployed.
func (m *Manager) leave(ctx context.Context, t provisiond.Task, mesh *gridtypes.NetworkMesh) {
	if m.c.Peers == nil {
		return
	}
	req := api.NetworkLeave{TwinID: t.TwinID, Network: t.Workload.Name, Range: mesh.Range}
	for _, node := range mesh.Nodes {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		if err := m.c.Peers.LeaveNetwork(cctx, node, req); err != nil {
			m.log.Warn("a node of the network was not told this part left", "network", t.ID(), "node", node, "err", err)
		}
		cancel()
	}
}

// meshResult is what the workload reports of its part.
func meshResult(own netlightd.Mesh, waiting []uint64) *MeshResult {
	r := &MeshResult{Range: own.Range.String(), PublicKey: own.PublicKey, Port: own.Port, Peers: []MeshPeer{}, Waiting: waiting}
	for _, p := range own.Peers {
		r.Peers = append(r.Peers, MeshPeer{Node: p.Node, Subnet: p.Subnet.String(), Endpoint: p.Endpoint.String()})
	}
	return r
}
