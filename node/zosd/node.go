package zosd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/lockfile"
	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/upgrader"
)

// SupervisorObject is the bus object zosd itself serves: the modules'
// states and restarting them (the upgrader).
const SupervisorObject = "zosd/supervisor@1.0"

// ModulesObject is the read-only part of SupervisorObject, served by zosd
// beside it: the modules' states and the run information, for `zosd
// status`, which may not restart anything.
const ModulesObject = "zosd/modules@1.0"

// ModuleRedis names the private redis-server among the supervised
// processes.
const ModuleRedis = "redis"

// RunInfo is the content of the run file: how to reach a running node.
type RunInfo struct {
	PID       int       `json:"pid"`
	DataDir   string    `json:"data_dir"`
	Redis     string    `json:"redis"`
	BusPrefix string    `json:"bus_prefix"`
	InProcess bool      `json:"in_process"`
	StartedAt time.Time `json:"started_at"`
	// BusUser is the user `zosd status` reads the bus as (its password in
	// Config.StatusSecretFile); empty when zosd does not manage the
	// Redis's users (--redis).
	BusUser string `json:"bus_user,omitempty"`
}

// node is a running zosd.
type node struct {
	cfg Config
	// childArgs are the flags passed to `zosd run <module>`.
	childArgs []string
	// exe is the zosd executable started for each module.
	exe    string
	stderr io.Writer
	clock  clock.Clock
	log    *slog.Logger
	// boot is the bootstrap that started this zosd (nil: the host did).
	boot *bootLink
	// handover ends the node for the bootstrap to start the current
	// generation's zosd (set by run).
	handover func()
}

// moveUpgradeCache moves the block cache the upgrader kept in its own
// directory before flistd served one cache for the node, so that its
// blocks are not downloaded again nor left taking space.
func moveUpgradeCache(cfg Config) error {
	old, cache := filepath.Join(cfg.UpgradeDir(), upgrader.CacheDir), cfg.flistConfig(nil).Flists.CacheDir
	if _, err := os.Stat(old); err != nil {
		return nil
	}
	if _, err := os.Stat(cache); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(cache), 0o755); err != nil {
		return fmt.Errorf("flist cache: %w", err)
	}
	if err := os.Rename(old, cache); err != nil {
		return fmt.Errorf("moving the flist cache to %s: %w", cache, err)
	}
	return nil
}

// run runs the node until ctx ends.
func (n *node) run(ctx context.Context) error {
	cfg := n.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	unlock, err := lockDataDir(cfg)
	if err != nil {
		return err
	}
	defer unlock()

	// Check the identity before starting anything: a node whose identity
	// cannot be loaded must refuse to start, not restart identityd in a
	// loop.
	if err := identityd.Check(identityd.Config{Primary: cfg.SeedFile(), Disks: cfg.DataDisks}); err != nil {
		return err
	}
	if err := moveUpgradeCache(cfg); err != nil {
		return err
	}
	if n.switched() {
		// Switched between the bootstrap's look and this start.
		return errHandover
	}
	n.log.Info("starting node", "farm", cfg.Farm, "registrar", cfg.Registrar, "data", cfg.DataDir, "in_process", cfg.InProcess)

	users, err := newBusUsers()
	if err != nil {
		return err
	}
	var specs []supervisor.Spec
	if cfg.Redis == "" {
		if _, err := exec.LookPath(cfg.RedisServer); err != nil {
			return fmt.Errorf("the private Redis needs %s: %w (install redis-server, or give --redis)", cfg.RedisServer, err)
		}
		cfg.Redis = "unix://" + cfg.RedisSocket()
		if err := n.stopLeftRedis(ctx, cfg.RedisSocket()); err != nil {
			return err
		}
		if err := writeBusUsers(cfg, users); err != nil {
			return err
		}
		defer os.Remove(cfg.StatusSecretFile())
		specs = append(specs, n.redisSpec(cfg, users))
	} else {
		// The operator's Redis: its users are the operator's business.
		users = nil
		n.log.Warn("the bus is the Redis given with --redis: zosd creates no user per module there, so every module (and any client of that Redis) may call any object, signing included", "module", "zosd")
	}
	specs = append(specs, n.moduleSpecs(cfg, users)...)
	sup := supervisor.New(supervisor.Config{RestartMin: cfg.RestartMin, RestartMax: cfg.RestartMax}, specs, n.clock, n.log.With("module", "zosd"))

	b, err := bus.Open(cfg.Redis, users.options(BusUserZosd, bus.Options{Prefix: cfg.BusPrefix, Logger: n.log.With("module", "zosd")}))
	if err != nil {
		return fmt.Errorf("%w: --redis: %v", ErrUsage, err)
	}
	defer b.Close()
	info := RunInfo{PID: os.Getpid(), DataDir: cfg.DataDir, Redis: cfg.Redis, BusPrefix: cfg.BusPrefix, InProcess: cfg.InProcess, StartedAt: n.clock.Now()}
	if users != nil {
		info.BusUser = BusUserStatus
	}
	if err := writeRunFile(cfg.RunFile(), info); err != nil {
		return err
	}
	defer os.Remove(cfg.RunFile())

	return n.serve(ctx, sup, b, info)
}

// serve serves zosd's bus objects and supervises the modules until ctx
// ends, a module fails fatally, or (under the bootstrap) the node
// switched generations: errHandover.
func (n *node) serve(ctx context.Context, sup *supervisor.Supervisor, b *bus.Client, info RunInfo) error {
	ctx, cancelCause := context.WithCancelCause(ctx)
	cancel := func() { cancelCause(nil) }
	defer cancel()
	n.handover = func() { cancelCause(errHandover) }
	// Beating until zosd returns, stopping included: a zosd that
	// stops its modules in order is not hung.
	beatCtx, stopBeat := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBeat()
	go n.beat(beatCtx, sup)
	served := make(chan error, 2)
	methods := n.supervisorMethods(sup, info)
	readOnly := bus.Methods{"Modules": methods["Modules"], "Info": methods["Info"]}
	// Serve retries until the Redis the supervisor starts answers.
	go func() { served <- bus.Serve(ctx, b, SupervisorObject, methods) }()
	go func() { served <- bus.Serve(ctx, b, ModulesObject, readOnly) }()
	err := n.supervise(ctx, sup)
	handover := errors.Is(context.Cause(ctx), errHandover)
	cancel()
	if handover {
		// The bus is gone with its Redis: do not wait for the
		// servers' grace period to start the next zosd.
		timeout := time.After(time.Second)
		for range 2 {
			select {
			case <-served:
			case <-timeout:
			}
		}
	} else {
		<-served
		<-served
	}
	if err != nil {
		return err
	}
	if handover {
		n.log.Info("the node switched generations: handing over to the bootstrap", "module", "zosd")
		return errHandover
	}
	n.log.Info("node stopped")
	return nil
}

// moduleSpecs are the supervisor's specs of the modules, in start order:
// in process (tests), from the bootstrap (the upgrader) or from the
// current generation (the rest). cfg.Redis is the bus they use, each as
// its own user of users (none: nil).
func (n *node) moduleSpecs(cfg Config, users busUsers) []supervisor.Spec {
	childArgs := append(append([]string(nil), n.childArgs...), "--redis="+cfg.Redis)
	installed := cfg.installed()
	var specs []supervisor.Spec
	for _, name := range Modules() {
		spec := supervisor.Spec{Name: name}
		password := users[name]
		// The password goes in the child's environment, never its
		// command line (which any local user can read).
		var env []string
		if password != "" {
			env = append(os.Environ(), BusPasswordEnv+"="+string(password))
		}
		switch {
		case cfg.InProcess:
			spec.Start = supervisor.Func(func(ctx context.Context) error {
				return runModule(ctx, name, cfg, password, n.clock, n.log)
			})
		case name == ModuleUpgrader:
			// The judge of generations runs from the bootstrap.
			spec.Start = supervisor.Exec{
				Path:     n.exe,
				Args:     append([]string{"run", name}, childArgs...),
				Env:      env,
				Stderr:   n.stderr,
				Lifeline: true,
			}.Start
		default:
			// The program is looked up at every start: after a switch,
			// the restart runs the new generation's zosd.
			spec.Start = func(ctx context.Context) (supervisor.Process, error) {
				exe := n.exe
				if p, ok := installed.ModuleProgram(); ok {
					exe = p
				}
				return supervisor.Exec{
					Path:     exe,
					Args:     append([]string{"run", name}, childArgs...),
					Env:      env,
					Stderr:   n.stderr,
					Lifeline: true,
				}.Start(ctx)
			}
		}
		specs = append(specs, spec)
	}
	return specs
}

// supervisorMethods are the methods of zosd/supervisor@1.0.
func (n *node) supervisorMethods(sup *supervisor.Supervisor, info RunInfo) bus.Methods {
	return bus.Methods{
		"Modules": bus.Func0(sup.Statuses),
		"Info":    bus.Func0(func(context.Context) (RunInfo, error) { return info, nil }),
		"Restart": bus.Proc1(func(ctx context.Context, names []string) error {
			if len(names) == 0 && n.switched() {
				// Under the bootstrap every part runs from the
				// generation, this zosd too: the bootstrap starts
				// the current one's. The call ends with the node.
				n.handover()
				<-ctx.Done()
				return context.Cause(ctx)
			}
			if len(names) == 0 {
				names = generationModules()
			}
			n.log.Info("restarting modules", "module", "zosd", "modules", names)
			err := sup.Restart(ctx, names...)
			if errors.Is(err, supervisor.ErrUnknownProcess) {
				return bus.Errorf(bus.CodeBadArguments, "%w", err)
			}
			return err
		}),
	}
}

// supervise runs the modules until ctx ends or one fails fatally. A module
// that refuses to run stops the node. When it runs from a generation on
// trial, that is the generation's fault, and the upgrader cannot judge it
// any more (it was stopped too): switch back and start the modules again,
// rather than stop on a generation that would stop every start.
func (n *node) supervise(ctx context.Context, sup *supervisor.Supervisor) error {
	for {
		err := sup.Run(ctx)
		var fe *supervisor.FatalError
		if !errors.As(err, &fe) || ctx.Err() != nil {
			return err
		}
		t, aerr := upgrader.AbortTrial(n.cfg.UpgradeDir(), fmt.Sprintf("%s failed fatally on the new generation: %v", fe.Name, fe.Err))
		if aerr != nil {
			n.log.Error("cannot switch back from the generation being tried", "err", aerr)
			return err
		}
		if t == nil {
			return err
		}
		if n.boot != nil {
			n.log.Error("a module failed fatally on the generation being tried; switched back to the previous one, handing over to the bootstrap",
				"module", fe.Name, "err", fe.Err, "version", t.Version, "generation", t.Generation, "back_to", t.From)
			return errHandover
		}
		n.log.Error("a module failed fatally on the generation being tried; switched back to the previous one, starting the modules again",
			"module", fe.Name, "err", fe.Err, "version", t.Version, "generation", t.Generation, "back_to", t.From)
	}
}

// stopLeftRedis stops a redis-server a previous zosd left on the bus
// socket. A zosd killed at once (SIGKILL, then the bootstrap starts the
// next) leaves its redis shutting down on SIGTERM (its parent-death
// signal); finishing after the new one bound the socket, it would remove
// the new one's socket file on its way out and leave the node with no bus
// and a redis that looks alive to the supervisor.
func (n *node) stopLeftRedis(ctx context.Context, sock string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	killed, err := process.KillMatching(ctx, redisOn(sock))
	if killed > 0 {
		n.log.Warn("stopped a redis-server left on the bus socket by a previous zosd", "module", "zosd", "socket", sock)
	}
	if err != nil {
		return fmt.Errorf("the private Redis: %w", err)
	}
	return nil
}

// redisOn matches a redis-server on socket sock: by its arguments, or by
// the title it gives itself once running ("redis-server unixsocket:<sock>").
func redisOn(sock string) func(argv []string) bool {
	return func(argv []string) bool {
		return process.HoldsInARow(argv, "--unixsocket", sock) ||
			len(argv) > 0 && strings.HasSuffix(argv[0], " unixsocket:"+sock)
	}
}

// redisSpec is the private redis-server: on a unix socket in the data
// directory, without persistence (the bus carries calls and recent
// events, nothing to keep across restarts), with the users of the ACL
// file (read again when it restarts).
func (n *node) redisSpec(cfg Config, users busUsers) supervisor.Spec {
	sock := cfg.RedisSocket()
	return supervisor.Spec{
		Name: ModuleRedis,
		Start: supervisor.Exec{
			Path: cfg.RedisServer,
			Args: []string{
				"--port", "0",
				"--unixsocket", sock,
				"--unixsocketperm", "700",
				"--save", "",
				"--appendonly", "no",
				"--dir", cfg.DataDir,
				"--loglevel", "warning",
				"--aclfile", cfg.ACLFile(),
			},
			Stderr: n.stderr,
			// redis-server cannot watch a lifeline; the kernel stops it
			// if zosd dies without stopping it.
			ParentDeathSignal: syscall.SIGTERM,
		}.Start,
		Ready: func(ctx context.Context) error {
			b, err := bus.Open("unix://"+sock, users.options(BusUserZosd, bus.Options{}))
			if err != nil {
				return err
			}
			defer b.Close()
			for {
				pctx, cancel := context.WithTimeout(ctx, time.Second)
				err := b.Ping(pctx)
				cancel()
				if err == nil {
					return nil
				}
				if clock.Sleep(ctx, n.clock, 20*time.Millisecond) != nil {
					return fmt.Errorf("redis at %s: %w", sock, err)
				}
			}
		},
	}
}

// ErrLocked: another zosd runs on the data directory.
var ErrLocked = errors.New("another zosd is running on this data directory")

// lockDataDir takes an exclusive lock on the data directory for the life
// of the process.
func lockDataDir(cfg Config) (func(), error) {
	unlock, err := lockfile.Take(cfg.LockFile())
	if errors.Is(err, lockfile.ErrHeld) {
		who := ""
		if info, rerr := readRunFile(cfg.RunFile()); rerr == nil {
			who = fmt.Sprintf(" (pid %d)", info.PID)
		}
		return nil, fmt.Errorf("%w: %s%s", ErrLocked, cfg.DataDir, who)
	}
	return unlock, err
}

func writeRunFile(path string, info RunInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("run file: %w", err)
	}
	return nil
}

// ErrNotRunning: no zosd runs on the data directory.
var ErrNotRunning = errors.New("zosd is not running")

func readRunFile(path string) (RunInfo, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return RunInfo{}, fmt.Errorf("%w (no %s)", ErrNotRunning, path)
	}
	if err != nil {
		return RunInfo{}, err
	}
	var info RunInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return RunInfo{}, fmt.Errorf("run file %s: %w", path, err)
	}
	return info, nil
}
