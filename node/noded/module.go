package noded

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is noded's name in zosd.
const Module = "noded"

// ModuleConfig is what noded runs with.
type ModuleConfig struct {
	// Bus is the node's bus: Object is served and address changes are
	// published there.
	Bus *bus.Client
	// Host says where the machine's facts are read (a fixture tree in
	// tests) and which interface is the management interface.
	Host hostinfo.Config
	// AddressPoll is how often the interface's addresses are read when no
	// netlink notification comes.
	AddressPoll time.Duration
	// Clock runs the polling.
	Clock clock.Clock
	// Logger receives noded's records.
	Logger *slog.Logger
}

// Run is noded: it serves the machine's facts and publishes every change
// of the management interface's addresses until ctx ends. A host that
// cannot be probed is fatal (supervisor.ErrFatal).
func Run(ctx context.Context, m ModuleConfig) error {
	p, err := hostinfo.New(m.Host)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	stream, err := NewAddressStream(m.Bus)
	if err != nil {
		return err
	}
	wake, err := NetlinkWakeups(ctx, m.Logger)
	if err != nil {
		m.Logger.Warn("no netlink notifications; watching addresses by polling only", "err", err, "every", m.AddressPoll)
	}
	w := NewWatcher(p, stream, m.Clock, m.AddressPoll, wake, m.Logger)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return bus.Serve(ctx, m.Bus, Object, NewService(p).Methods()) })
	g.Go(func() error { return w.Run(ctx) })
	return g.Wait()
}
