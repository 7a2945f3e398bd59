package powerd

import (
	"context"
	"fmt"
	"log/slog"

	"golang.org/x/sync/errgroup"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is powerd's name in zosd.
const Module = "powerd"

// ModuleConfig is what powerd runs with.
type ModuleConfig struct {
	// Bus is the node's bus: Object is served there, and it is pinged as
	// one of the health checks.
	Bus *bus.Client
	// Power holds the health checks' settings.
	Power Config
	// Keeper, when set, makes powerd follow the node's power target and
	// wake its sleeping farm peers (its Clock and Logger are the
	// module's).
	Keeper *KeeperDeps
	// Clock runs the checks.
	Clock clock.Clock
	// Logger receives powerd's records.
	Logger *slog.Logger
}

// Run is powerd: it serves the uptime and the node's health and runs the
// health checks until ctx ends; with a Keeper it also follows the power
// target. Settings the monitor refuses are fatal
// (supervisor.ErrFatal).
func Run(ctx context.Context, m ModuleConfig) error {
	mon, err := New(m.Power, m.Bus, m.Clock, m.Logger)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	methods := mon.Methods()
	g, ctx := errgroup.WithContext(ctx)
	if m.Keeper != nil {
		d := *m.Keeper
		d.Clock, d.Logger = m.Clock, m.Logger
		k := NewKeeper(d)
		methods["PeerDown"] = bus.Proc2(k.PeerDown)
		methods["Power"] = bus.Func0(k.State)
		g.Go(func() error { return k.Run(ctx) })
	}
	g.Go(func() error { return bus.Serve(ctx, m.Bus, Object, methods) })
	g.Go(func() error { return mon.Watch(ctx) })
	return g.Wait()
}
