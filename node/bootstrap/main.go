package bootstrap

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	"github.com/grid4/grid4/internal/envflag"
	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/internal/sdnotify"
	"github.com/grid4/grid4/keys"
)

// Exit statuses of Main.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

var program = envflag.Program{
	Prefix: "BOOTSTRAP_",
	Usage: `Usage:
  bootstrap [flags] -- [zosd flags]
      start the node: the current generation's zosd (verified), or --zosd
      while the node has none; watch it, switch back from a generation on
      trial that fails, start zosd again when it ends (docs/upgrade.md)
  bootstrap revert --self-dir DIR
      after a failed run of a bootstrap on trial ($SERVICE_RESULT), switch
      back to the previous one (the host unit's ExecStopPost)
  bootstrap version
      print this program's build

`,
	Example: "data",
}

// Main runs the bootstrap with args (without the program name) until ctx
// ends and returns the exit status. Errors are one line on stderr:
// "bootstrap: <why>".
func Main(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	switch {
	case len(args) > 0 && args[0] == "version":
		fmt.Fprintln(stderr, "bootstrap", buildVersion())
		return ExitOK
	case len(args) > 0 && args[0] == "revert":
		return mainRevert(args[1:], getenv, stderr)
	}
	cfg, level, format, err := parseArgs(args, getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case err != nil:
		fmt.Fprintf(stderr, "bootstrap: %v (see bootstrap --help)\n", err)
		return ExitUsage
	}
	cfg.Stderr = stderr
	cfg.Logger = logflag.New(stderr, level, format).With("module", "bootstrap")
	// Under systemd with NotifyAccess= and WatchdogSec= (docs/upgrade.md).
	// A manager that cannot be told does not stop the node from running.
	notifier, err := sdnotify.FromEnv(getenv, os.Getpid())
	if err != nil {
		cfg.Logger.Error("the service manager cannot be told the node's state (no readiness, no watchdog keep-alives)", "err", err)
	}
	defer notifier.Close()
	if notifier != nil {
		cfg.Notifier = notifier
	}
	b, err := New(cfg)
	if err == nil {
		err = b.Run(ctx)
	}
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap: %v\n", err)
		if b != nil && b.selfTrial != nil {
			// A new bootstrap that cannot run the node: the previous
			// one runs it from the unit's next start.
			if rerr := RevertSelf(cfg.SelfDir, err.Error()); rerr != nil {
				fmt.Fprintf(stderr, "bootstrap: switching back to the previous bootstrap: %v\n", rerr)
			}
		}
		return ExitError
	}
	return ExitOK
}

// mainRevert is `bootstrap revert --self-dir DIR`, which the host's unit
// runs with the previous bootstrap after each run (ExecStopPost): after
// a failed run ($SERVICE_RESULT other than success) of a bootstrap on
// trial, current goes back to the previous one.
func mainRevert(args []string, getenv func(string) string, stderr io.Writer) int {
	fs := flag.NewFlagSet("bootstrap revert", flag.ContinueOnError)
	dir := fs.String("self-dir", "", "the directory of the bootstraps (current, previous)")
	err := program.Parse(fs, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err == nil && *dir == "" {
		err = errors.New("--self-dir is required")
	}
	if err != nil {
		fmt.Fprintf(stderr, "bootstrap revert: %v (see bootstrap --help)\n", err)
		return ExitUsage
	}
	result := getenv("SERVICE_RESULT")
	if result == "success" {
		return ExitOK
	}
	if err := RevertSelf(*dir, fmt.Sprintf("the unit failed: %s %s %s", result, getenv("EXIT_CODE"), getenv("EXIT_STATUS"))); err != nil {
		fmt.Fprintf(stderr, "bootstrap revert: %v\n", err)
		return ExitError
	}
	return ExitOK
}

// buildVersion describes the program from its build information.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(no build information)"
	}
	return bi.Main.Version + " " + bi.GoVersion
}

// parseArgs reads the bootstrap's flags (before "--") and zosd's (after).
func parseArgs(args []string, getenv func(string) string, stderr io.Writer) (Config, slog.Level, string, error) {
	var zosd []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, zosd = args[:i], args[i+1:]
	}
	cfg := Config{Args: zosd}
	var level slog.Level
	format := "text"
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.StringVar(&cfg.DataDir, "data", "/var/lib/zosd", "zosd's data directory (zosd gets --data with it); the generations are in its upgrade directory")
	fs.StringVar(&cfg.BaseZosd, "zosd", defaultZosd(), "the zosd the machine came with: run while the node has no generation, and the last fall back")
	fs.StringVar(&cfg.PublisherKeyText, "upgrade-publisher-key", "", "the release publisher's public key (hex, base64 or SS58): a generation runs only if its release verifies with it; zosd gets it too")
	fs.DurationVar(&cfg.StartDeadline, "start-deadline", DefaultStartDeadline, "longest wait for zosd's first heartbeat")
	fs.DurationVar(&cfg.HeartbeatDeadline, "heartbeat-deadline", DefaultHeartbeatDeadline, "longest wait between two heartbeats of zosd before it is stopped as hung")
	fs.DurationVar(&cfg.TrialDeadline, "trial-deadline", DefaultTrialDeadline, "how long the zosd of a generation on trial may run before its upgrader confirms it healthy")
	fs.DurationVar(&cfg.StopGrace, "stop-grace", DefaultStopGrace, "how long zosd has to stop after SIGTERM")
	fs.DurationVar(&cfg.RestartMin, "restart-min", DefaultRestartMin, "first wait before starting again a zosd that died")
	fs.StringVar(&cfg.SelfDir, "self-dir", "", "the directory of the bootstraps (current, previous): with it, a release carrying a bootstrap package upgrades the bootstrap; empty: never")
	fs.DurationVar(&cfg.SelfConfirm, "self-confirm", DefaultSelfConfirm, "how long a new bootstrap must keep zosd beating before it is confirmed")
	fs.DurationVar(&cfg.RestartMax, "restart-max", DefaultRestartMax, "longest wait before starting again a zosd that died")
	logflag.Flags(fs, &level, &format)
	if err := program.Parse(fs, args, getenv, stderr); err != nil {
		return cfg, level, format, err
	}
	if err := logflag.CheckFormat(format); err != nil {
		return cfg, level, format, err
	}
	// New takes a zero duration for its default: a flag given as 0 or
	// negative would silently mean the default.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"start-deadline", cfg.StartDeadline}, {"heartbeat-deadline", cfg.HeartbeatDeadline}, {"trial-deadline", cfg.TrialDeadline},
		{"stop-grace", cfg.StopGrace}, {"restart-min", cfg.RestartMin}, {"restart-max", cfg.RestartMax}, {"self-confirm", cfg.SelfConfirm},
	} {
		if d.v <= 0 {
			return cfg, level, format, fmt.Errorf("--%s must be positive", d.name)
		}
	}
	if cfg.PublisherKeyText != "" {
		key, err := keys.ParsePublicKey(cfg.PublisherKeyText)
		if err != nil {
			return cfg, level, format, fmt.Errorf("--upgrade-publisher-key: %w", err)
		}
		cfg.PublisherKey = key
	}
	return cfg, level, format, nil
}

// defaultZosd is zosd beside the bootstrap's program.
func defaultZosd() string {
	exe, err := os.Executable()
	if err != nil {
		return "zosd"
	}
	return filepath.Join(filepath.Dir(exe), "zosd")
}
