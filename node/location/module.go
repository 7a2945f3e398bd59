package location

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/geoip"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is the location module's name in zosd.
const Module = "location"

// ModuleConfig is what the location module runs with.
type ModuleConfig struct {
	// Bus is the node's bus, where Object is served.
	Bus *bus.Client
	// GeoIP says which geoip service to ask and what to answer without
	// one.
	GeoIP geoip.Config
	// Refresh is how long an answer is kept.
	Refresh time.Duration
	// Clock times the cache.
	Clock clock.Clock
	// Logger receives the module's records.
	Logger *slog.Logger
}

// Run is the location module: it serves where the node is until ctx ends.
// A configuration the geoip client refuses is fatal (supervisor.ErrFatal).
func Run(ctx context.Context, m ModuleConfig) error {
	loc, err := geoip.New(m.GeoIP, nil, m.Logger)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	return bus.Serve(ctx, m.Bus, Object, NewService(loc, m.Clock, m.Refresh).Methods())
}
