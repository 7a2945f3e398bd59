// Package netlight is the type manager of NetworkLight workloads: a
// private network on the node that the deployment's machines join, with
// a way out to the world (egress NAT) and the inbound port forwards the
// workload asks for.
//
// netlightd makes the network (see node/netlightd for its parts, names
// and rules); this manager turns the workload into netlightd's request
// and calls it through Networks: over the bus on a node, in process in
// the development program. Every call is idempotent, so Provision,
// Deprovision and Restore can run again after a crash or a reboot.
package netlight

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/keylock"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
)

// LAN is the router's interface on the bridge, in the namespace.
const LAN = netlightd.LAN

// Names are the host names of a network's parts.
type Names = netlightd.Names

// Result is what a NetworkLight workload reports: its namespace, bridge,
// subnet, gateway, transit addresses and forwards, and its part of a
// network across nodes.
type Result struct {
	netlightd.Network
	// Mesh is the part's WireGuard side and its peers (nil: not meshed).
	Mesh *MeshResult `json:"mesh,omitempty"`
}

// NamesOf returns the names for the network workload with the given ID
// (provisiond.Task.ID or Task.Sibling) under netlightd's salt.
func NamesOf(salt, workloadID string) Names { return netlightd.NamesOf(salt, workloadID) }

// Networks is what the manager needs of netlightd; netlightd.Service and
// netlightd.Stub are both one.
type Networks interface {
	EnsureNetwork(ctx context.Context, spec netlightd.NetworkSpec) (netlightd.Network, error)
	RemoveNetwork(ctx context.Context, id string) error
	EnsureMesh(ctx context.Context, spec netlightd.MeshSpec) (netlightd.Mesh, error)
	MeshOf(ctx context.Context, id string) (netlightd.Mesh, error)
}

// Config configures a Manager.
type Config struct {
	// Networks is netlightd. Required.
	Networks Networks
	// Peers reach the other nodes of networks across nodes (the
	// node-to-node API); nil: such networks fail with a clear error.
	Peers Peers
	// NodeID is this node's id (a network's node list must not name it).
	NodeID uint64
	// Logger receives the manager's records.
	Logger *slog.Logger
}

// Manager makes NetworkLight workloads through netlightd.
type Manager struct {
	c    Config
	nets Networks
	log  *slog.Logger
	// locks serialize the peer changes of each meshed network: its own
	// provisioning and other nodes' joins and leaves.
	locks keylock.Locks
}

// New returns a manager.
func New(c Config) (*Manager, error) {
	if c.Networks == nil {
		return nil, errors.New("network-light: no netlightd")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{c: c, nets: c.Networks, log: c.Logger}, nil
}

// spec is netlightd's request for the workload of t.
func spec(t provisiond.Task) (netlightd.NetworkSpec, error) {
	var d gridtypes.NetworkLightData
	if err := t.Workload.DecodeData(&d); err != nil {
		return netlightd.NetworkSpec{}, fmt.Errorf("network-light: %w", err)
	}
	subnet, err := d.Prefix()
	if err != nil {
		return netlightd.NetworkSpec{}, fmt.Errorf("network-light: %w", err)
	}
	spec := netlightd.NetworkSpec{ID: t.ID(), Subnet: subnet}
	for _, f := range d.PortForwards {
		ip, err := netip.ParseAddr(f.IP)
		if err != nil {
			return netlightd.NetworkSpec{}, fmt.Errorf("network-light: port forward: %w", err)
		}
		spec.Forwards = append(spec.Forwards, netlightd.Forward{Protocol: f.Protocol, HostPort: f.HostPort, IP: ip, Port: f.Port})
	}
	return spec, nil
}

// Provision makes (or completes) the network and, for a part of a
// network across nodes, joins the other parts.
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.NetworkLightData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("network-light: %w", err)
	}
	s, err := spec(t)
	if err != nil {
		return nil, err
	}
	if d.Mesh != nil {
		if err := m.canMesh(d.Mesh); err != nil {
			return nil, err
		}
	}
	n, err := m.nets.EnsureNetwork(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("network-light: %w", err)
	}
	res := Result{Network: n}
	if d.Mesh != nil {
		if res.Mesh, err = m.join(ctx, t, s.Subnet, d.Mesh); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Restore implements provisiond.Restorer: netlightd brings back the
// namespace, links, addresses and rules a reboot lost.
func (m *Manager) Restore(ctx context.Context, t provisiond.Task) error {
	_, err := m.Provision(ctx, t)
	return err
}

// Deprovision removes the network and its rules, after telling the
// other parts of a network across nodes. Machines must be gone first (the
// engine removes them before their networks).
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	var d gridtypes.NetworkLightData
	if err := t.Workload.DecodeData(&d); err == nil && d.Mesh != nil {
		m.leave(ctx, t, d.Mesh)
	}
	if err := m.nets.RemoveNetwork(ctx, t.ID()); err != nil {
		return fmt.Errorf("network-light: %w", err)
	}
	return nil
}
