package storaged

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is storaged's name in zosd.
const Module = "storaged"

// ModuleConfig is what storaged runs with.
type ModuleConfig struct {
	// Bus is the node's bus: Object is served there.
	Bus *bus.Client
	// Storage holds the directory, host root and disk types.
	Storage Config
	// Logger receives storaged's records.
	Logger *slog.Logger
}

// Run is storaged: it prepares the pools and serves Object until ctx
// ends. Pools that cannot be prepared are fatal (supervisor.ErrFatal).
func Run(ctx context.Context, m ModuleConfig) error {
	m.Storage.Logger = m.Logger
	s, err := New(m.Storage)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	return bus.Serve(ctx, m.Bus, Object, s.Methods())
}

// Stub calls storaged over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling storaged through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Allocate asks for space (see Service.Allocate).
func (s Stub) Allocate(ctx context.Context, r Request) (Allocation, error) {
	return bus.Call[Allocation](ctx, s.c, Object, "Allocate", r)
}

// Release frees an allocation (see Service.Release).
func (s Stub) Release(ctx context.Context, id string) error {
	_, err := bus.Call[struct{}](ctx, s.c, Object, "Release", id)
	return err
}

// Get returns a checked allocation (see Service.Get).
func (s Stub) Get(ctx context.Context, id string) (Allocation, error) {
	return bus.Call[Allocation](ctx, s.c, Object, "Get", id)
}

// Capacity returns the pools' SRU and HRU.
func (s Stub) Capacity(ctx context.Context) (Capacity, error) {
	return bus.Call[Capacity](ctx, s.c, Object, "Capacity")
}

// Pools lists the pools.
func (s Stub) Pools(ctx context.Context) ([]Pool, error) {
	return bus.Call[[]Pool](ctx, s.c, Object, "Pools")
}

// Disks lists the block devices.
func (s Stub) Disks(ctx context.Context) (hostinfo.DiskList, error) {
	return bus.Call[hostinfo.DiskList](ctx, s.c, Object, "Disks")
}
