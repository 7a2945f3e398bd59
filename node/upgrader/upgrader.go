package upgrader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/upgrader/generation"
	"github.com/grid4/grid4/registrar/api"
)

// Outcome is what a check did.
type Outcome string

// Outcomes of a check.
const (
	// UpToDate: the node runs the registrar's version.
	UpToDate Outcome = "up_to_date"
	// NoVersion: the registrar has no version set (ErrNoVersion).
	NoVersion Outcome = "no_version"
	// Waiting: the version is not safe to upgrade yet and the node's farm
	// is not one of its test farms.
	Waiting Outcome = "waiting"
	// Skipped: the node does not take this record: it rolled back from
	// the release under the same serial, or the record is older than one
	// it has seen.
	Skipped Outcome = "skipped"
	// Upgraded: the node switched to the version and it came up healthy.
	Upgraded Outcome = "upgraded"
	// RolledBack: the node switched to the version, it did not come up
	// healthy, and the node switched back.
	RolledBack Outcome = "rolled_back"
	// Refused: the release cannot run here (ErrBadRelease); nothing was
	// switched.
	Refused Outcome = "refused"
	// Failed: the check or the download failed (registrar or hub
	// unreachable, a tag or block that does not verify...); nothing was
	// switched and the next check tries again.
	Failed Outcome = "failed"
)

// Result is the outcome of one check.
type Result struct {
	// Outcome is what the check did.
	Outcome Outcome `json:"outcome"`
	// Version is the version the check was about, when there was one.
	Version string `json:"version,omitempty"`
	// Detail says what happened, for people.
	Detail string `json:"detail"`
	// At is when the check ended.
	At time.Time `json:"at"`
}

// Activity is what the upgrader is doing.
type Activity string

// Activities.
const (
	Idle        Activity = "idle"
	Checking    Activity = "checking"
	Installing  Activity = "installing"
	Verifying   Activity = "verifying" // switched, waiting for the new generation to be healthy
	RollingBack Activity = "rolling_back"
)

// Running describes the generation the node runs.
type Running struct {
	// Version is the ZOS version (Config.BaseVersion for the bootstrap).
	Version string `json:"version"`
	// Generation is the generation's number, 0 for the bootstrap.
	Generation uint64 `json:"generation"`
	// Release is the release hash (zero for the bootstrap).
	Release flist.ID `json:"release,omitzero"`
	// Serial is the registrar's version record it was installed for.
	Serial uint64 `json:"serial,omitempty"`
	// Installed is when the generation was built.
	Installed time.Time `json:"installed,omitzero"`
}

// State is the upgrader's state, served on the bus (upgrader/upgrader@1.0)
// and shown by `zosd status`.
type State struct {
	// Enabled is false when the node does not upgrade.
	Enabled bool `json:"enabled"`
	// Disabled says why it does not.
	Disabled string `json:"disabled,omitempty"`
	// Source is where releases come from: "<publisher>/<repo>".
	Source string `json:"source,omitempty"`
	// Farm is the node's farm.
	Farm uint64 `json:"farm,omitempty"`
	// Activity is what the upgrader is doing.
	Activity Activity `json:"activity,omitempty"`
	// Running is the generation the node runs.
	Running Running `json:"running"`
	// Previous is the one it would go back to (nil without a generation).
	Previous *Running `json:"previous,omitempty"`
	// Registrar is the version record last read.
	Registrar *api.ZosVersion `json:"registrar,omitempty"`
	// SeenSerial is the highest record serial acted on.
	SeenSerial uint64 `json:"seen_serial,omitempty"`
	// LastCheck is when the last check ended.
	LastCheck time.Time `json:"last_check,omitzero"`
	// Last is what it did.
	Last *Result `json:"last,omitempty"`
	// NextCheck is when the next one is due.
	NextCheck time.Time `json:"next_check,omitzero"`
	// Checks counts the checks.
	Checks uint64 `json:"checks"`
	// Trial is a switch in progress.
	Trial *Trial `json:"trial,omitempty"`
	// RolledBack is the last release refused or rolled back from.
	RolledBack *Rollback `json:"rolled_back,omitempty"`
}

// Upgrader follows the registrar's version (see the package doc).
type Upgrader struct {
	cfg Config
	d   Deps
	l   layout
	log *slog.Logger

	requests chan chan Result
	running  atomic.Bool

	mu sync.Mutex
	st State
}

// New returns an Upgrader of cfg. Run runs it.
func New(cfg Config, d Deps) (*Upgrader, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	d, err := d.withDefaults()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	cfg.Dir = dir
	u := &Upgrader{
		cfg: cfg, d: d, log: d.Logger,
		l:        layout{Root: dir, AtStep: d.AtStep},
		requests: make(chan chan Result),
		st:       State{Enabled: true, Source: cfg.Publisher + "/" + cfg.Repo, Farm: cfg.Farm, Activity: Idle, Running: Running{Version: cfg.BaseVersion}},
	}
	return u, nil
}

// State returns a copy of the upgrader's state.
func (u *Upgrader) State(context.Context) (State, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.st
	if s.Registrar != nil {
		r := *s.Registrar
		r.TestFarms = slices.Clone(r.TestFarms)
		s.Registrar = &r
	}
	return s, nil
}

func (u *Upgrader) update(f func(s *State)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(&u.st)
}

// activity says what the upgrader does now, with the state on disk
// (a switch written down shows as the trial).
func (u *Upgrader) activity(a Activity) {
	u.refresh()
	u.update(func(s *State) { s.Activity = a })
}

// Run takes the upgrade directory (one upgrader per directory:
// ErrLocked), finishes or undoes at once what an interrupted run left,
// checks the registrar after FirstCheck, then every Interval plus jitter,
// until ctx ends.
func (u *Upgrader) Run(ctx context.Context) error {
	unlock, err := u.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if err := u.recover(ctx); err != nil && ctx.Err() == nil {
		// Every check tries again first.
		u.log.Error("finishing an interrupted upgrade", "err", err)
		u.update(func(s *State) { s.Last = &Result{Outcome: Failed, Detail: err.Error(), At: u.d.Clock.Now()} })
	}
	u.refresh()
	u.running.Store(true)
	defer u.running.Store(false)

	c := u.d.Clock
	timer := c.NewTimer(u.cfg.FirstCheck)
	u.update(func(s *State) { s.NextCheck = c.Now().Add(u.cfg.FirstCheck) })
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C():
			u.check(ctx)
			if ctx.Err() != nil {
				return nil
			}
			next := u.cfg.Interval + u.d.Jitter(u.cfg.MaxJitter)
			u.update(func(s *State) { s.NextCheck = c.Now().Add(next) })
			timer.Reset(next)
		case reply := <-u.requests:
			reply <- u.check(ctx)
		}
	}
}

// CheckNow makes the running upgrader check the registrar now (after the
// check in progress, if any) and returns what it did. The regular
// schedule is not changed.
func (u *Upgrader) CheckNow(ctx context.Context) (Result, error) {
	if !u.running.Load() {
		return Result{}, ErrNotRunning
	}
	reply := make(chan Result, 1)
	select {
	case u.requests <- reply:
	case <-ctx.Done():
		return Result{}, context.Cause(ctx)
	}
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return Result{}, context.Cause(ctx)
	}
}

// lock takes the directory's lock for the life of the process (a crash
// releases it).
func (u *Upgrader) lock() (func(), error) {
	return u.l.Lock()
}

// check runs one check and records its result.
func (u *Upgrader) check(ctx context.Context) Result {
	u.activity(Checking)
	r := u.checkOnce(ctx)
	r.At = u.d.Clock.Now()
	u.refresh()
	u.update(func(s *State) {
		s.Activity, s.LastCheck, s.Last = Idle, r.At, &r
		s.Checks++
	})
	level := slog.LevelInfo
	if r.Outcome == Failed || r.Outcome == RolledBack || r.Outcome == Refused {
		level = slog.LevelWarn
	}
	u.log.Log(ctx, level, "upgrade check", "outcome", r.Outcome, "version", r.Version, "detail", r.Detail)
	return r
}

func (u *Upgrader) checkOnce(ctx context.Context) Result {
	if err := u.recover(ctx); err != nil {
		return Result{Outcome: Failed, Detail: err.Error()}
	}
	v, err := u.d.Registrar.ZosVersion(ctx)
	if errors.Is(err, ErrNoVersion) {
		return Result{Outcome: NoVersion, Detail: ErrNoVersion.Error()}
	}
	if err != nil {
		return Result{Outcome: Failed, Detail: fmt.Sprintf("reading the registrar's version: %v", err)}
	}
	u.update(func(s *State) { s.Registrar = &v })
	p, err := u.l.ReadState()
	if err != nil {
		return Result{Outcome: Failed, Detail: err.Error()}
	}
	// recover switched away from a damaged generation: what runs now
	// reads, or is the bootstrap.
	run, _ := u.runningNow()
	r := Result{Version: v.Version}
	switch {
	case v.Serial < p.SeenSerial:
		r.Outcome = Skipped
		r.Detail = fmt.Sprintf("the registrar's version record %d (%s) is older than record %d seen before: ignored", v.Serial, v.Version, p.SeenSerial)
		return r
	case v.Serial > p.SeenSerial:
		p.SeenSerial = v.Serial
		if err := u.l.WriteState(p); err != nil {
			return Result{Outcome: Failed, Version: v.Version, Detail: fmt.Sprintf("writing the state: %v", err)}
		}
	}
	u.d.AtStep(StepChecked)
	switch {
	case v.Version == run.Version:
		r.Outcome, r.Detail = UpToDate, fmt.Sprintf("running %s, the registrar's version (record %d)", v.Version, v.Serial)
		return r
	case !v.SafeToUpgrade && !slices.Contains(v.TestFarms, u.cfg.Farm):
		r.Outcome = Waiting
		r.Detail = fmt.Sprintf("%s is not safe to upgrade yet and farm %d is not one of its test farms %v", v.Version, u.cfg.Farm, v.TestFarms)
		return r
	}
	if rb := p.RolledBack; rb != nil && rb.Serial == v.Serial && rb.Version == v.Version {
		r.Outcome = Skipped
		r.Detail = fmt.Sprintf("%s was %s under record %d (%s); waiting for the registrar's version record to change", v.Version, map[bool]string{true: "rolled back", false: "refused"}[rb.Switched], rb.Serial, rb.Reason)
		return r
	}
	return u.upgrade(ctx, v, p, run)
}

// upgrade installs v as a new generation and switches to it.
func (u *Upgrader) upgrade(ctx context.Context, v api.ZosVersion, p persisted, run Running) Result {
	r := Result{Version: v.Version}
	fail := func(format string, args ...any) Result {
		r.Outcome, r.Detail = Failed, fmt.Sprintf(format, args...)
		return r
	}
	u.activity(Installing)
	u.log.Info("upgrading", "from", run.Version, "to", v.Version, "serial", v.Serial, "safe_to_upgrade", v.SafeToUpgrade)
	ictx, cancel := context.WithTimeout(ctx, u.cfg.InstallTimeout)
	defer cancel()
	tag, signed, err := u.d.Packages.Release(ictx, u.cfg.Publisher, u.cfg.Repo, v.Version, u.cfg.PublisherKey)
	if err != nil {
		return fail("release %s/%s:%s: %v", u.cfg.Publisher, u.cfg.Repo, v.Version, err)
	}
	hash := signed.Hash()
	u.d.AtStep(StepVerified)
	if _, ok := tag.Zos(); !ok {
		// Nothing to run the modules from: no need to download the rest.
		return u.refuse(p, v, hash, fmt.Errorf("%w: the release has no %s package", ErrBadRelease, flist.RoleZos))
	}
	cur := run.Generation
	if err := u.l.Collect(cur, p.Previous); err != nil {
		return fail("removing old generations: %v", err)
	}
	gens, err := u.l.Generations()
	if err != nil {
		return fail("%v", err)
	}
	n := p.LastGeneration + 1
	if len(gens) > 0 {
		n = max(n, gens[len(gens)-1]+1)
	}
	m := Manifest{
		Format: ManifestFormat, Generation: n, Version: v.Version, Serial: v.Serial,
		Publisher: u.cfg.Publisher, Repo: u.cfg.Repo, Tag: tag.Name, Release: hash,
		Installed: u.d.Clock.Now().UTC(),
	}
	reused := 0
	proof := generation.Proof{Release: signed, Flists: map[flist.ID][]byte{}}
	for _, e := range tag.Entries {
		m.Packages = append(m.Packages, Package{Name: e.Name, Flist: e.Flist, Role: e.Role})
		if u.l.HasPackage(e.Flist) {
			reused++
		} else {
			if err := u.d.Packages.Install(ictx, e.Flist, u.l.PkgDir(e.Flist)); err != nil {
				return fail("installing package %s (flist %s) of %s: %v", e.Name, e.Flist, v.Version, err)
			}
			u.d.AtStep(StepPackage)
		}
		doc, err := u.d.Packages.Document(ictx, e.Flist)
		if err != nil {
			return fail("package %s (flist %s) of %s: its document: %v", e.Name, e.Flist, v.Version, err)
		}
		proof.Flists[e.Flist] = doc
	}
	if err := u.l.Build(m, proof); err != nil {
		if errors.Is(err, ErrBadRelease) {
			return u.refuse(p, v, hash, err)
		}
		return fail("building generation %d: %v", n, err)
	}
	u.d.AtStep(StepGeneration)
	// The bootstrap verifies the generation so before it starts its zosd:
	// check now that it will, while the node runs the old one.
	if _, err := u.l.Verify(n, u.cfg.PublisherKey); err != nil {
		if derr := u.l.Discard(GenerationsDir, strconv.FormatUint(n, 10)); derr != nil {
			u.log.Warn("removing a generation that does not verify", "generation", n, "err", derr)
		}
		return fail("%v", err)
	}
	if err := u.d.Probe.Probe(ctx, u.l.GenDir(n)); err != nil {
		if ctx.Err() != nil {
			return fail("%v", context.Cause(ctx))
		}
		if derr := u.l.Discard(GenerationsDir, strconv.FormatUint(n, 10)); derr != nil {
			u.log.Warn("removing a refused generation", "generation", n, "err", derr)
		}
		return u.refuse(p, v, hash, fmt.Errorf("%w: the zos program does not run: %w", ErrBadRelease, err))
	}
	u.d.AtStep(StepProbed)
	u.log.Info("generation built", "generation", n, "version", v.Version, "release", hash.String(), "packages", len(m.Packages), "reused", reused)

	p.LastGeneration = n
	p.Trial = &Trial{Generation: n, From: cur, Version: v.Version, Serial: v.Serial, Release: hash, Phase: PhaseSwitching, Started: u.d.Clock.Now().UTC()}
	if err := u.l.WriteState(p); err != nil {
		return fail("writing the state: %v", err)
	}
	u.d.AtStep(StepTrial)
	if err := u.l.SwitchTo(n); err != nil {
		// Whether the link changed or not, the next check's recover
		// finds out and finishes the switch or forgets it.
		return fail("switching to generation %d: %v", n, err)
	}
	u.d.AtStep(StepSwitched)
	u.log.Info("switched", "generation", n, "version", v.Version, "from", cur)
	u.refresh()
	r.Outcome, r.Detail = u.verify(ctx, &p)
	return r
}

// refuse records a release that cannot run here, so that it is not tried
// again under the same serial.
func (u *Upgrader) refuse(p persisted, v api.ZosVersion, hash flist.ID, why error) Result {
	p.RolledBack = &Rollback{Version: v.Version, Serial: v.Serial, Release: hash, Reason: why.Error(), At: u.d.Clock.Now().UTC()}
	if err := u.l.WriteState(p); err != nil {
		return Result{Outcome: Failed, Version: v.Version, Detail: fmt.Sprintf("%v; writing the state: %v", why, err)}
	}
	return Result{Outcome: Refused, Version: v.Version, Detail: fmt.Sprintf("%v; not tried again until the registrar's version record changes", why)}
}

// verify restarts the modules onto the trial's generation and waits for
// it to be healthy: then it commits the switch, else it switches back.
func (u *Upgrader) verify(ctx context.Context, p *persisted) (Outcome, string) {
	u.activity(Verifying)
	t := p.Trial
	if t.Attempts >= u.cfg.MaxTrials {
		return u.rollback(ctx, p, fmt.Sprintf("the health check was interrupted %d times (the upgrader or the node kept stopping)", t.Attempts))
	}
	t.Attempts++
	if err := u.l.WriteState(*p); err != nil {
		return Failed, fmt.Sprintf("writing the state: %v", err)
	}
	c := u.d.Clock
	since := c.Now()
	if err := u.d.Restarter.RestartModules(ctx); err != nil {
		if ctx.Err() != nil {
			return Failed, fmt.Sprintf("stopped while restarting the modules onto %s: %v", t.Version, context.Cause(ctx))
		}
		return u.rollback(ctx, p, fmt.Sprintf("restarting the modules: %v", err))
	}
	u.d.AtStep(StepRestarted)
	deadline := since.Add(u.cfg.HealthDeadline)
	for {
		err := u.d.Health.Healthy(ctx, since)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			// Not the generation's fault: the next run resumes the check.
			return Failed, fmt.Sprintf("stopped while checking %s: %v", t.Version, context.Cause(ctx))
		}
		if !c.Now().Before(deadline) {
			return u.rollback(ctx, p, fmt.Sprintf("%v: not healthy within %s: %v", ErrUnhealthy, u.cfg.HealthDeadline, err))
		}
		wait := min(u.cfg.HealthPoll, deadline.Sub(c.Now()))
		if clock.Sleep(ctx, c, wait) != nil {
			return Failed, fmt.Sprintf("stopped while checking %s: %v", t.Version, context.Cause(ctx))
		}
	}
	u.d.AtStep(StepHealthy)
	p.Previous, p.Trial = t.From, nil
	if err := u.l.WriteState(*p); err != nil {
		return Failed, fmt.Sprintf("confirming the switch: writing the state: %v", err)
	}
	u.d.AtStep(StepCommitted)
	u.log.Info("upgraded", "version", t.Version, "generation", t.Generation, "previous", t.From)
	if err := u.l.Collect(t.Generation, t.From); err != nil {
		u.log.Warn("removing old generations", "err", err)
	}
	return Upgraded, fmt.Sprintf("upgraded to %s (generation %d, release %s), healthy", t.Version, t.Generation, t.Release)
}

// rollback switches back to the trial's old generation, restarts the
// modules and records why. It is written down first, so an interrupted
// rollback is finished by the next run.
func (u *Upgrader) rollback(ctx context.Context, p *persisted, reason string) (Outcome, string) {
	u.activity(RollingBack)
	t := p.Trial
	if t.Phase != PhaseRollingBack {
		t.Phase, t.Reason = PhaseRollingBack, reason
		if err := u.l.WriteState(*p); err != nil {
			return Failed, fmt.Sprintf("%s; writing the state to roll back: %v", reason, err)
		}
		u.log.Warn("rolling back", "from", t.Version, "generation", t.Generation, "to", t.From, "reason", reason)
	}
	u.d.AtStep(StepRollingBack)
	cur, err := u.l.Current()
	if err != nil || cur != t.From {
		if err := u.l.SwitchTo(t.From); err != nil {
			return Failed, fmt.Sprintf("%s; switching back to generation %d: %v", t.Reason, t.From, err)
		}
	}
	u.d.AtStep(StepSwitchedBack)
	if err := u.d.Restarter.RestartModules(ctx); err != nil {
		// The link is back; the next run restarts the modules again.
		return Failed, fmt.Sprintf("%s; restarting the modules on generation %d: %v", t.Reason, t.From, err)
	}
	p.RolledBack = &Rollback{Version: t.Version, Serial: t.Serial, Release: t.Release, Switched: true, Reason: t.Reason, At: u.d.Clock.Now().UTC()}
	p.Trial = nil
	if err := u.l.WriteState(*p); err != nil {
		return Failed, fmt.Sprintf("%s; recording the rollback: %v", t.Reason, err)
	}
	u.d.AtStep(StepRolledBack)
	if err := u.l.Collect(t.From, p.Previous); err != nil {
		u.log.Warn("removing the rolled back generation", "err", err)
	}
	return RolledBack, fmt.Sprintf("rolled back from %s to generation %d: %s; not tried again until the registrar's version record changes", t.Version, t.From, t.Reason)
}

// recover cleans what an interrupted run left and finishes a switch in
// progress: one that had not happened is forgotten (the next check tries
// again), one that had is checked again, a rollback is completed.
func (u *Upgrader) recover(ctx context.Context) error {
	if err := u.l.Init(); err != nil {
		return err
	}
	removed, err := u.l.CleanLeftovers()
	if err != nil {
		return fmt.Errorf("cleaning the upgrade directory: %w", err)
	}
	if len(removed) > 0 {
		u.log.Info("removed what an interrupted upgrade left", "paths", removed)
	}
	p, err := u.l.ReadState()
	if err != nil {
		return err
	}
	cur, cerr := u.l.Current()
	if cerr == nil && cur != 0 {
		_, cerr = u.l.ReadManifest(cur)
	}
	t := p.Trial
	switch {
	case t == nil && cerr != nil:
		// Nothing the upgrader wrote leads here: go back to the
		// previous generation rather than run an unknown one.
		u.log.Error("the current generation is damaged; switching to the previous one", "err", cerr, "previous", p.Previous)
		if err := u.l.SwitchTo(p.Previous); err != nil {
			return fmt.Errorf("%w; switching to generation %d: %w", cerr, p.Previous, err)
		}
		if err := u.d.Restarter.RestartModules(ctx); err != nil {
			return fmt.Errorf("restarting the modules on generation %d: %w", p.Previous, err)
		}
		p.Previous = 0
		if err := u.l.WriteState(p); err != nil {
			return err
		}
	case t == nil:
	case t.Phase == PhaseSwitching && cerr == nil && cur == t.From:
		u.log.Info("an interrupted upgrade had not switched yet; it is tried again at the next check", "version", t.Version, "generation", t.Generation)
		p.Trial = nil
		if err := u.l.WriteState(p); err != nil {
			return err
		}
	case t.Phase == PhaseSwitching && cerr == nil && cur == t.Generation:
		u.log.Info("an interrupted upgrade had switched; checking the new generation again", "version", t.Version, "generation", t.Generation, "attempt", t.Attempts+1)
		if o, detail := u.verify(ctx, &p); o == Failed {
			return errors.New(detail)
		}
	default:
		// Rolling back, or a link that is neither generation: go back.
		reason := t.Reason
		if reason == "" {
			reason = fmt.Sprintf("the current link is neither generation %d nor %d", t.From, t.Generation)
		}
		if o, detail := u.rollback(ctx, &p, reason); o == Failed {
			return errors.New(detail)
		}
	}
	p, err = u.l.ReadState()
	if err != nil {
		return err
	}
	cur, err = u.l.Current()
	if err != nil {
		return err
	}
	if err := u.l.Collect(cur, p.Previous); err != nil {
		return fmt.Errorf("removing old generations: %w", err)
	}
	return nil
}

// runningNow describes the current generation.
func (u *Upgrader) runningNow() (Running, error) {
	return readRunning(u.l, u.cfg.BaseVersion)
}

// refresh updates the served state from the disk.
func (u *Upgrader) refresh() {
	run, err := u.runningNow()
	if err != nil {
		u.log.Warn("reading the current generation", "err", err)
	}
	p, err := u.l.ReadState()
	if err != nil {
		u.log.Warn("reading the upgrade state", "err", err)
		return
	}
	var prev *Running
	if run.Generation != 0 {
		pr := Running{Version: u.cfg.BaseVersion}
		if p.Previous != 0 {
			if m, err := u.l.ReadManifest(p.Previous); err == nil {
				pr = runningOf(m)
			}
		}
		prev = &pr
	}
	u.update(func(s *State) {
		s.Running, s.Previous, s.SeenSerial, s.Trial, s.RolledBack = run, prev, p.SeenSerial, p.Trial, p.RolledBack
	})
}

func runningOf(m Manifest) Running {
	return Running{Version: m.Version, Generation: m.Generation, Release: m.Release, Serial: m.Serial, Installed: m.Installed}
}

// readRunning describes l's current generation.
func readRunning(l layout, base string) (Running, error) {
	n, err := l.Current()
	if err != nil || n == 0 {
		return Running{Version: base}, err
	}
	m, err := l.ReadManifest(n)
	if err != nil {
		return Running{Version: base}, err
	}
	return runningOf(m), nil
}

// Installed reads what an upgrade directory says the node runs, without
// taking it: registrar_light reports its version and zosd runs its
// modules from it.
type Installed struct {
	// Dir is the upgrade directory.
	Dir string
	// Base is the bootstrap's version, used without a generation.
	Base string
}

// Running describes the current generation.
func (i Installed) Running() (Running, error) {
	return readRunning(layout{Root: i.Dir, AtStep: func(Step) {}}, i.Base)
}

// RunningVersion returns the version the node runs: the current
// generation's, or Base.
func (i Installed) RunningVersion(context.Context) (string, error) {
	r, err := i.Running()
	return r.Version, err
}

// ModuleProgram returns the zos program the modules run from — the
// current generation's zos/bin/zosd with every link resolved, so a
// process keeps its files when the link moves — and false when there is
// no generation (the node runs its bootstrap).
func (i Installed) ModuleProgram() (string, bool) {
	p, err := filepath.EvalSymlinks(filepath.Join(i.Dir, CurrentLink, ZosLink, filepath.FromSlash(ZosBinary)))
	if err != nil {
		return "", false
	}
	st, err := os.Stat(p)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return "", false
	}
	return p, true
}

// AbortTrial switches the node back from a generation it is trying, for
// the supervisor (zosd) when a module of that generation fails in a way
// that stops the whole node — before the upgrader could judge it. It does
// so only while the current generation is the one being tried: it writes
// the rollback down with reason, switches back, and returns the trial;
// the upgrader, when it runs again, restarts the modules and records the
// rollback. Without such a trial it changes nothing and returns nil. The
// upgrader must not be running (ErrLocked).
func AbortTrial(dir, reason string) (*Trial, error) {
	l := layout{Root: dir, AtStep: func(Step) {}}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	u := &Upgrader{l: l, cfg: Config{Dir: dir}}
	unlock, err := u.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := l.ReadState()
	if err != nil {
		return nil, err
	}
	t := p.Trial
	cur, err := l.Current()
	if t == nil || err != nil || cur != t.Generation || cur == t.From {
		return nil, nil
	}
	t.Phase, t.Reason = PhaseRollingBack, reason
	if err := l.WriteState(p); err != nil {
		return nil, fmt.Errorf("upgrade: writing the rollback down: %w", err)
	}
	if err := l.SwitchTo(t.From); err != nil {
		return nil, fmt.Errorf("upgrade: switching back to generation %d: %w", t.From, err)
	}
	return t, nil
}
