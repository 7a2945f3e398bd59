package netlightd

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is netlightd's name in zosd.
const Module = "netlightd"

// Object is the bus object netlightd serves.
const Object = "netlightd/network@1.0"

// ModuleConfig is what netlightd runs with.
type ModuleConfig struct {
	// Bus is where Object is served.
	Bus *bus.Client
	// Network is the service's configuration.
	Network Config
	// Logger receives netlightd's records.
	Logger *slog.Logger
}

// Run is netlightd: it puts the host's rules back from the persisted
// state (the namespaces come back when provisiond restores each network)
// and serves Object until ctx ends. A configuration the service refuses
// is fatal (supervisor.ErrFatal).
func Run(ctx context.Context, m ModuleConfig) error {
	if m.Network.Logger == nil {
		m.Network.Logger = m.Logger
	}
	s, err := New(m.Network)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Close()
	return bus.Serve(ctx, m.Bus, Object, s.Methods())
}

// Start rebuilds the host table from the persisted state, brings back
// the WireGuard interfaces of meshed networks whose namespace is there (a
// restarted netlightd; after a reboot provisiond's restore does it) and,
// with Config.HostForwarding, turns on the host's forwarding. With no
// network recorded it does nothing: the first network does it all.
func (s *Service) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load()
	if err != nil || len(st.Networks) == 0 {
		return err
	}
	if err := s.applyHost(st); err != nil {
		return err
	}
	for id, nw := range st.Networks {
		if nw.Mesh == nil || !iproute.NetnsExists(NamesOf(s.c.Salt, id).Namespace) {
			continue
		}
		if err := s.bringUpMesh(context.Background(), id, nw); err != nil {
			// One network's mesh does not keep the others down.
			s.log.Error("bringing a mesh back", "network", id, "err", err)
		}
	}
	if s.c.HostForwarding {
		return enableHostForwarding()
	}
	return nil
}

// Methods returns the bus methods of Object.
func (s *Service) Methods() bus.Methods {
	return bus.Methods{
		"EnsureNetwork":  bus.Func1(s.EnsureNetwork),
		"RemoveNetwork":  bus.Func1(func(ctx context.Context, id string) (bool, error) { return true, s.RemoveNetwork(ctx, id) }),
		"EnsurePublicIP": bus.Func1(s.EnsurePublicIP),
		"RemovePublicIP": bus.Func1(func(ctx context.Context, id string) (bool, error) { return true, s.RemovePublicIP(ctx, id) }),
		"AttachPublicIP": bus.Func1(s.AttachPublicIP),
		"DetachPublicIP": bus.Func1(func(ctx context.Context, spec HolderSpec) (bool, error) { return true, s.DetachPublicIP(ctx, spec) }),
		"PoolSize":       bus.Func0(func(context.Context) (uint64, error) { return s.PoolSize(), nil }),
		"EnsureMesh":     bus.Func1(s.EnsureMesh),
		"MeshOf":         bus.Func1(s.MeshOf),
		"RemoveMesh":     bus.Func1(func(ctx context.Context, id string) (bool, error) { return true, s.RemoveMesh(ctx, id) }),
	}
}

// Stub calls netlightd over the bus; it has the methods of Service that
// provisiond's network managers use.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling netlightd through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// EnsureNetwork calls Service.EnsureNetwork.
func (s Stub) EnsureNetwork(ctx context.Context, spec NetworkSpec) (Network, error) {
	return bus.Call[Network](ctx, s.c, Object, "EnsureNetwork", spec)
}

// RemoveNetwork calls Service.RemoveNetwork.
func (s Stub) RemoveNetwork(ctx context.Context, id string) error {
	_, err := bus.Call[bool](ctx, s.c, Object, "RemoveNetwork", id)
	return err
}

// EnsurePublicIP calls Service.EnsurePublicIP.
func (s Stub) EnsurePublicIP(ctx context.Context, spec PublicIPSpec) (PublicIP, error) {
	return bus.Call[PublicIP](ctx, s.c, Object, "EnsurePublicIP", spec)
}

// RemovePublicIP calls Service.RemovePublicIP.
func (s Stub) RemovePublicIP(ctx context.Context, id string) error {
	_, err := bus.Call[bool](ctx, s.c, Object, "RemovePublicIP", id)
	return err
}

// AttachPublicIP calls Service.AttachPublicIP.
func (s Stub) AttachPublicIP(ctx context.Context, spec HolderSpec) (PublicAttachment, error) {
	return bus.Call[PublicAttachment](ctx, s.c, Object, "AttachPublicIP", spec)
}

// DetachPublicIP calls Service.DetachPublicIP.
func (s Stub) DetachPublicIP(ctx context.Context, spec HolderSpec) error {
	_, err := bus.Call[bool](ctx, s.c, Object, "DetachPublicIP", spec)
	return err
}

// PoolSize calls Service.PoolSize.
func (s Stub) PoolSize(ctx context.Context) (uint64, error) {
	return bus.Call[uint64](ctx, s.c, Object, "PoolSize")
}

// EnsureMesh calls Service.EnsureMesh.
func (s Stub) EnsureMesh(ctx context.Context, spec MeshSpec) (Mesh, error) {
	return bus.Call[Mesh](ctx, s.c, Object, "EnsureMesh", spec)
}

// MeshOf calls Service.MeshOf.
func (s Stub) MeshOf(ctx context.Context, id string) (Mesh, error) {
	return bus.Call[Mesh](ctx, s.c, Object, "MeshOf", id)
}

// RemoveMesh calls Service.RemoveMesh.
func (s Stub) RemoveMesh(ctx context.Context, id string) error {
	_, err := bus.Call[bool](ctx, s.c, Object, "RemoveMesh", id)
	return err
}
