package upgrader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/registrar/api"
)

// Module is the upgrader's name in zosd. Unlike the other modules it
// always runs from the zosd that started the node, never from a
// generation: it judges generations, so one must not be able to replace
// it.
const Module = "upgrader"

// Supervisor is what the upgrader needs of zosd's supervisor, over the
// bus: restart the modules (all of them onto the current generation, when
// no names are given), and their states. zosd.SupervisorStub is one.
type Supervisor interface {
	Restart(ctx context.Context, names ...string) error
	Modules(ctx context.Context) ([]supervisor.Status, error)
}

// ModuleConfig is what the upgrader runs with.
type ModuleConfig struct {
	// Bus is the node's bus: Object is served there, and the gateway and
	// powerd are reached there.
	Bus *bus.Client
	// Hub is the hub's URL; empty leaves the upgrader idle (it serves its
	// state, Disabled).
	Hub string
	// Installed is the node's generations and base version.
	Installed Installed
	// Upgrade holds the rollout settings; Upgrade.HealthPoll is derived
	// from Stable when zero.
	Upgrade Config
	// Stable is how long every module must run for a generation to be
	// healthy (ModulesHealth.Stable).
	Stable time.Duration
	// FlistCache is the node's flist block cache, which the flistd module
	// serves: packages are fetched through flistd, or from this directory
	// when flistd does not answer (see SharedPackages). Empty: Upgrade.Dir's
	// CacheDir, used directly.
	FlistCache string
	// Supervisor restarts the modules and tells their states.
	Supervisor Supervisor
	// Ignore names processes whose health is not judged (the private
	// Redis, the upgrader itself).
	Ignore []string
	// Clock drives every timer.
	Clock clock.Clock
	// Logger receives the upgrader's records.
	Logger *slog.Logger
	// AtStep, when set, is called at each Step (Deps.AtStep): the crash
	// tests of a whole node stop the upgrader there.
	AtStep func(Step)
}

// Timeouts of the upgrader's calls to the other modules: a version read
// goes through the gateway, whose client retries within it; a restart
// stops and starts every module, each allowed 10 s to stop.
const (
	versionTimeout = 2 * time.Minute
	restartTimeout = 5 * time.Minute
	statusTimeout  = 10 * time.Second
	hubTimeout     = 2 * time.Minute
)

// Run is the upgrader module: it serves its state on the bus and, with a
// hub, follows the registrar's version until ctx ends. Settings the
// upgrader refuses are fatal (supervisor.ErrFatal).
func Run(ctx context.Context, m ModuleConfig) error {
	if m.Hub == "" {
		run, err := m.Installed.Running()
		if err != nil {
			m.Logger.Warn("reading the current generation", "err", err)
		}
		return bus.Serve(ctx, m.Bus, Object, Disabled{Reason: "no --hub configured", Running: run}.Methods())
	}
	var packages Packages
	hc := &http.Client{Timeout: hubTimeout}
	if m.FlistCache != "" {
		stub := flistd.NewStub(m.Bus)
		packages = SharedPackages{
			Flistd: stub,
			Alive:  func(ctx context.Context) error { return m.Bus.Alive(ctx, flistd.Object) },
			Cache:  flistd.Config{HubURL: m.Hub, CacheDir: m.FlistCache, LockWait: time.Second, Logger: m.Logger.With("part", "flistd")},
			HTTP:   hc,
			Logger: m.Logger,
		}
	} else {
		fm, err := flistd.New(flistd.Config{
			HubURL:   m.Hub,
			CacheDir: filepath.Join(m.Upgrade.Dir, CacheDir),
			Logger:   m.Logger.With("part", "flistd"),
		}, hc)
		if err != nil {
			return err
		}
		defer fm.Close()
		packages = FlistdPackages{Manager: fm}
	}
	cfg := m.Upgrade
	if cfg.HealthPoll == 0 {
		cfg.HealthPoll = min(DefaultHealthPoll, max(m.Stable/4, 100*time.Millisecond))
	}
	up, err := New(cfg, Deps{
		Registrar: versionWithTimeout{registrarlight.NewGatewayStub(m.Bus)},
		Packages:  packages,
		Restarter: RestarterFunc(func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, restartTimeout)
			defer cancel()
			return m.Supervisor.Restart(ctx)
		}),
		Health: ModulesHealth{
			Modules: statusesWithTimeout{m.Supervisor},
			Power:   powerWithTimeout{powerd.NewStub(m.Bus)},
			Ignore:  m.Ignore,
			Stable:  m.Stable,
			Clock:   m.Clock,
		},
		Clock:  m.Clock,
		Logger: m.Logger,
		AtStep: m.AtStep,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return bus.Serve(ctx, m.Bus, Object, up.Methods()) })
	g.Go(func() error { return up.Run(ctx) })
	return g.Wait()
}

// versionWithTimeout bounds the upgrader's version reads.
type versionWithTimeout struct{ s registrarlight.GatewayStub }

// ZosVersion asks the gateway, within versionTimeout; a registrar without
// a version is ErrNoVersion.
func (v versionWithTimeout) ZosVersion(ctx context.Context) (api.ZosVersion, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	ver, err := v.s.ZosVersion(ctx)
	if errors.Is(err, registrarlight.ErrNotFound) {
		return ver, fmt.Errorf("%w: %w", ErrNoVersion, err)
	}
	return ver, err
}

// statusesWithTimeout gives the upgrader the supervisor's module states.
type statusesWithTimeout struct{ s Supervisor }

// Statuses asks zosd for its processes' states.
func (v statusesWithTimeout) Statuses(ctx context.Context) ([]supervisor.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	return v.s.Modules(ctx)
}

// powerWithTimeout gives the upgrader powerd's verdict.
type powerWithTimeout struct{ s powerd.Stub }

// Health asks powerd whether the node is healthy.
func (v powerWithTimeout) Health(ctx context.Context) (powerd.Health, error) {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	return v.s.Health(ctx)
}
