package zosd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/geoip"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/location"
	"github.com/grid4/grid4/node/noded"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// The modules zosd runs, in start order.
const (
	ModuleIdentity = "identityd"
	ModuleNoded    = "noded"
	ModuleLocation = "location"
	ModulePower    = "powerd"
	ModuleGateway  = "registrar_gateway"
	ModuleLight    = "registrar_light"
	// ModuleUpgrader follows the registrar's version (package upgrade).
	// Unlike the others it always runs from the zosd that started the
	// node, never from a generation: it judges generations, so one must
	// not be able to replace it.
	ModuleUpgrader = "upgrader"
)

// Modules returns the module names in start order.
func Modules() []string {
	return []string{ModuleIdentity, ModuleNoded, ModuleLocation, ModulePower, ModuleGateway, ModuleLight, ModuleUpgrader}
}

// generationModules are the modules run from the current generation and
// restarted onto a new one: all but the upgrader.
func generationModules() []string {
	return slices.DeleteFunc(Modules(), func(m string) bool { return m == ModuleUpgrader })
}

// env is what a module runs with.
type env struct {
	cfg   Config
	bus   *bus.Client
	clock clock.Clock
	log   *slog.Logger
}

// moduleFunc runs one module until ctx ends.
type moduleFunc func(ctx context.Context, e env) error

// moduleFuncs maps module names to their implementations.
func moduleFuncs() map[string]moduleFunc {
	return map[string]moduleFunc{
		ModuleIdentity: runIdentity,
		ModuleNoded:    runNoded,
		ModuleLocation: runLocation,
		ModulePower:    runPower,
		ModuleGateway:  runGateway,
		ModuleLight:    runLight,
		ModuleUpgrader: runUpgrader,
	}
}

// runModule opens the bus and runs module name.
func runModule(ctx context.Context, name string, cfg Config, c clock.Clock, log *slog.Logger) error {
	f, ok := moduleFuncs()[name]
	if !ok {
		return fmt.Errorf("%w: unknown module %q (modules: %v)", ErrUsage, name, Modules())
	}
	log = log.With("module", name)
	b, err := bus.Open(cfg.Redis, bus.Options{Prefix: cfg.BusPrefix, Logger: log})
	if err != nil {
		return err
	}
	defer b.Close()
	return f(ctx, env{cfg: cfg, bus: b, clock: c, log: log})
}

// serve serves one object until ctx ends.
func serve(ctx context.Context, b *bus.Client, object string, methods bus.Methods) error {
	srv := bus.NewServer(b, bus.ServerOptions{})
	if err := srv.Handle(object, methods); err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// all runs fs concurrently until ctx ends or one fails; then it cancels
// the others and returns the first error.
func all(ctx context.Context, fs ...func(ctx context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, f := range fs {
		wg.Go(func() {
			if err := f(ctx); err != nil {
				once.Do(func() { first = err })
				cancel()
			}
		})
	}
	wg.Wait()
	return first
}

// runIdentity is identityd. An identity that cannot be loaded is fatal:
// restarting would not repair it.
func runIdentity(ctx context.Context, e env) error {
	res, err := identityd.Open(identityd.Config{Primary: e.cfg.SeedFile(), Disks: e.cfg.DataDisks, Logger: e.log})
	if err != nil {
		if errors.Is(err, identityd.ErrCorrupt) || errors.Is(err, identityd.ErrUnreadable) || errors.Is(err, identityd.ErrConflictingCopies) {
			return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
		}
		return err
	}
	m := identityd.NewManager(res, e.cfg.Farm, e.cfg.SeedFile())
	return serve(ctx, e.bus, identityd.Object, m.Methods())
}

// runNoded is noded: the facts and the address watcher.
func runNoded(ctx context.Context, e env) error {
	p, err := hostinfo.New(hostinfo.Config{Root: e.cfg.HostRoot, Interface: e.cfg.Interface})
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	stream, err := noded.NewAddressStream(e.bus)
	if err != nil {
		return err
	}
	wake, err := noded.NetlinkWakeups(ctx, e.log)
	if err != nil {
		e.log.Warn("no netlink notifications; watching addresses by polling only", "err", err, "every", e.cfg.AddressPoll)
	}
	w := noded.NewWatcher(p, stream, e.clock, e.cfg.AddressPoll, wake, e.log)
	return all(ctx,
		func(ctx context.Context) error { return serve(ctx, e.bus, noded.Object, noded.NewService(p).Methods()) },
		w.Run,
	)
}

// runLocation is the location module.
func runLocation(ctx context.Context, e env) error {
	loc, err := geoip.New(e.cfg.LocationConfig(), nil, e.log)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	svc := location.NewService(loc, e.clock, e.cfg.LocationRefresh)
	return serve(ctx, e.bus, location.Object, svc.Methods())
}

// runPower is powerd.
func runPower(ctx context.Context, e env) error {
	m, err := powerd.New(powerd.Config{Root: e.cfg.HostRoot, DataDir: e.cfg.DataDir, MinFree: e.cfg.MinFreeDisk, CheckInterval: e.cfg.HealthInterval}, e.bus, e.clock, e.log)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	return all(ctx,
		func(ctx context.Context) error { return serve(ctx, e.bus, powerd.Object, m.Methods()) },
		m.Watch,
	)
}

// gatewayHTTPTimeout bounds one HTTP attempt to the registrar.
const gatewayHTTPTimeout = 30 * time.Second

// runGateway is registrar_gateway. It signs through identityd, so it
// first waits for identityd to answer.
func runGateway(ctx context.Context, e env) error {
	stub := identityd.NewStub(e.bus)
	var key *identityd.RemoteKey
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		k, err := identityd.NewRemoteKey(cctx, stub)
		cancel()
		if err == nil {
			key = k
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		e.log.Info("waiting for identityd", "err", err)
		if clock.Sleep(ctx, e.clock, wait) != nil {
			return nil
		}
	}
	scheme := client.AuthV2
	if e.cfg.AuthScheme == "legacy" {
		scheme = client.AuthLegacy
	}
	c, err := client.New(e.cfg.Registrar,
		client.WithIdentity(key, 0),
		client.WithAuthScheme(scheme),
		client.WithHTTPClient(&http.Client{Timeout: gatewayHTTPTimeout}),
		client.WithUserAgent("zosd"),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	return serve(ctx, e.bus, registrarlight.GatewayObject, registrarlight.NewGateway(c).Methods())
}

// runLight is registrar_light.
func runLight(ctx context.Context, e env) error {
	stream, err := noded.NewAddressStream(e.bus)
	if err != nil {
		return err
	}
	l, err := registrarlight.NewLight(e.cfg.lightConfig(), registrarlight.Deps{
		Version:   e.cfg.installed(),
		Registrar: registrarlight.NewGatewayStub(e.bus),
		Facts:     noded.NewStub(e.bus),
		Location:  location.NewStub(e.bus),
		Farm:      identityd.NewStub(e.bus),
		Power:     powerd.NewStub(e.bus),
		Addresses: noded.Changes(ctx, stream, e.log),
		Clock:     e.clock,
		Logger:    e.log,
	})
	if err != nil {
		return err
	}
	return all(ctx,
		func(ctx context.Context) error { return serve(ctx, e.bus, registrarlight.LightObject, l.Methods()) },
		l.Run,
	)
}

// Timeouts of the upgrader's calls to the other modules: a version read
// goes through the gateway, whose client retries within it; a restart
// stops and starts every module, each allowed 10 s to stop.
const (
	upgradeVersionTimeout = 2 * time.Minute
	upgradeRestartTimeout = 5 * time.Minute
	upgradeStatusTimeout  = 10 * time.Second
	upgradeHubTimeout     = 2 * time.Minute
)

// runUpgrader is the upgrader: it serves its state on the bus and, with
// --hub, follows the registrar's version.
func runUpgrader(ctx context.Context, e env) error {
	inst := e.cfg.installed()
	if e.cfg.Hub == "" {
		run, err := inst.Running()
		if err != nil {
			e.log.Warn("reading the current generation", "err", err)
		}
		return serve(ctx, e.bus, upgrader.Object, upgrader.Disabled{Reason: "no --hub configured", Running: run}.Methods())
	}
	key, err := keys.ParsePublicKey(e.cfg.UpgradePublisherKey)
	if err != nil {
		return fmt.Errorf("%w: --upgrade-publisher-key: %w", supervisor.ErrFatal, err)
	}
	m, err := flistd.New(flistd.Config{
		HubURL:   e.cfg.Hub,
		CacheDir: filepath.Join(e.cfg.UpgradeDir(), upgrader.CacheDir),
		Logger:   e.log.With("part", "flistd"),
	}, &http.Client{Timeout: upgradeHubTimeout})
	if err != nil {
		return err
	}
	defer m.Close()
	sup := NewSupervisorStub(e.bus)
	poll := min(upgrader.DefaultHealthPoll, max(e.cfg.UpgradeHealthStable/4, 100*time.Millisecond))
	jitter := e.cfg.UpgradeJitter
	if jitter == 0 {
		jitter = -1 // none (0 is the package's default)
	}
	up, err := upgrader.New(upgrader.Config{
		Dir: e.cfg.UpgradeDir(), Farm: e.cfg.Farm, BaseVersion: e.cfg.ZosVersion,
		Publisher: e.cfg.UpgradePublisher, Repo: e.cfg.UpgradeRepo, PublisherKey: key,
		FirstCheck: e.cfg.UpgradeFirstCheck, Interval: e.cfg.UpgradeInterval, MaxJitter: jitter,
		HealthDeadline: e.cfg.UpgradeHealthDeadline, HealthPoll: poll,
	}, upgrader.Deps{
		Registrar: versionWithTimeout{registrarlight.NewGatewayStub(e.bus)},
		Packages:  upgrader.FlistdPackages{Manager: m},
		Restarter: upgrader.RestarterFunc(func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, upgradeRestartTimeout)
			defer cancel()
			return sup.Restart(ctx)
		}),
		Health: upgrader.ModulesHealth{
			Modules: statusesWithTimeout{sup},
			Power:   powerWithTimeout{powerd.NewStub(e.bus)},
			Ignore:  []string{ModuleRedis, ModuleUpgrader},
			Stable:  e.cfg.UpgradeHealthStable,
			Clock:   e.clock,
		},
		Clock:  e.clock,
		Logger: e.log,
	})
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	return all(ctx,
		func(ctx context.Context) error { return serve(ctx, e.bus, upgrader.Object, up.Methods()) },
		up.Run,
	)
}

// versionWithTimeout bounds the upgrader's version reads.
type versionWithTimeout struct{ s registrarlight.GatewayStub }

// ZosVersion asks the gateway, within upgradeVersionTimeout; a registrar
// without a version is upgrader.ErrNoVersion.
func (v versionWithTimeout) ZosVersion(ctx context.Context) (api.ZosVersion, error) {
	ctx, cancel := context.WithTimeout(ctx, upgradeVersionTimeout)
	defer cancel()
	ver, err := v.s.ZosVersion(ctx)
	if errors.Is(err, registrarlight.ErrNotFound) {
		return ver, fmt.Errorf("%w: %w", upgrader.ErrNoVersion, err)
	}
	return ver, err
}

// statusesWithTimeout gives the upgrader the supervisor's module states.
type statusesWithTimeout struct{ s SupervisorStub }

// Statuses asks zosd for its processes' states.
func (v statusesWithTimeout) Statuses(ctx context.Context) ([]supervisor.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, upgradeStatusTimeout)
	defer cancel()
	return v.s.Modules(ctx)
}

// powerWithTimeout gives the upgrader powerd's verdict.
type powerWithTimeout struct{ s powerd.Stub }

// Health asks powerd whether the node is healthy.
func (v powerWithTimeout) Health(ctx context.Context) (powerd.Health, error) {
	ctx, cancel := context.WithTimeout(ctx, upgradeStatusTimeout)
	defer cancel()
	return v.s.Health(ctx)
}
