package upgrader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/upgrader/generation"
	"github.com/grid4/grid4/registrar/api"
)

// Sentinel errors.
var (
	// ErrDamaged: the upgrade directory holds something the upgrader did
	// not write (generation.ErrDamaged).
	ErrDamaged = generation.ErrDamaged
	// ErrBadRelease: the release cannot be installed whatever the hub
	// does (generation.ErrBadRelease). It is not tried again under the
	// same serial.
	ErrBadRelease = generation.ErrBadRelease
	// ErrUnhealthy: the new generation did not come up healthy in time;
	// the node switched back.
	ErrUnhealthy = errors.New("new generation not healthy")
	// ErrLocked: another upgrader uses the directory
	// (generation.ErrLocked).
	ErrLocked = generation.ErrLocked
	// ErrNotRunning: CheckNow was called while Run is not running.
	ErrNotRunning = errors.New("upgrader not running")
	// ErrNoVersion: the registrar has no version set. A VersionSource
	// returns an error wrapping it, so the upgrader reports a grid that
	// approves no version as such rather than as a failure.
	ErrNoVersion = errors.New("the registrar has no ZOS version set")
)

// Defaults of Config.
const (
	DefaultInterval       = 60 * time.Minute
	DefaultMaxJitter      = 10 * time.Minute
	DefaultHealthDeadline = 5 * time.Minute
	DefaultHealthPoll     = 5 * time.Second
	DefaultMaxTrials      = 3
	DefaultInstallTimeout = 30 * time.Minute
	DefaultPublisher      = "tf"
	DefaultRepo           = "zos"
)

// Config configures an Upgrader. Zero durations take the defaults.
type Config struct {
	// Dir is the upgrade directory (zosd: <data>/upgrade). Required.
	Dir string
	// Farm is the node's farm: it takes a version early when the farm is
	// one of the version's test farms. Required.
	Farm uint64
	// BaseVersion is the version of the bootstrap, what the node runs
	// while it has no generation (zosd --zos-version); may be empty.
	BaseVersion string
	// Publisher and Repo name the hub repository whose tags are the ZOS
	// versions (DefaultPublisher, DefaultRepo).
	Publisher, Repo string
	// PublisherKey is the publisher's 32-byte public key: a tag is only
	// installed when its signature verifies with it. Required.
	PublisherKey []byte
	// FirstCheck is the wait before the first check, after a start (0:
	// check at once).
	FirstCheck time.Duration
	// Interval is the time between two checks of the registrar
	// (DefaultInterval), to which a jitter of up to MaxJitter is added
	// (DefaultMaxJitter; negative: none), so a fleet does not check in
	// step.
	Interval, MaxJitter time.Duration
	// HealthDeadline bounds the wait for a new generation to come up
	// healthy (DefaultHealthDeadline); HealthPoll is how often it is asked
	// meanwhile (DefaultHealthPoll).
	HealthDeadline, HealthPoll time.Duration
	// MaxTrials is how many health checks one switch gets when the
	// upgrader (or the node) keeps dying during them (DefaultMaxTrials).
	MaxTrials int
	// InstallTimeout bounds downloading and building one release
	// (DefaultInstallTimeout).
	InstallTimeout time.Duration
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.Interval, DefaultInterval)
	def(&c.MaxJitter, DefaultMaxJitter)
	def(&c.HealthDeadline, DefaultHealthDeadline)
	def(&c.HealthPoll, DefaultHealthPoll)
	def(&c.InstallTimeout, DefaultInstallTimeout)
	c.MaxJitter = max(c.MaxJitter, 0)
	if c.MaxTrials <= 0 {
		c.MaxTrials = DefaultMaxTrials
	}
	if c.Publisher == "" {
		c.Publisher = DefaultPublisher
	}
	if c.Repo == "" {
		c.Repo = DefaultRepo
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Dir == "":
		return errors.New("upgrade: Config.Dir is required")
	case c.Farm == 0:
		return errors.New("upgrade: Config.Farm is required")
	case len(c.PublisherKey) != keys.PublicKeySize:
		return fmt.Errorf("upgrade: Config.PublisherKey is %d bytes, want %d", len(c.PublisherKey), keys.PublicKeySize)
	case c.FirstCheck < 0 || c.Interval < 0 || c.HealthDeadline < 0 || c.HealthPoll < 0 || c.InstallTimeout < 0:
		return errors.New("upgrade: durations must not be negative")
	}
	for _, n := range []string{c.Publisher, c.Repo} {
		if err := flist.ValidName(n); err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
	}
	return nil
}

// VersionSource gives the registrar's approved version;
// registration.GatewayStub and *client.Client are ones (wrap them to map
// their "not found" to ErrNoVersion).
type VersionSource interface {
	ZosVersion(ctx context.Context) (api.ZosVersion, error)
}

// Packages fetches releases and installs packages; FlistdPackages adapts
// a flistd.Manager.
type Packages interface {
	// Release fetches the tag publisher/repo:tag and verifies its
	// signature with key (never a key the hub provides). It returns the
	// tag and the signed tag (whose Hash is the release hash), which the
	// generation keeps (generation.Proof).
	Release(ctx context.Context, publisher, repo, tag string, key []byte) (*flist.Tag, flist.SignedTag, error)
	// Install materialises flist id into dir, which must not exist, as a
	// read-only tree of checked blocks, atomically.
	Install(ctx context.Context, id flist.ID, dir string) error
	// Document returns flist id's document, checked against id, which
	// the generation keeps so that its trees can be verified offline.
	Document(ctx context.Context, id flist.ID) ([]byte, error)
}

// Restarter restarts the node's modules, so they run from the current
// generation.
type Restarter interface {
	RestartModules(ctx context.Context) error
}

// RestarterFunc adapts a function to Restarter.
type RestarterFunc func(ctx context.Context) error

// RestartModules calls f.
func (f RestarterFunc) RestartModules(ctx context.Context) error { return f(ctx) }

// HealthChecker says whether the node is healthy on the current
// generation, whose modules were restarted at since: nil when it is, else
// why not.
type HealthChecker interface {
	Healthy(ctx context.Context, since time.Time) error
}

// Prober checks, before the switch, that generation dir's zos program
// runs on this machine; ExecProbe is the default.
type Prober interface {
	Probe(ctx context.Context, dir string) error
}

// Step names a point of an upgrade, for the crash tests (Deps.AtStep);
// the steps are generation's StepChecked … StepRolledBack.
type Step = generation.Step

// Steps, in the order an upgrade takes them (see generation.Step).
const (
	StepChecked        = generation.StepChecked
	StepVerified       = generation.StepVerified
	StepPackage        = generation.StepPackage
	StepManifestTemp   = generation.StepManifestTemp
	StepGenerationTemp = generation.StepGenerationTemp
	StepGeneration     = generation.StepGeneration
	StepProbed         = generation.StepProbed
	StepStateTemp      = generation.StepStateTemp
	StepTrial          = generation.StepTrial
	StepLinkTemp       = generation.StepLinkTemp
	StepSwitched       = generation.StepSwitched
	StepRestarted      = generation.StepRestarted
	StepHealthy        = generation.StepHealthy
	StepCommitted      = generation.StepCommitted
	StepRollingBack    = generation.StepRollingBack
	StepSwitchedBack   = generation.StepSwitchedBack
	StepRolledBack     = generation.StepRolledBack
)

// Deps are the Upgrader's collaborators.
type Deps struct {
	// Registrar gives the approved version. Required.
	Registrar VersionSource
	// Packages fetches and installs releases. Required.
	Packages Packages
	// Restarter restarts the modules after a switch. Required.
	Restarter Restarter
	// Health judges the new generation after the restart. Required.
	Health HealthChecker
	// Probe runs the new zos binary before the switch (nil: ExecProbe
	// with its defaults).
	Probe Prober
	// Clock drives the schedule and the health deadline (nil: the real
	// clock).
	Clock clock.Clock
	// Jitter draws the jitter added to an interval, in [0, max] (nil:
	// uniformly random).
	Jitter func(max time.Duration) time.Duration
	// Logger receives the upgrader's records (nil: discarded).
	Logger *slog.Logger
	// AtStep, when set, is called at each Step: tests kill the process
	// there to prove every step crash safe.
	AtStep func(Step)
}

func (d Deps) withDefaults() (Deps, error) {
	if d.Registrar == nil || d.Packages == nil || d.Restarter == nil || d.Health == nil {
		return d, errors.New("upgrade: Deps.Registrar, Packages, Restarter and Health are required")
	}
	if d.Probe == nil {
		d.Probe = ExecProbe{}
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Jitter == nil {
		d.Jitter = func(limit time.Duration) time.Duration {
			if limit <= 0 {
				return 0
			}
			return rand.N(limit + 1)
		}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.AtStep == nil {
		d.AtStep = func(Step) {}
	}
	return d, nil
}
