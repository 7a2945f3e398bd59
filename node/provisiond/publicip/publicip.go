// Package publicip is the type manager of PublicIPv4 workloads: it gives a
// workload one address of the node's public IPv4 pool, on a macvlan of the
// node's public interface inside a namespace of its own (g4i-<id>, link
// "public", default route via the pool's gateway), where the machine that
// uses it is attached.
//
// netlightd owns the pool and makes the namespace; this manager calls it
// through Addresses (over the bus on a node, in process in the
// development program). A node without a public interface and pool fails
// these workloads with a message saying so; the engine's capacity
// accounting already refuses them when the pool is empty, since the
// pool's size is the node's IPv4 capacity.
package publicip

import (
	"context"
	"errors"
	"fmt"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
)

// Link is the macvlan's name inside the namespace.
const Link = netlightd.PublicLink

// ErrNotConfigured is wrapped when the node has no public network.
var ErrNotConfigured = netlightd.ErrNotConfigured

// ErrPoolExhausted is wrapped when no address is free (or the one asked
// for is taken or not in the pool).
var ErrPoolExhausted = netlightd.ErrPoolExhausted

// Result is what a PublicIPv4 workload reports: ip, gateway, namespace.
type Result = netlightd.PublicIP

// Addresses is what the manager needs of netlightd; netlightd.Service
// and netlightd.Stub are both one.
type Addresses interface {
	EnsurePublicIP(ctx context.Context, spec netlightd.PublicIPSpec) (netlightd.PublicIP, error)
	RemovePublicIP(ctx context.Context, id string) error
}

// Manager gives out public addresses through netlightd.
type Manager struct{ addrs Addresses }

// New returns a manager calling addrs.
func New(addrs Addresses) (*Manager, error) {
	if addrs == nil {
		return nil, errors.New("public-ipv4: no netlightd")
	}
	return &Manager{addrs: addrs}, nil
}

// Provision allocates an address and sets it up.
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.PublicIPv4Data
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("public-ipv4: %w", err)
	}
	r, err := m.addrs.EnsurePublicIP(ctx, netlightd.PublicIPSpec{ID: t.ID(), Want: d.IP})
	if err != nil {
		return nil, fmt.Errorf("public-ipv4: %w", err)
	}
	return r, nil
}

// Restore implements provisiond.Restorer: the same address comes back on
// a new namespace and link.
func (m *Manager) Restore(ctx context.Context, t provisiond.Task) error {
	_, err := m.Provision(ctx, t)
	return err
}

// Deprovision removes the namespace (and the macvlan in it) and frees the
// address.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	if err := m.addrs.RemovePublicIP(ctx, t.ID()); err != nil {
		return fmt.Errorf("public-ipv4: %w", err)
	}
	return nil
}
