// Package zosd is the node daemon: it runs the modules of a Grid v4 node
// (Modules: identityd, noded, storaged, flistd, location, powerd,
// registrar_gateway, registrar_light, netlightd, provisiond, upgrader),
// each as a `zosd run <module>` process or, when configured, as
// goroutines, over a Redis bus (its own private redis-server unless given
// one), restarts a module that dies, and shows the node's state (`zosd
// status`). See docs/node.md.
package zosd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/node/bootstrap"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Exit statuses of Main.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
	// ExitFatal: a module refused to run for a reason a restart does not
	// fix (supervisor.ExitFatal).
	ExitFatal = supervisor.ExitFatal
	// ExitHandover: under the bootstrap, the node switched generations
	// (bootstrap.ExitHandover): the bootstrap starts the current
	// generation's zosd.
	ExitHandover = bootstrap.ExitHandover
)

// Env is what Main reads and writes: the process's streams and
// environment, or test doubles.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Executable is the zosd program started for each module (default:
	// os.Executable()).
	Executable string
	// Clock drives every timer (default clock.Real{}).
	Clock clock.Clock
}

var usageNode = `Usage:
  zosd --registrar URL --farm ID [--data DIR] [--interface NAME] [--redis URL] [flags]
      run a node: its private Redis (unless --redis) and every module, restarting those that die
  zosd run MODULE [flags]
      run one module (` + strings.Join(Modules(), ", ") + `) alone
  zosd status [--data DIR] [-o text|json]
      show each module's state, the registration and the running version
  zosd version
      print this program's build (the upgrader runs it before switching to a release)
`

// FlistServeCommand is zosd's hidden subcommand serving one lazy flist
// mount (flistd.ServeLazyMain): flistd runs `zosd flistd-serve-lazy
// ARGS…` as a process of its own, so that the mount and the workloads over
// it outlive flistd and zosd.
const FlistServeCommand = "flistd-serve-lazy"

// Main runs zosd with args (without the program name) until ctx ends and
// returns the exit status. Errors are one line on Stderr: "zosd: <why>".
func Main(ctx context.Context, args []string, e Env) int {
	if e.Stdout == nil {
		e.Stdout = io.Discard
	}
	if e.Stderr == nil {
		e.Stderr = io.Discard
	}
	if e.Getenv == nil {
		e.Getenv = func(string) string { return "" }
	}
	if e.Clock == nil {
		e.Clock = clock.Real{}
	}
	var err error
	switch {
	case len(args) > 0 && args[0] == "run":
		err = mainRun(ctx, args[1:], e)
	case len(args) > 0 && args[0] == FlistServeCommand:
		// Not in the usage: flistd starts it, detached, for each lazy
		// flist mount; SIGTERM (ctx) unmounts and ends it.
		err = flistd.ServeLazyMain(ctx, args[1:], e.Stderr)
	case len(args) > 0 && args[0] == "status":
		err = mainStatus(ctx, args[1:], e)
	case len(args) > 0 && args[0] == "version":
		fmt.Fprintln(e.Stdout, buildVersion())
		return ExitOK
	case len(args) > 0 && args[0] == "help":
		fmt.Fprint(e.Stdout, usageNode)
		return ExitOK
	default:
		err = mainNode(ctx, args, e)
	}
	switch {
	case err == nil, errors.Is(err, errHelp):
		return ExitOK
	case errors.Is(err, errHandover):
		return ExitHandover
	case errors.Is(err, ErrUsage):
		fmt.Fprintf(e.Stderr, "zosd: %v (see zosd --help)\n", unwrapUsage(err))
		return ExitUsage
	default:
		fmt.Fprintf(e.Stderr, "zosd: %v\n", err)
		var fe *supervisor.FatalError
		if errors.Is(err, supervisor.ErrFatal) && !errors.As(err, &fe) {
			return ExitFatal // a module run alone
		}
		return ExitError
	}
}

// buildVersion describes the running program from its build
// information: "zosd <module version> <go version> [rev <vcs revision>]".
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "zosd (no build information)"
	}
	out := "zosd " + bi.Main.Version + " " + bi.GoVersion
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			out += " rev " + s.Value
		}
	}
	return out
}

// unwrapUsage drops the "usage: " prefix ErrUsage adds.
func unwrapUsage(err error) string {
	s := err.Error()
	const p = "usage: "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// mainNode runs a node.
func mainNode(ctx context.Context, args []string, e Env) error {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("zosd", flag.ContinueOnError)
	cfg.flagSet(fs)
	if err := parse(fs, args, e.Getenv, e.Stdout, usageNode); err != nil {
		return err
	}
	if err := cfg.validate("node"); err != nil {
		return err
	}
	exe := e.Executable
	if exe == "" && !cfg.InProcess {
		var err error
		if exe, err = os.Executable(); err != nil {
			return fmt.Errorf("finding the zosd program to start the modules: %w", err)
		}
	}
	// The children get every setting as a flag, with absolute paths.
	_ = fs.Set("data", cfg.DataDir)
	_ = fs.Set("geoip-url", cfg.GeoIPURL)
	n := &node{cfg: cfg, childArgs: args0(fs), exe: exe, stderr: e.Stderr, clock: e.Clock, log: logflag.New(e.Stderr, cfg.LogLevel, cfg.LogFormat)}
	boot, err := bootLinkFromEnv(e.Getenv)
	if err != nil {
		return err
	}
	n.boot = boot
	return n.run(ctx)
}

// args0 renders fs's values as flags, leaving out --redis (the node adds
// the one its modules use) and --data-disk when empty.
func args0(fs *flag.FlagSet) []string {
	var out []string
	for _, a := range args(fs) {
		if len(a) >= 8 && a[:8] == "--redis=" {
			continue
		}
		out = append(out, a)
	}
	return out
}

// mainRun runs one module.
func mainRun(ctx context.Context, args []string, e Env) error {
	if len(args) == 0 || args[0] == "" || args[0][0] == '-' {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprint(e.Stdout, usageNode)
			return errHelp
		}
		return fmt.Errorf("%w: zosd run MODULE: name a module (%v)", ErrUsage, Modules())
	}
	name := args[0]
	if _, ok := moduleFuncs()[name]; !ok {
		return fmt.Errorf("%w: unknown module %q (modules: %v)", ErrUsage, name, Modules())
	}
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("zosd run", flag.ContinueOnError)
	cfg.flagSet(fs)
	if err := parse(fs, args[1:], e.Getenv, e.Stdout, usageNode); err != nil {
		return err
	}
	if err := cfg.validate(name); err != nil {
		return err
	}
	if cfg.Redis == "" {
		info, err := readRunFile(cfg.RunFile())
		if err != nil {
			return fmt.Errorf("%w: --redis is required when no zosd runs on %s", ErrUsage, cfg.DataDir)
		}
		cfg.Redis, cfg.BusPrefix = info.Redis, info.BusPrefix
	}
	// The password zosd gave this module; not left for what the module
	// starts to inherit.
	password := bus.Secret(e.Getenv(BusPasswordEnv))
	os.Unsetenv(BusPasswordEnv)
	ctx, cancel := supervisor.WatchLifeline(ctx, e.Getenv)
	defer cancel()
	return runModule(ctx, name, cfg, password, e.Clock, logflag.New(e.Stderr, cfg.LogLevel, cfg.LogFormat))
}

// mainStatus prints the node's state.
func mainStatus(ctx context.Context, args []string, e Env) error {
	cfg := DefaultConfig()
	output := "text"
	fs := flag.NewFlagSet("zosd status", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data", cfg.DataDir, "data directory of the node")
	fs.StringVar(&cfg.Redis, "redis", "", "Redis of the node's bus (default: from the node's run file)")
	fs.StringVar(&cfg.BusPrefix, "bus-prefix", "", "bus key prefix (default: from the node's run file)")
	fs.StringVar(&output, "o", output, "output: text or json")
	fs.StringVar(&output, "output", output, "output: text or json")
	if err := parse(fs, args, e.Getenv, e.Stdout, "Usage: zosd status [--data DIR] [-o text|json]\n"); err != nil {
		return err
	}
	if output != "text" && output != "json" {
		return fmt.Errorf("%w: -o %q: want text or json", ErrUsage, output)
	}
	if err := cfg.validate("status"); err != nil {
		return err
	}
	info, err := readRunFile(cfg.RunFile())
	if err != nil && cfg.Redis == "" {
		return fmt.Errorf("%w on %s", ErrNotRunning, cfg.DataDir)
	}
	if err == nil && cfg.Redis == "" && info.PID > 0 && !process.Alive(info.PID) {
		// A zosd that was killed (SIGKILL, power loss) leaves its run
		// file; asking its dead bus would only say the bus does not answer.
		return fmt.Errorf("%w on %s (its run file names pid %d, which has ended)", ErrNotRunning, cfg.DataDir, info.PID)
	}
	if cfg.Redis != "" {
		info.Redis = cfg.Redis
	}
	if cfg.BusPrefix != "" {
		info.BusPrefix = cfg.BusPrefix
	}
	if info.BusPrefix == "" {
		info.BusPrefix = DefaultBusPrefix
	}
	opts := bus.Options{Prefix: info.BusPrefix, Logger: slog.New(slog.DiscardHandler)}
	if info.BusUser != "" && cfg.Redis == "" {
		// The private Redis: read it as the status user.
		password, err := readStatusSecret(cfg)
		if err != nil {
			return err
		}
		opts.User, opts.Password = info.BusUser, password
	}
	b, err := bus.Open(info.Redis, opts)
	if err != nil {
		return fmt.Errorf("%w: --redis: %v", ErrUsage, err)
	}
	defer b.Close()
	pctx, cancel := context.WithTimeout(ctx, statusTimeout)
	err = b.Ping(pctx)
	cancel()
	if err != nil {
		return fmt.Errorf("the node's bus at %s does not answer (is zosd running on %s?): %w", info.Redis, cfg.DataDir, err)
	}
	r := collect(ctx, b, info)
	if run, err := func() (RunInfo, error) {
		cctx, cancel := context.WithTimeout(ctx, statusTimeout)
		defer cancel()
		return NewModulesStub(b).Info(cctx)
	}(); err == nil {
		r.Run = run
	}
	if output == "json" {
		return printJSON(e.Stdout, r)
	}
	printReport(e.Stdout, r, e.Clock.Now())
	return nil
}
