package zosd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/contd"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/location"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/noded"
	"github.com/grid4/grid4/node/noderpc"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/node/vmd"
)

// The modules zosd runs, in start order; each is the package of the same
// name under node/.
const (
	ModuleIdentity = identityd.Module
	ModuleNoded    = noded.Module
	// ModuleStorage owns the disks: pools, allocations, SRU and HRU.
	ModuleStorage = storaged.Module
	// ModuleFlist is flistd: the flist block cache (shared with the
	// upgrader) and workloads' flist mounts.
	ModuleFlist    = flistd.Module
	ModuleLocation = location.Module
	ModulePower    = powerd.Module
	ModuleGateway  = registrarlight.GatewayModule
	ModuleLight    = registrarlight.LightModule
	// ModuleNetwork is netlightd: networks, egress NAT, port forwards and
	// the public IPv4 pool.
	ModuleNetwork = netlightd.Module
	// ModuleContainers is contd: containers, for machines where the
	// farmer allows them and for the node's own services.
	ModuleContainers = contd.Module
	// ModuleMachines is vmd: virtual machines, under the first hypervisor
	// of --machine-backends that works here.
	ModuleMachines = vmd.Module
	// ModuleProvision is provisiond with zos-api-light.
	ModuleProvision = provisiond.Module
	// ModuleNodeRPC is the node-to-node API (package noderpc): it
	// answers and calls the other nodes, signing as the node.
	ModuleNodeRPC = noderpc.Module
	// ModuleUpgrader follows the registrar's version (package upgrader).
	// It always runs from the zosd that started the node, never from a
	// generation (see upgrader.Module).
	ModuleUpgrader = upgrader.Module
)

// Modules returns the module names in start order.
func Modules() []string {
	return []string{ModuleIdentity, ModuleNoded, ModuleStorage, ModuleFlist, ModuleLocation, ModulePower, ModuleGateway, ModuleLight, ModuleNetwork, ModuleContainers, ModuleMachines, ModuleProvision, ModuleNodeRPC, ModuleUpgrader}
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

// moduleFuncs maps module names to their run functions, each given its
// settings from zosd's configuration: zosd only wires.
func moduleFuncs() map[string]moduleFunc {
	return map[string]moduleFunc{
		ModuleIdentity: func(ctx context.Context, e env) error {
			return identityd.Run(ctx, identityd.ModuleConfig{
				Bus:      e.bus,
				Identity: identityd.Config{Primary: e.cfg.SeedFile(), Disks: e.cfg.DataDisks, Logger: e.log},
				Farm:     e.cfg.Farm,
			})
		},
		ModuleNoded: func(ctx context.Context, e env) error {
			return noded.Run(ctx, noded.ModuleConfig{
				Bus:         e.bus,
				Host:        hostinfo.Config{Root: e.cfg.HostRoot, Interface: e.cfg.Interface},
				AddressPoll: e.cfg.AddressPoll,
				Clock:       e.clock,
				Logger:      e.log,
			})
		},
		ModuleStorage: func(ctx context.Context, e env) error {
			return storaged.Run(ctx, storaged.ModuleConfig{
				Bus: e.bus, Storage: e.cfg.storageConfig(), Logger: e.log,
			})
		},
		ModuleFlist: func(ctx context.Context, e env) error {
			m := e.cfg.flistConfig(e.log)
			m.Bus = e.bus
			// Lazy mounts are served by this program's hidden
			// subcommand, in processes that outlive the module.
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("finding the zosd program to serve lazy flist mounts: %w", err)
			}
			m.Mounts.ServeCommand = []string{exe, FlistServeCommand}
			return flistd.Run(ctx, m)
		},
		ModuleLocation: func(ctx context.Context, e env) error {
			return location.Run(ctx, location.ModuleConfig{
				Bus: e.bus, GeoIP: e.cfg.LocationConfig(), Refresh: e.cfg.LocationRefresh, Clock: e.clock, Logger: e.log,
			})
		},
		ModulePower: func(ctx context.Context, e env) error {
			keeper, err := e.powerKeeper()
			if err != nil {
				return err
			}
			return powerd.Run(ctx, powerd.ModuleConfig{
				Bus:    e.bus,
				Power:  powerd.Config{Root: e.cfg.HostRoot, DataDir: e.cfg.DataDir, MinFree: e.cfg.MinFreeDisk, CheckInterval: e.cfg.HealthInterval},
				Keeper: keeper,
				Clock:  e.clock,
				Logger: e.log,
			})
		},
		ModuleGateway: func(ctx context.Context, e env) error {
			return registrarlight.RunGateway(ctx, registrarlight.GatewayConfig{
				Bus: e.bus, Registrar: e.cfg.Registrar, Legacy: e.cfg.AuthScheme == "legacy", Clock: e.clock, Logger: e.log,
			})
		},
		ModuleLight: func(ctx context.Context, e env) error {
			return registrarlight.RunLight(ctx, registrarlight.LightConfig{
				Bus: e.bus, Light: e.cfg.lightConfig(), Version: e.cfg.installed(), Clock: e.clock, Logger: e.log,
				Provision: provisiond.NewStub(e.bus), Modules: NewModulesStub(e.bus), Peers: noderpc.NewStub(e.bus),
			})
		},
		ModuleNetwork: func(ctx context.Context, e env) error {
			return netlightd.Run(ctx, netlightd.ModuleConfig{Bus: e.bus, Network: e.cfg.networkConfig(e.log), Logger: e.log})
		},
		ModuleContainers: func(ctx context.Context, e env) error {
			return contd.Run(ctx, contd.ModuleConfig{Bus: e.bus, Containers: e.cfg.containersConfig(), Logger: e.log})
		},
		ModuleMachines: func(ctx context.Context, e env) error {
			return vmd.Run(ctx, vmd.ModuleConfig{Bus: e.bus, Machines: e.cfg.machinesConfig(), Logger: e.log})
		},
		ModuleProvision: runProvision,
		ModuleNodeRPC:   runNodeRPC,
		ModuleUpgrader:  runUpgrader,
	}
}

// runModule opens the bus, as the user name with password when one is
// given (the private Redis), and runs module name.
func runModule(ctx context.Context, name string, cfg Config, password bus.Secret, c clock.Clock, log *slog.Logger) error {
	f, ok := moduleFuncs()[name]
	if !ok {
		return fmt.Errorf("%w: unknown module %q (modules: %v)", ErrUsage, name, Modules())
	}
	log = log.With("module", name)
	opts := bus.Options{Prefix: cfg.BusPrefix, Logger: log}
	if password != "" {
		opts.User, opts.Password = name, password
	}
	b, err := bus.Open(cfg.Redis, opts)
	if err != nil {
		return err
	}
	defer b.Close()
	return f(ctx, env{cfg: cfg, bus: b, clock: c, log: log})
}

// TestPauseEnv names a file for the crash tests of a whole node
// (cmd/bootstrap): when it holds the name of an upgrade step
// (upgrader.Step), the upgrader reaching that step renames the file to
// <file>.hit and waits there until it is killed.
const TestPauseEnv = "ZOSD_TEST_UPGRADE_PAUSE"

// testPause returns the upgrader's AtStep for TestPauseEnv's file (nil
// without one).
func testPause(file string, log *slog.Logger) func(upgrader.Step) {
	if file == "" {
		return nil
	}
	return func(s upgrader.Step) {
		b, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(b)) != string(s) || os.Rename(file, file+".hit") != nil {
			return
		}
		log.Warn("paused for a crash test", "step", s)
		// Until the test kills this process, or its parent (zosd)
		// dies: a paused upgrader must not outlive its node.
		for ppid := os.Getppid(); os.Getppid() == ppid; {
			time.Sleep(10 * time.Millisecond)
		}
		os.Exit(1)
	}
}

// runUpgrader gives the upgrader its settings: the publisher's key (a bad
// one is fatal), the jitter (0 means none here, the package's default
// there) and zosd's supervisor over the bus.
func runUpgrader(ctx context.Context, e env) error {
	m := upgrader.ModuleConfig{
		Bus:        e.bus,
		Hub:        e.cfg.Hub,
		Installed:  e.cfg.installed(),
		Stable:     e.cfg.UpgradeHealthStable,
		FlistCache: e.cfg.flistConfig(e.log).Flists.CacheDir,
		Supervisor: NewSupervisorStub(e.bus),
		Ignore:     []string{ModuleRedis, ModuleUpgrader},
		Clock:      e.clock,
		Logger:     e.log,
		AtStep:     testPause(os.Getenv(TestPauseEnv), e.log),
	}
	if e.cfg.Hub != "" {
		key, err := keys.ParsePublicKey(e.cfg.UpgradePublisherKey)
		if err != nil {
			return fmt.Errorf("%w: --upgrade-publisher-key: %w", supervisor.ErrFatal, err)
		}
		jitter := e.cfg.UpgradeJitter
		if jitter == 0 {
			jitter = -1 // none (0 is the package's default)
		}
		m.Upgrade = upgrader.Config{
			Dir: e.cfg.UpgradeDir(), Farm: e.cfg.Farm, BaseVersion: e.cfg.ZosVersion,
			Publisher: e.cfg.UpgradePublisher, Repo: e.cfg.UpgradeRepo, PublisherKey: key,
			FirstCheck: e.cfg.UpgradeFirstCheck, Interval: e.cfg.UpgradeInterval, MaxJitter: jitter,
			HealthDeadline: e.cfg.UpgradeHealthDeadline,
		}
	}
	return upgrader.Run(ctx, m)
}
