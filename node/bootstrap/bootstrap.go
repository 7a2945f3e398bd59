// Package bootstrap is what the host starts on a node: a small program
// that finds the current generation of the node's upgrade directory,
// verifies it offline (the release's signature and every package's
// hashes, with package generation's code: the upgrader's own check),
// starts that generation's zosd and watches it. When the zosd of a
// generation on trial exits, stops beating or is not confirmed healthy in
// time, it switches back to the previous generation and records why, so
// that the upgrader does not install that release again under the same
// version record. It keeps nothing else in memory and has no network code
// (docs/upgrade.md, "The bootstrap").
//
// The contract with zosd:
//
//   - the bootstrap passes zosd the write end of a pipe as descriptor 3
//     (HeartbeatFDEnv) and an interval (HeartbeatIntervalEnv): zosd writes
//     a byte on it at that interval while its supervisor runs. No byte
//     within Config.StartDeadline of the start, or within
//     Config.HeartbeatDeadline of the last one, and zosd is stopped as
//     hung;
//   - GenerationEnv names the generation the bootstrap started; a zosd
//     whose upgrader switched the node to another one (or back) stops its
//     modules and exits with ExitHandover, and the bootstrap starts the
//     zosd of the generation now current.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/grid4/grid4/internal/lockfile"
	"github.com/grid4/grid4/internal/sdnotify"
	"github.com/grid4/grid4/node/upgrader/generation"
)

// The contract with zosd (see the package doc).
const (
	// ExitHandover is zosd's exit status asking the bootstrap to start
	// the current generation's zosd: the upgrader switched generations.
	ExitHandover = 75
	// HeartbeatFDEnv names the descriptor zosd writes its heartbeat on.
	HeartbeatFDEnv = "ZOSD_HEARTBEAT_FD"
	// HeartbeatIntervalEnv is how often zosd writes it (Go duration).
	HeartbeatIntervalEnv = "ZOSD_HEARTBEAT_INTERVAL"
	// GenerationEnv is the generation the bootstrap started zosd from
	// (0: its own zosd, Config.BaseZosd).
	GenerationEnv = "ZOSD_GENERATION"
)

// Defaults of Config.
const (
	DefaultStartDeadline     = 2 * time.Minute
	DefaultHeartbeatDeadline = time.Minute
	DefaultTrialDeadline     = 15 * time.Minute
	DefaultStopGrace         = 30 * time.Second
	DefaultRestartMin        = time.Second
	DefaultRestartMax        = time.Minute
	DefaultSelfConfirm       = 2 * time.Minute
)

// ErrLocked: another bootstrap runs on the data directory.
var ErrLocked = errors.New("another bootstrap is running on this data directory")

// Config configures the bootstrap. Zero durations take the defaults.
type Config struct {
	// DataDir is zosd's data directory; the upgrade directory is its
	// "upgrade". zosd is given --data=DataDir.
	DataDir string
	// BaseZosd is the zosd the machine came with: generation 0, what
	// runs while the node has no generation, and what a failed first
	// generation falls back to.
	BaseZosd string
	// PublisherKey is the release publisher's public key (32 bytes): a
	// generation runs only if its release verifies with it. zosd is
	// given it as --upgrade-publisher-key when PublisherKeyText is set.
	PublisherKey []byte
	// PublisherKeyText is the key as the operator wrote it.
	PublisherKeyText string
	// Args are zosd's flags.
	Args []string
	// StartDeadline bounds the wait for zosd's first heartbeat,
	// HeartbeatDeadline the wait for each next one.
	StartDeadline, HeartbeatDeadline time.Duration
	// TrialDeadline bounds how long the zosd of a generation on trial
	// may run before its upgrader confirms it healthy.
	TrialDeadline time.Duration
	// StopGrace is how long zosd has to stop after SIGTERM before it is
	// killed.
	StopGrace time.Duration
	// RestartMin and RestartMax bound the wait before a confirmed
	// generation's zosd that died is started again (doubling per quick
	// death).
	RestartMin, RestartMax time.Duration
	// SelfDir holds the bootstraps (see BootstrapPackage): with it, a
	// confirmed generation whose release carries another bootstrap has
	// it installed there and run; empty: the bootstrap is not upgraded.
	SelfDir string
	// SelfConfirm is how long a new bootstrap must keep the node's zosd
	// beating before it is confirmed (DefaultSelfConfirm).
	SelfConfirm time.Duration
	// Stderr receives zosd's output (nil: os.Stderr).
	Stderr io.Writer
	// Logger receives the bootstrap's records (nil: discarded).
	Logger *slog.Logger
	// Notifier receives the bootstrap's state for the host's service
	// manager (nil: none).
	Notifier Notifier
}

// Notifier is the host's service manager as the bootstrap sees it
// (*sdnotify.Notifier for systemd): it is told when the node's zosd first
// beats and what runs, and, when it watches (Watchdog > 0), gets
// keep-alives sent from the bootstrap's own loop, so that a bootstrap
// whose loop hangs — a new one on trial as much as an old one — stops
// sending them and is killed by the manager, and switched back from by
// the unit's ExecStopPost if it was on trial (docs/upgrade.md).
type Notifier interface {
	Notify(states ...string) error
	Watchdog() time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.StartDeadline, DefaultStartDeadline)
	def(&c.HeartbeatDeadline, DefaultHeartbeatDeadline)
	def(&c.TrialDeadline, DefaultTrialDeadline)
	def(&c.StopGrace, DefaultStopGrace)
	def(&c.RestartMin, DefaultRestartMin)
	def(&c.RestartMax, DefaultRestartMax)
	def(&c.SelfConfirm, DefaultSelfConfirm)
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Bootstrap runs a node's zosd from its current generation.
type Bootstrap struct {
	cfg Config
	dir generation.Dir
	log *slog.Logger
	// selfTrial is set while this bootstrap is on trial (SelfDir).
	selfTrial *SelfTrial
	// keepalive ticks while Run runs when the host's manager watches the
	// bootstrap; every wait of the loop sends a keep-alive on it.
	keepalive <-chan time.Time
}

// New returns a Bootstrap of cfg.
func New(cfg Config) (*Bootstrap, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.DataDir == "":
		return nil, errors.New("bootstrap: the data directory is required")
	case cfg.BaseZosd == "":
		return nil, errors.New("bootstrap: the base zosd program is required")
	}
	data, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	cfg.DataDir = data
	return &Bootstrap{cfg: cfg, dir: generation.Dir{Root: filepath.Join(data, "upgrade")}, log: cfg.Logger}, nil
}

// Run starts zosd and starts it again whenever it ends, until ctx ends:
// then it stops zosd (SIGTERM, SIGKILL after StopGrace) and returns nil.
func (b *Bootstrap) Run(ctx context.Context) error {
	if err := os.MkdirAll(b.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("bootstrap: data directory: %w", err)
	}
	unlock, err := b.lock()
	if err != nil {
		return err
	}
	defer unlock()
	b.selfTrial = b.selfOnTrial()
	if b.selfTrial != nil {
		b.log.Warn("this bootstrap is on trial", "from", b.selfTrial.From, "generation", b.selfTrial.Generation, "confirm_after", b.cfg.SelfConfirm)
	}
	defer b.startKeepalive()()
	wait := time.Duration(0)
	for {
		if !b.sleep(ctx, wait) {
			b.notify(sdnotify.Stopping)
			return nil
		}
		gen, prog, err := b.pick(ctx)
		if err != nil {
			return err
		}
		if t, _ := b.dir.OnTrial(gen); t == nil && b.selfTrial == nil {
			// Only from a confirmed generation, and not while this
			// bootstrap is itself on trial.
			b.selfUpgrade(gen)
		}
		started := time.Now()
		end := b.runZosd(ctx, gen, prog)
		if ctx.Err() != nil {
			b.notify(sdnotify.Stopping)
			return nil
		}
		wait = b.after(ctx, gen, end, time.Since(started), wait)
	}
}

// startKeepalive starts the keep-alive ticks when the host's manager
// watches the bootstrap (a third of its interval, to stay clear of
// scheduling delays) and sends the first; it returns what stops them.
func (b *Bootstrap) startKeepalive() func() {
	if b.cfg.Notifier == nil || b.cfg.Notifier.Watchdog() <= 0 {
		return func() {}
	}
	t := time.NewTicker(max(b.cfg.Notifier.Watchdog()/3, time.Millisecond))
	b.keepalive = t.C
	b.notify(sdnotify.KeepAlive)
	return t.Stop
}

// sleep waits d, sending keep-alives meanwhile; false when ctx ended.
func (b *Bootstrap) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-b.keepalive:
			b.notify(sdnotify.KeepAlive)
		}
	}
}

// notify tells the host's manager states, if there is one to tell.
func (b *Bootstrap) notify(states ...string) {
	if b.cfg.Notifier == nil {
		return
	}
	if err := b.cfg.Notifier.Notify(states...); err != nil {
		b.log.Warn("telling the service manager", "states", states, "err", err)
	}
}

// after decides, once generation gen's zosd ended, how long to wait
// before the next start: none after a handover or a switch back, else the
// restart backoff (prev was the last wait).
func (b *Bootstrap) after(ctx context.Context, gen uint64, end ending, ran, prev time.Duration) time.Duration {
	cur, err := b.dir.Current()
	switch {
	case end.handover && err == nil && cur != gen:
		b.log.Info("zosd handed over: starting the current generation's", "was", gen, "current", cur)
		return 0
	case end.handover:
		// A handover without a switch is a zosd that exits at start
		// (as a release's could, again and again): a failure.
		end.reason = fmt.Sprintf("the zosd of %s exited with status %d (handover) but the node did not switch generations", genString(gen), ExitHandover)
	}
	if err == nil && cur != gen {
		// Switched while it ran (an upgrade, or a rollback the
		// upgrader decided): not this generation's failure.
		b.log.Warn("zosd ended after a switch: starting the current generation's", "was", gen, "current", cur, "reason", end.reason)
		return 0
	}
	if t, err := b.failTrial(ctx, gen, end.reason); err != nil {
		b.log.Error("switching back from a failed generation", "generation", gen, "err", err)
	} else if t != nil {
		b.log.Warn("rolled back: the generation on trial failed", "generation", gen, "version", t.Version, "back_to", t.From, "reason", end.reason)
		return 0
	}
	next := b.cfg.RestartMin
	if ran < time.Minute && prev > 0 {
		next = min(2*prev, b.cfg.RestartMax)
	}
	b.log.Error("zosd ended; starting it again", "generation", gen, "reason", end.reason, "in", next)
	return next
}

// failTrial switches back from gen if it is on trial (the lock taken:
// the stopped zosd's upgrader may still be ending).
func (b *Bootstrap) failTrial(ctx context.Context, gen uint64, reason string) (*generation.Trial, error) {
	if t, err := b.dir.OnTrial(gen); err != nil || t == nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, b.cfg.StopGrace)
	defer cancel()
	unlock, err := b.dir.LockWait(lctx, 20*time.Millisecond)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return b.dir.FailTrial(gen, reason, time.Now())
}

// pick returns the current generation and its zosd once it verifies,
// falling back (generation.FallBack) from one that does not, down to the
// base zosd (generation 0).
func (b *Bootstrap) pick(ctx context.Context) (uint64, string, error) {
	for {
		gen, err := b.dir.Current()
		if err == nil && gen == 0 {
			return 0, b.cfg.BaseZosd, nil
		}
		if t, terr := b.dir.OnTrial(gen); err == nil && terr == nil && t != nil && t.Phase == generation.PhaseRollingBack {
			// A rollback written down and not done: finish it rather
			// than start what was judged.
			if _, err := b.failTrial(ctx, gen, t.Reason); err != nil {
				return 0, "", fmt.Errorf("bootstrap: finishing the rollback from generation %d: %w", gen, err)
			}
			continue
		}
		if err == nil {
			if len(b.cfg.PublisherKey) == 0 {
				err = fmt.Errorf("%w: no publisher key to verify it with (--upgrade-publisher-key)", generation.ErrUnverified)
			} else if _, err = b.dir.Verify(gen, b.cfg.PublisherKey); err == nil {
				return gen, b.dir.Path(generation.CurrentLink, generation.ZosLink, filepath.FromSlash(generation.ZosBinary)), nil
			}
		}
		b.log.Error("the current generation cannot be started; falling back to the previous one", "generation", gen, "err", err)
		lctx, cancel := context.WithTimeout(ctx, b.cfg.StopGrace)
		unlock, lerr := b.dir.LockWait(lctx, 20*time.Millisecond)
		cancel()
		if lerr != nil {
			return 0, "", fmt.Errorf("bootstrap: %w", lerr)
		}
		_, ferr := b.dir.FallBack(gen, err.Error(), time.Now())
		unlock()
		if ferr != nil {
			return 0, "", fmt.Errorf("bootstrap: falling back from generation %d: %w", gen, ferr)
		}
	}
}

// lock takes <data>/bootstrap.lock for the life of the process: one
// bootstrap per node.
func (b *Bootstrap) lock() (func(), error) {
	unlock, err := lockfile.Take(filepath.Join(b.cfg.DataDir, "bootstrap.lock"))
	if errors.Is(err, lockfile.ErrHeld) {
		return nil, fmt.Errorf("bootstrap: %w: %s", ErrLocked, b.cfg.DataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return unlock, nil
}

// genString names a generation for people.
func genString(n uint64) string {
	if n == 0 {
		return "the base zosd"
	}
	return "generation " + strconv.FormatUint(n, 10)
}
