// Package publicip is the type manager of PublicIPv4 workloads: it gives a
// workload one address of the node's public IPv4 pool, on a macvlan of the
// node's public interface inside a namespace of its own (g4i-<id>, link
// "public", default route via the pool's gateway), where the machine that
// uses it is attached.
//
// A node without a public interface and pool configured fails these
// workloads with a message saying so; the engine's capacity accounting
// already refuses them when the pool is empty, since the pool's size is the
// node's IPv4 capacity.
package publicip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/provisiond"
)

// Names of the parts of a public IP workload.
const (
	// NamespacePrefix starts the name of the workload's namespace.
	NamespacePrefix = "g4i-"
	// Link is the macvlan's name inside the namespace.
	Link = "public"
	// macvlanPrefix names the macvlan while it is made.
	macvlanPrefix = "g4m"
)

// ErrNotConfigured is wrapped when the node has no public network.
var ErrNotConfigured = errors.New("this node has no public IPv4 network configured (no public interface and address pool)")

// ErrPoolExhausted is wrapped when no address is free (or the one asked
// for is taken or not in the pool).
var ErrPoolExhausted = errors.New("no such free address in the node's public pool")

// Config is the node's public network.
type Config struct {
	// Parent is the host interface facing the public network.
	Parent string
	// Pool are the addresses workloads get, each with the prefix length
	// of its network ("185.69.166.150/24").
	Pool []netip.Prefix
	// Gateway is the public network's router.
	Gateway netip.Addr
	// Dir keeps the allocation table. Required.
	Dir string
	// IP runs ip (nil: the host's).
	IP *iproute.IP
}

// Manager gives out public addresses.
type Manager struct {
	c  Config
	ip iproute.IP
	mu sync.Mutex
}

// New returns a manager for c.
func New(c Config) (*Manager, error) {
	if c.Dir == "" {
		return nil, errors.New("publicip: Config.Dir is required")
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("publicip: %w", err)
	}
	for _, p := range c.Pool {
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("publicip: pool address %s is not IPv4", p)
		}
	}
	m := &Manager{c: c}
	if c.IP != nil {
		m.ip = *c.IP
	}
	return m, nil
}

// Size is the number of addresses in the pool: the node's IPv4 capacity.
func (m *Manager) Size() uint64 { return uint64(len(m.c.Pool)) }

// Result is what a PublicIPv4 workload reports.
type Result struct {
	// IP is the address with its prefix length.
	IP string `json:"ip"`
	// Gateway is the default route.
	Gateway string `json:"gateway"`
	// Namespace holds the "public" link.
	Namespace string `json:"namespace"`
}

// NamespaceOf is the namespace of the public IP workload with that ID.
func NamespaceOf(workloadID string) string { return NamespacePrefix + iproute.ShortID(workloadID) }

// Provision allocates an address and sets it up.
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.PublicIPv4Data
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("public-ipv4: %w", err)
	}
	if m.c.Parent == "" || len(m.c.Pool) == 0 || !m.c.Gateway.IsValid() {
		return nil, fmt.Errorf("public-ipv4: %w", ErrNotConfigured)
	}
	if err := m.ip.Check(); err != nil {
		return nil, fmt.Errorf("public-ipv4: cannot manage networks on this node: %w", err)
	}
	if !iproute.LinkExists(m.c.Parent) {
		return nil, fmt.Errorf("public-ipv4: public interface %s not found", m.c.Parent)
	}
	addr, err := m.allocate(t.ID(), d.IP)
	if err != nil {
		return nil, err
	}
	ns, mv := NamespaceOf(t.ID()), macvlanPrefix+iproute.ShortID(t.ID())
	if !iproute.NetnsExists(ns) {
		if err := m.ip.Do(ctx, "netns", "add", ns); err != nil {
			return nil, fmt.Errorf("public-ipv4: %w", err)
		}
	}
	if !m.ip.LinkExistsIn(ctx, ns, Link) {
		// Made in the namespace under a temporary name, then renamed:
		// a crash in between leaves a link the next run renames.
		if !m.ip.LinkExistsIn(ctx, ns, mv) {
			if err := m.ip.Do(ctx, "link", "add", "name", mv, "link", m.c.Parent, "netns", ns, "type", "macvlan", "mode", "bridge"); err != nil {
				return nil, fmt.Errorf("public-ipv4: %w", err)
			}
		}
		if err := m.ip.In(ctx, ns, "link", "set", "dev", mv, "name", Link); err != nil {
			return nil, fmt.Errorf("public-ipv4: %w", err)
		}
	}
	for _, args := range [][]string{
		{"addr", "replace", addr.String(), "dev", Link},
		{"link", "set", "dev", Link, "up"},
		{"link", "set", "dev", "lo", "up"},
		{"route", "replace", "default", "via", m.c.Gateway.String(), "dev", Link},
	} {
		if err := m.ip.In(ctx, ns, args...); err != nil {
			return nil, fmt.Errorf("public-ipv4: %w", err)
		}
	}
	return Result{IP: addr.String(), Gateway: m.c.Gateway.String(), Namespace: ns}, nil
}

// Deprovision removes the namespace (and the macvlan in it) and frees the
// address.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	ns := NamespaceOf(t.ID())
	if iproute.NetnsExists(ns) {
		if err := m.ip.Do(ctx, "netns", "del", ns); err != nil {
			return fmt.Errorf("public-ipv4: %w", err)
		}
	}
	return m.release(t.ID())
}

// allocations maps workload IDs to their addresses.
type allocations map[string]netip.Prefix

func (m *Manager) table() string { return filepath.Join(m.c.Dir, "allocations.json") }

func (m *Manager) load() (allocations, error) {
	b, err := os.ReadFile(m.table())
	if errors.Is(err, fs.ErrNotExist) {
		return allocations{}, nil
	}
	if err != nil {
		return nil, err
	}
	a := allocations{}
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", m.table(), err)
	}
	return a, nil
}

// save writes the table atomically.
func (m *Manager) save(a allocations) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(m.table(), b, 0o600)
}

// allocate returns the workload's address, choosing one (want, or the
// first free) if it has none.
func (m *Manager) allocate(id, want string) (netip.Prefix, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.load()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("public-ipv4: %w", err)
	}
	if p, ok := a[id]; ok {
		return p, nil
	}
	taken := map[netip.Addr]bool{}
	for _, p := range a {
		taken[p.Addr()] = true
	}
	for _, p := range m.c.Pool {
		if taken[p.Addr()] || (want != "" && p.Addr().String() != want) {
			continue
		}
		a[id] = p
		if err := m.save(a); err != nil {
			return netip.Prefix{}, fmt.Errorf("public-ipv4: %w", err)
		}
		return p, nil
	}
	if want != "" {
		return netip.Prefix{}, fmt.Errorf("public-ipv4: %w: %s", ErrPoolExhausted, want)
	}
	return netip.Prefix{}, fmt.Errorf("public-ipv4: %w (all %d in use)", ErrPoolExhausted, len(m.c.Pool))
}

func (m *Manager) release(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.load()
	if err != nil {
		return fmt.Errorf("public-ipv4: %w", err)
	}
	if _, ok := a[id]; !ok {
		return nil
	}
	delete(a, id)
	if err := m.save(a); err != nil {
		return fmt.Errorf("public-ipv4: %w", err)
	}
	return nil
}
