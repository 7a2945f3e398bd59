package vmd

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is vmd's name in zosd.
const Module = "vmd"

// Object is the bus object vmd serves.
const Object = "vmd/machines@1.0"

// ModuleConfig is what vmd runs with.
type ModuleConfig struct {
	// Bus is where Object is served.
	Bus *bus.Client
	// Machines is the service's configuration.
	Machines Config
	// Logger receives vmd's records.
	Logger *slog.Logger
}

// Run is vmd: it serves Object until ctx ends. Machines that run are left
// running, now and when ctx ends. A configuration the service refuses is
// fatal (supervisor.ErrFatal); a host that cannot run machines is not (it
// is logged, and Start says why), so that installing a hypervisor is
// enough to fix it.
func Run(ctx context.Context, m ModuleConfig) error {
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.Machines.Logger == nil {
		m.Machines.Logger = m.Logger
	}
	s, err := New(m.Machines)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	info := s.Info()
	switch {
	case len(s.c.Backends) == 0:
		m.Logger.Info("virtual machines are not allowed by the farmer")
	case info.Backend == "":
		m.Logger.Warn("virtual machines cannot run on this host", "backends", info.Backends)
	default:
		m.Logger.Info("virtual machines", "backend", info.Backend)
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
		"Update": bus.Proc1(s.Update),
		"State":  bus.Func1(s.State),
		"List":   bus.Func0(s.List),
		"Info":   bus.Func0(func(context.Context) (Info, error) { return s.Info(), nil }),
	}
}

// Stub calls vmd over the bus; it has the methods of Service.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling vmd through c.
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

// Update calls Service.Update.
func (s Stub) Update(ctx context.Context, sp Spec) error {
	return s.c.Invoke(ctx, Object, "Update", nil, sp)
}

// State calls Service.State.
func (s Stub) State(ctx context.Context, id string) (State, error) {
	return bus.Call[State](ctx, s.c, Object, "State", id)
}

// List calls Service.List.
func (s Stub) List(ctx context.Context) ([]State, error) {
	return bus.Call[[]State](ctx, s.c, Object, "List")
}

// Info calls Service.Info.
func (s Stub) Info(ctx context.Context) (Info, error) {
	return bus.Call[Info](ctx, s.c, Object, "Info")
}
