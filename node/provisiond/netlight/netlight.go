// Package netlight is the type manager of NetworkLight workloads: a
// private network on the node that the deployment's machines join.
//
// A network is made of
//
//   - a network namespace g4n-<id>, the network's router, holding lan0
//     with the subnet's gateway address (the first host address);
//   - a bridge g4b<id> in the host namespace, where machines' TAP
//     devices are attached;
//   - a veth pair g4v<id> (on the bridge) / lan0 (in the namespace).
//
// <id> is 10 hex characters derived from the workload (and Config.Salt,
// which only tests that share a host need). The bridge has no
// address and the namespace no route out: the network carries traffic
// between its machines and its gateway only (public access is a
// PublicIPv4 workload's job). Every step checks what exists first, so
// Provision and Deprovision can run again after a crash.
package netlight

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/provisiond"
)

// Names of the parts of a network.
const (
	// NamespacePrefix starts the name of a network's namespace.
	NamespacePrefix = "g4n-"
	// BridgePrefix starts the name of a network's bridge.
	BridgePrefix = "g4b"
	// vethPrefix starts the host side of the router's veth.
	vethPrefix = "g4v"
	// LAN is the router's interface in the namespace.
	LAN = "lan0"
)

// Config configures a Manager.
type Config struct {
	// IP runs ip (nil: the host's).
	IP *iproute.IP
	// Salt is mixed into the names of the network's parts. A node leaves
	// it empty (its workload IDs are unique); tests running several
	// engines on one host give each its own.
	Salt string
}

// Manager makes NetworkLight workloads with iproute2.
type Manager struct {
	ip   iproute.IP
	salt string
}

// New returns a manager for c.
func New(c Config) *Manager {
	m := &Manager{salt: c.Salt}
	if c.IP != nil {
		m.ip = *c.IP
	}
	return m
}

// Names are the host names of a network's parts.
type Names struct {
	// Namespace is the network's router namespace (g4n-<id>).
	Namespace string `json:"namespace"`
	// Bridge is where machines' TAP devices go (g4b<id>).
	Bridge string `json:"bridge"`
	// Veth is the host end of the bridge-to-router pair (g4v<id>).
	Veth string `json:"veth"`
}

// NamesOf returns the names for the network workload with the given ID
// (provisiond.Task.ID or Task.Sibling) under salt (Config.Salt).
func NamesOf(salt, workloadID string) Names {
	id := iproute.ShortID(salt + workloadID)
	return Names{Namespace: NamespacePrefix + id, Bridge: BridgePrefix + id, Veth: vethPrefix + id}
}

// Result is what a NetworkLight workload reports.
type Result struct {
	Names
	// Subnet and Gateway are the network's (gateway with prefix length).
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
}

// Provision makes (or completes) the network.
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.NetworkLightData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("network-light: %w", err)
	}
	if err := m.ip.Check(); err != nil {
		return nil, fmt.Errorf("network-light: cannot manage networks on this node: %w", err)
	}
	subnet, err := d.Prefix()
	if err != nil {
		return nil, fmt.Errorf("network-light: %w", err)
	}
	gw := netip.PrefixFrom(subnet.Addr().Next(), subnet.Bits())
	n := NamesOf(m.salt, t.ID())
	steps := []struct {
		skip bool
		args []string
	}{
		{iproute.NetnsExists(n.Namespace), []string{"netns", "add", n.Namespace}},
		{iproute.LinkExists(n.Bridge), []string{"link", "add", "name", n.Bridge, "type", "bridge"}},
		{false, []string{"link", "set", "dev", n.Bridge, "up"}},
	}
	for _, s := range steps {
		if s.skip {
			continue
		}
		if err := m.ip.Do(ctx, s.args...); err != nil {
			return nil, fmt.Errorf("network-light: %w", err)
		}
	}
	// A crash between creating the pair and configuring it leaves the
	// pair; one half of a pair (the other end gone) is remade.
	hostEnd, nsEnd := iproute.LinkExists(n.Veth), m.ip.LinkExistsIn(ctx, n.Namespace, LAN)
	if hostEnd != nsEnd {
		if hostEnd {
			_ = m.ip.Do(ctx, "link", "del", "dev", n.Veth)
		} else {
			_ = m.ip.In(ctx, n.Namespace, "link", "del", "dev", LAN)
		}
		hostEnd = false
	}
	if !hostEnd {
		if err := m.ip.Do(ctx, "link", "add", "name", n.Veth, "type", "veth", "peer", "name", LAN, "netns", n.Namespace); err != nil {
			return nil, fmt.Errorf("network-light: %w", err)
		}
	}
	for _, args := range [][]string{
		{"link", "set", "dev", n.Veth, "master", n.Bridge, "up"},
		{"-n", n.Namespace, "addr", "replace", gw.String(), "dev", LAN},
		{"-n", n.Namespace, "link", "set", "dev", LAN, "up"},
		{"-n", n.Namespace, "link", "set", "dev", "lo", "up"},
	} {
		if err := m.ip.Do(ctx, args...); err != nil {
			return nil, fmt.Errorf("network-light: %w", err)
		}
	}
	return Result{Names: n, Subnet: subnet.String(), Gateway: gw.String()}, nil
}

// Deprovision removes the network's links and namespace. Machines must be
// gone first (the engine removes them before their networks).
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	n := NamesOf(m.salt, t.ID())
	if iproute.LinkExists(n.Veth) {
		if err := m.ip.Do(ctx, "link", "del", "dev", n.Veth); err != nil {
			return fmt.Errorf("network-light: %w", err)
		}
	}
	if iproute.LinkExists(n.Bridge) {
		if err := m.ip.Do(ctx, "link", "del", "dev", n.Bridge); err != nil {
			return fmt.Errorf("network-light: %w", err)
		}
	}
	if iproute.NetnsExists(n.Namespace) {
		if err := m.ip.Do(ctx, "netns", "del", n.Namespace); err != nil {
			return fmt.Errorf("network-light: %w", err)
		}
	}
	return nil
}
