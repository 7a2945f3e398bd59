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
	// Clock runs the checks.
	Clock clock.Clock
	// Logger receives powerd's records.
	Logger *slog.Logger
}

// Run is powerd: it serves the uptime and the node's health and runs the
// health checks until ctx ends. Settings the monitor refuses are fatal
// (supervisor.ErrFatal).
func Run(ctx context.Context, m ModuleConfig) error {
	mon, err := New(m.Power, m.Bus, m.Clock, m.Logger)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return bus.Serve(ctx, m.Bus, Object, mon.Methods()) })
	g.Go(func() error { return mon.Watch(ctx) })
	return g.Wait()
}
