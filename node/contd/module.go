package contd

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is contd's name in zosd.
const Module = "contd"

// Object is the bus object contd serves.
const Object = "contd/containers@1.0"

// ModuleConfig is what contd runs with.
type ModuleConfig struct {
	// Bus is where Object is served.
	Bus *bus.Client
	// Containers is the service's configuration.
	Containers Config
	// Logger receives contd's records.
	Logger *slog.Logger
}

// Run is contd: it serves Object until ctx ends. Containers that run are
// left running, now and when ctx ends. A configuration the service
// refuses is fatal (supervisor.ErrFatal); a host that cannot run
// containers is not (it is logged, and Start says why), so that
// installing the runtime is enough to fix it.
func Run(ctx context.Context, m ModuleConfig) error {
	if m.Containers.Logger == nil {
		m.Containers.Logger = m.Logger
	}
	s, err := New(m.Containers)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	if err := s.Check(ctx); err != nil {
		m.Logger.Warn("containers cannot run on this host", "reason", err)
	}
	return bus.Serve(ctx, m.Bus, Object, s.Methods())
}

// Methods returns the bus methods of Object.
func (s *Service) Methods() bus.Methods {
	return bus.Methods{
		"Start":  bus.Proc1(s.Start),
		"Stop":   bus.Proc1(s.Stop),
		"Pause":  bus.Proc1(s.Pause),
		"Resume": bus.Proc1(s.Resume),
		"State":  bus.Func1(s.State),
		"Stats":  bus.Func1(s.Stats),
		"List":   bus.Func0(s.List),
		"Check":  bus.Proc0(s.Check),
	}
}

// Stub calls contd over the bus; it has the methods of Service.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling contd through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Start calls Service.Start.
func (s Stub) Start(ctx context.Context, sp Spec) error {
	return s.c.Invoke(ctx, Object, "Start", nil, sp)
}

// Stop calls Service.Stop.
func (s Stub) Stop(ctx context.Context, id string) error {
	return s.c.Invoke(ctx, Object, "Stop", nil, id)
}

// Pause calls Service.Pause.
func (s Stub) Pause(ctx context.Context, id string) error {
	return s.c.Invoke(ctx, Object, "Pause", nil, id)
}

// Resume calls Service.Resume.
func (s Stub) Resume(ctx context.Context, id string) error {
	return s.c.Invoke(ctx, Object, "Resume", nil, id)
}

// State calls Service.State.
func (s Stub) State(ctx context.Context, id string) (State, error) {
	return bus.Call[State](ctx, s.c, Object, "State", id)
}

// Stats calls Service.Stats.
func (s Stub) Stats(ctx context.Context, id string) (Stats, error) {
	return bus.Call[Stats](ctx, s.c, Object, "Stats", id)
}

// Check calls Service.Check.
func (s Stub) Check(ctx context.Context) error {
	return s.c.Invoke(ctx, Object, "Check", nil)
}

// List calls Service.List.
func (s Stub) List(ctx context.Context) ([]State, error) {
	return bus.Call[[]State](ctx, s.c, Object, "List")
}
