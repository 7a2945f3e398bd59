package upgrader

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/upgrader/upgradetest"
	"github.com/grid4/grid4/registrar/api"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeRegistrar serves a version record and records when it was asked.
type fakeRegistrar struct {
	mu    sync.Mutex
	v     api.ZosVersion
	err   error
	calls []time.Time
	clock clock.Clock
}

func (f *fakeRegistrar) ZosVersion(context.Context) (api.ZosVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, f.clock.Now())
	return f.v, f.err
}

func (f *fakeRegistrar) set(v api.ZosVersion) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.v = v
}

func (f *fakeRegistrar) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// fakePackages publishes, for each version, a release of one package
// whose bin/zosd is the given script: a real flist (its blocks in a
// directory store) in a tag signed with key; Install materialises it.
type fakePackages struct {
	key   keys.KeyPair
	store *flist.DirStore
	tmp   string

	mu       sync.Mutex
	tags     map[string]flist.SignedTag // version → release
	byID     map[flist.ID]*flist.Flist
	installs int
}

func newFakePackages(t testing.TB) *fakePackages {
	t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	store, err := flist.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &fakePackages{key: kp, store: store, tmp: t.TempDir(), tags: map[string]flist.SignedTag{}, byID: map[flist.ID]*flist.Flist{}}
}

func (f *fakePackages) publish(version, script string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Join(f.tmp, version+"-"+strconv.Itoa(len(f.byID)))
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "zosd"), []byte(script), 0o755); err != nil {
		panic(err)
	}
	fl, err := flist.Build(context.Background(), dir, f.store)
	if err != nil {
		panic(err)
	}
	id := fl.ID()
	f.byID[id] = fl
	st, err := flist.SignTag(&flist.Tag{Publisher: DefaultPublisher, Repo: DefaultRepo, Name: version, Entries: []flist.TagEntry{{Name: "zos", Flist: id, Role: flist.RoleZos}}}, f.key)
	if err != nil {
		panic(err)
	}
	f.tags[version] = st
}

func (f *fakePackages) Release(_ context.Context, publisher, repo, tag string, _ []byte) (*flist.Tag, flist.SignedTag, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.tags[tag]
	if !ok {
		return nil, flist.SignedTag{}, errors.New("no such tag")
	}
	t, err := st.Tag()
	return t, st, err
}

func (f *fakePackages) Document(_ context.Context, id flist.ID) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.byID[id]
	if !ok {
		return nil, errors.New("no such flist")
	}
	return fl.Encode(), nil
}

func (f *fakePackages) Install(ctx context.Context, id flist.ID, dir string) error {
	f.mu.Lock()
	fl := f.byID[id]
	f.installs++
	f.mu.Unlock()
	return flist.Materialize(ctx, fl, dir, f.store)
}

// fakeNode counts restarts and says what its health is.
type fakeNode struct {
	mu       sync.Mutex
	restarts int
	restart  error
	health   error
}

func (f *fakeNode) RestartModules(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts++
	return f.restart
}

func (f *fakeNode) Healthy(context.Context, time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.health
}

func (f *fakeNode) set(restart, health error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restart, f.health = restart, health
}

// fixture is an upgrader with fakes around it, on the real clock unless
// given one.
type fixture struct {
	t    *testing.T
	dir  string
	reg  *fakeRegistrar
	pkgs *fakePackages
	node *fakeNode
	up   *Upgrader
}

func newFixture(t *testing.T, c clock.Clock, tweak func(*Config, *Deps)) *fixture {
	t.Helper()
	if c == nil {
		c = clock.Real{}
	}
	f := &fixture{t: t, dir: filepath.Join(t.TempDir(), "upgrade"), reg: &fakeRegistrar{clock: c}, pkgs: newFakePackages(t), node: &fakeNode{}}
	cfg := Config{Dir: f.dir, Farm: 7, BaseVersion: "v4.1.0", PublisherKey: f.pkgs.key.Public().Key, FirstCheck: time.Hour,
		HealthDeadline: 200 * time.Millisecond, HealthPoll: 10 * time.Millisecond}
	d := Deps{Registrar: f.reg, Packages: f.pkgs, Restarter: f.node, Health: f.node, Clock: c}
	if tweak != nil {
		tweak(&cfg, &d)
	}
	up, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	f.up = up
	return f
}

// run runs the upgrader until the test ends.
func (f *fixture) run() {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.up.Run(ctx) }()
	f.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("Run: %v", err)
		}
	})
	for !f.up.running.Load() {
		time.Sleep(time.Millisecond)
	}
}

func (f *fixture) expect(want Outcome, detail string) Result {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := f.up.CheckNow(ctx)
	if err != nil || r.Outcome != want || !strings.Contains(r.Detail, detail) {
		f.t.Fatalf("check: %s %q (%v); want %s with %q", r.Outcome, r.Detail, err, want, detail)
	}
	return r
}

func (f *fixture) persisted() persisted {
	f.t.Helper()
	p, err := layout{Root: f.dir}.ReadState()
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// TestSchedule: the registrar is asked at start, then every 60 minutes
// plus the jitter drawn each time (up to 10 minutes), on the clock.
func TestSchedule(t *testing.T) {
	c := clock.NewFake(t0)
	jitters := []time.Duration{3 * time.Minute, 10 * time.Minute, 0, 7*time.Minute + 30*time.Second, time.Second}
	var mu sync.Mutex
	var limits []time.Duration
	f := newFixture(t, c, func(cfg *Config, d *Deps) {
		cfg.FirstCheck, cfg.Interval, cfg.MaxJitter = 0, 0, 0 // the defaults: 60 and 10 minutes
		d.Jitter = func(limit time.Duration) time.Duration {
			mu.Lock()
			defer mu.Unlock()
			limits = append(limits, limit)
			j := jitters[0]
			jitters = jitters[1:]
			return j
		}
	})
	f.reg.set(api.ZosVersion{Version: "v4.1.0", Serial: 1})
	f.run()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	want := []time.Time{t0}
	for i, j := range []time.Duration{3 * time.Minute, 10 * time.Minute, 0, 7*time.Minute + 30*time.Second} {
		if err := c.WaitTimers(ctx, 1); err != nil {
			t.Fatal(err)
		}
		next := want[i].Add(time.Hour + j)
		st, _ := f.up.State(ctx)
		if !st.NextCheck.Equal(next) {
			t.Errorf("next check %v, want %v", st.NextCheck, next)
		}
		c.AdvanceToNext()
		want = append(want, next)
	}
	if err := c.WaitTimers(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := f.reg.times(); !slices.Equal(got, want) {
		t.Errorf("checks at %v, want %v", got, want)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, l := range limits {
		if l != 10*time.Minute {
			t.Errorf("jitter drawn up to %v, want 10m", l)
		}
	}
	st, _ := f.up.State(ctx)
	if st.Checks != 5 || st.Last == nil || st.Last.Outcome != UpToDate {
		t.Errorf("state: %+v", st)
	}

	// The default jitter stays within [0, max].
	d, _ := Deps{Registrar: f.reg, Packages: f.pkgs, Restarter: f.node, Health: f.node}.withDefaults()
	for range 1000 {
		if j := d.Jitter(10 * time.Minute); j < 0 || j > 10*time.Minute {
			t.Fatalf("jitter %v", j)
		}
	}
}

// TestPolicy: who takes which version record, when.
func TestPolicy(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.pkgs.publish("v4.1.1", upgradetest.ZosScript("v4.1.1"))
	f.pkgs.publish("v4.1.2", upgradetest.ZosScript("v4.1.2"))
	f.pkgs.publish("v4.1.3", upgradetest.ZosScript("v4.1.3"))
	f.run()

	f.reg.err = errors.New("connection refused")
	f.expect(Failed, "reading the registrar's version: connection refused")
	f.reg.err = fmt.Errorf("GET /zos/versions/current: %w", ErrNoVersion)
	f.expect(NoVersion, "the registrar has no ZOS version set")
	f.reg.err = nil

	f.reg.set(api.ZosVersion{Version: "v4.1.0", Serial: 1})
	f.expect(UpToDate, "running v4.1.0")

	// Not safe, other test farms: wait. Our farm a test farm: go.
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 2, TestFarms: []uint64{3, 4}})
	f.expect(Waiting, "farm 7 is not one of its test farms [3 4]")
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 3, TestFarms: []uint64{3, 7}})
	f.expect(Upgraded, "upgraded to v4.1.1 (generation 1")
	if f.node.restarts != 1 {
		t.Errorf("%d restarts", f.node.restarts)
	}
	// Safe to upgrade, any farm.
	f.reg.set(api.ZosVersion{Version: "v4.1.2", Serial: 4, SafeToUpgrade: true})
	f.expect(Upgraded, "upgraded to v4.1.2 (generation 2")

	// An older record (a registrar restored from a backup) is ignored,
	// even for a version the node never ran.
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 3, SafeToUpgrade: true})
	f.expect(Skipped, "record 3 (v4.1.1) is older than record 4 seen before: ignored")
	f.reg.set(api.ZosVersion{Version: "v4.1.3", Serial: 2, SafeToUpgrade: true})
	f.expect(Skipped, "is older than record 4")
	if p := f.persisted(); p.SeenSerial != 4 {
		t.Errorf("seen serial %d", p.SeenSerial)
	}

	// Not healthy: rolled back, and not tried again under that serial;
	// the same version under a new serial is.
	f.node.set(nil, errors.New("powerd: disk full"))
	f.reg.set(api.ZosVersion{Version: "v4.1.3", Serial: 5, SafeToUpgrade: true})
	f.expect(RolledBack, "not healthy within 200ms: powerd: disk full")
	f.expect(Skipped, "v4.1.3 was rolled back under record 5")
	st, _ := f.up.State(context.Background())
	if st.Running.Version != "v4.1.2" || st.RolledBack == nil || st.RolledBack.Serial != 5 || st.Previous == nil || st.Previous.Version != "v4.1.1" {
		t.Errorf("state after the rollback: %+v", st)
	}
	// The modules cannot be restarted, not even back on the old
	// generation: the link is back, and the next check restarts them and
	// records the rollback.
	f.node.set(errors.New("bus: no answer"), nil)
	f.reg.set(api.ZosVersion{Version: "v4.1.3", Serial: 6, SafeToUpgrade: true, TestFarms: []uint64{1}})
	f.expect(Failed, "restarting the modules: bus: no answer; restarting the modules on generation 2: bus: no answer")
	if p := f.persisted(); p.Trial == nil || p.Trial.Phase != PhaseRollingBack {
		t.Errorf("trial: %+v", p.Trial)
	}
	f.node.set(nil, nil)
	f.expect(Skipped, "v4.1.3 was rolled back under record 6 (restarting the modules: bus: no answer)")
	f.reg.set(api.ZosVersion{Version: "v4.1.3", Serial: 7, SafeToUpgrade: true})
	f.expect(Upgraded, "upgraded to v4.1.3")
	// Going back is a version like any other (a newer record).
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 8, SafeToUpgrade: true})
	f.expect(Upgraded, "upgraded to v4.1.1")
	// A version the hub does not have: retried at every check.
	f.reg.set(api.ZosVersion{Version: "v9.9.9", Serial: 9, SafeToUpgrade: true})
	f.expect(Failed, "release tf/zos:v9.9.9: no such tag")
	f.expect(Failed, "no such tag")
	if gens := generationsOnDisk(t, f.dir); len(gens) != 2 {
		t.Errorf("generations kept: %v", gens)
	}
}

// TestMaxTrials: a switch whose health check keeps being interrupted (the
// upgrader, or the node, dies during it) is rolled back after MaxTrials.
func TestMaxTrials(t *testing.T) {
	f := newFixture(t, nil, func(cfg *Config, _ *Deps) { cfg.MaxTrials = 2 })
	f.pkgs.publish("v4.1.1", upgradetest.ZosScript("v4.1.1"))
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 1, SafeToUpgrade: true})
	f.run()
	f.expect(Upgraded, "v4.1.1")
	// Pretend generation 1 is a switch in its second interrupted check.
	l := layout{Root: f.dir, AtStep: func(Step) {}}
	p := f.persisted()
	p.Trial = &Trial{Generation: 1, From: 0, Version: "v4.1.1", Serial: 1, Phase: PhaseSwitching, Attempts: 2}
	if err := l.WriteState(p); err != nil {
		t.Fatal(err)
	}
	f.reg.set(api.ZosVersion{Version: "v4.1.0", Serial: 2, SafeToUpgrade: true})
	f.expect(UpToDate, "running v4.1.0")
	p = f.persisted()
	if p.Trial != nil || p.RolledBack == nil || !strings.Contains(p.RolledBack.Reason, "the health check was interrupted 2 times") {
		t.Errorf("state: %+v %+v", p, p.RolledBack)
	}
	if n, _ := l.Current(); n != 0 {
		t.Errorf("current generation %d", n)
	}
}

// TestRefusedBinary: a zos program that does not run is refused before
// anything is switched or restarted.
func TestRefusedBinary(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.pkgs.publish("v4.1.1", upgradetest.BrokenBinaryScript)
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 1, SafeToUpgrade: true})
	f.run()
	f.expect(Refused, "exit status 126: exec format error")
	f.expect(Skipped, "v4.1.1 was refused under record 1")
	if f.node.restarts != 0 {
		t.Error("modules restarted")
	}
	if gens := generationsOnDisk(t, f.dir); len(gens) != 0 {
		t.Errorf("generations: %v", gens)
	}
}

// noZos is a Packages whose releases have no zos package.
type noZos struct{ *fakePackages }

func (n noZos) Release(ctx context.Context, publisher, repo, tag string, key []byte) (*flist.Tag, flist.SignedTag, error) {
	t, h, err := n.fakePackages.Release(ctx, publisher, repo, tag, key)
	if err == nil {
		t.Entries[0].Role = flist.RoleDependency
	}
	return t, h, err
}

// TestNoZosPackage: a release without a zos package is refused before
// anything is downloaded.
func TestNoZosPackage(t *testing.T) {
	var pk *fakePackages
	f := newFixture(t, nil, func(_ *Config, d *Deps) { pk = d.Packages.(*fakePackages); d.Packages = noZos{pk} })
	pk.publish("v4.1.1", upgradetest.ZosScript("v4.1.1"))
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 1, SafeToUpgrade: true})
	f.run()
	f.expect(Refused, "bad release: the release has no zos package")
	if pk.installs != 0 {
		t.Errorf("%d packages installed", pk.installs)
	}
}

// TestDamaged: what the upgrader makes of a directory it did not leave so.
func TestDamaged(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.pkgs.publish("v4.1.1", upgradetest.ZosScript("v4.1.1"))
	f.pkgs.publish("v4.1.2", upgradetest.ZosScript("v4.1.2"))
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 1, SafeToUpgrade: true})
	f.run()
	f.expect(Upgraded, "v4.1.1")
	f.reg.set(api.ZosVersion{Version: "v4.1.2", Serial: 2, SafeToUpgrade: true})
	f.expect(Upgraded, "v4.1.2")

	// Leftovers of every kind, a read-only half-materialised tree among
	// them.
	half := filepath.Join(f.dir, PackagesDir, ".0123.flist-XYZ")
	for _, d := range []string{filepath.Join(half, "bin"), filepath.Join(f.dir, GenerationsDir, ".build-9-ABC", "pkg"), filepath.Join(f.dir, GenerationsDir, ".trash-1-DEF")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(half, "bin"), 0o555)
	os.Chmod(half, 0o555)
	os.WriteFile(filepath.Join(f.dir, StateFile+".tmp-Q"), []byte("{"), 0o644)
	os.Symlink("generations/1", filepath.Join(f.dir, ".current-R"))
	f.expect(UpToDate, "v4.1.2")
	if l := leftovers(t, f.dir); len(l) != 0 {
		t.Errorf("leftovers: %v", l)
	}

	// A current link to a generation that is not there: back to the
	// previous one.
	link := filepath.Join(f.dir, CurrentLink)
	os.Remove(link)
	os.Symlink("generations/77", link)
	f.expect(Upgraded, "upgraded to v4.1.2")
	if p := f.persisted(); p.Previous != 1 {
		t.Errorf("previous %d", p.Previous)
	}

	// A state file that is not one: every check fails, nothing changes.
	os.WriteFile(filepath.Join(f.dir, StateFile), []byte("garbage"), 0o644)
	f.expect(Failed, "upgrade directory damaged: state.json is not a grid4-upgrade-state/1 file")
	checkCurrent := func() uint64 {
		n, _ := layout{Root: f.dir}.Current()
		return n
	}
	if n := checkCurrent(); n != 3 {
		t.Errorf("current %d", n)
	}
}

// TestLocked: one upgrader per directory; CheckNow needs Run.
func TestLocked(t *testing.T) {
	f := newFixture(t, nil, nil)
	if _, err := f.up.CheckNow(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Errorf("CheckNow without Run: %v", err)
	}
	f.run()
	other, err := New(f.up.cfg, f.up.d)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Run(context.Background()); !errors.Is(err, ErrLocked) {
		t.Errorf("second Run: %v", err)
	}
}

// TestConfig: what New refuses.
func TestConfig(t *testing.T) {
	ok := Config{Dir: "x", Farm: 1, PublisherKey: make([]byte, 32)}
	deps := Deps{Registrar: &fakeRegistrar{}, Packages: newFakePackages(t), Restarter: &fakeNode{}, Health: &fakeNode{}}
	for _, c := range []struct {
		tweak func(*Config, *Deps)
		want  string
	}{
		{func(c *Config, _ *Deps) { c.Dir = "" }, "Dir is required"},
		{func(c *Config, _ *Deps) { c.Farm = 0 }, "Farm is required"},
		{func(c *Config, _ *Deps) { c.PublisherKey = nil }, "PublisherKey is 0 bytes"},
		{func(c *Config, _ *Deps) { c.Repo = "a/b" }, "invalid"},
		{func(c *Config, _ *Deps) { c.HealthDeadline = -1 }, "negative"},
		{func(_ *Config, d *Deps) { d.Health = nil }, "Health are required"},
	} {
		cfg, d := ok, deps
		c.tweak(&cfg, &d)
		if _, err := New(cfg, d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.want, err)
		}
	}
	u, err := New(ok, deps)
	if err != nil {
		t.Fatal(err)
	}
	if u.cfg.Interval != time.Hour || u.cfg.MaxJitter != 10*time.Minute || u.cfg.Publisher != "tf" || u.cfg.Repo != "zos" {
		t.Errorf("defaults: %+v", u.cfg)
	}
}

type statuses []supervisor.Status

func (s statuses) Statuses(context.Context) ([]supervisor.Status, error) { return s, nil }

type powerFunc func() (powerd.Health, error)

func (p powerFunc) Health(context.Context) (powerd.Health, error) { return p() }

// TestModulesHealth: the reasons a generation is not healthy.
func TestModulesHealth(t *testing.T) {
	c := clock.NewFake(t0.Add(time.Hour))
	since := t0
	h := ModulesHealth{Ignore: []string{"redis", "upgrader"}, Stable: 30 * time.Second, Clock: c}
	for _, tc := range []struct {
		mods  statuses
		power powerFunc
		want  string
	}{
		{statuses{{Name: "redis", State: supervisor.Running, Since: t0.Add(-time.Hour)}, {Name: "noded", State: supervisor.Running, Since: t0.Add(time.Minute)}}, nil, ""},
		{statuses{{Name: "noded", State: supervisor.Restarting, LastExit: "exit status 1: boom"}}, nil, "noded is restarting (last exit: exit status 1: boom)"},
		{statuses{{Name: "noded", State: supervisor.Running, Since: t0.Add(-time.Second)}}, nil, "noded was not restarted onto the new generation"},
		{statuses{{Name: "noded", State: supervisor.Running, Since: t0.Add(time.Hour - 10*time.Second)}}, nil, "noded running for 10s of 30s"},
		{statuses{{Name: "noded", State: supervisor.Running, Since: t0}}, func() (powerd.Health, error) {
			return powerd.Health{Checks: []powerd.CheckResult{{Name: "disk_space", Reason: "5 MiB free"}}}, nil
		}, "node unhealthy: disk_space: 5 MiB free"},
		{statuses{}, func() (powerd.Health, error) { return powerd.Health{}, errors.New("no answer") }, "no health from powerd: no answer"},
	} {
		h.Modules = tc.mods
		h.Power = nil
		if tc.power != nil {
			h.Power = tc.power
		}
		err := h.Healthy(context.Background(), since)
		if (tc.want == "") != (err == nil) || err != nil && err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.mods, err, tc.want)
		}
	}
}

// TestAbortTrial: zosd switches back from a generation on trial (and only
// then, and only once the upgrader stopped); the upgrader then finishes
// the rollback.
func TestAbortTrial(t *testing.T) {
	f := newFixture(t, nil, nil)
	if tr, err := AbortTrial(f.dir, "x"); tr != nil || err != nil {
		t.Fatalf("AbortTrial of a directory that does not exist: %v %v", tr, err)
	}
	f.pkgs.publish("v4.1.1", upgradetest.ZosScript("v4.1.1"))
	f.pkgs.publish("v4.1.2", upgradetest.ZosScript("v4.1.2"))
	f.reg.set(api.ZosVersion{Version: "v4.1.1", Serial: 1, SafeToUpgrade: true})
	// The node stops (its module failed fatally) while v4.1.2 is checked.
	stopped := make(chan struct{})
	f.node.health = errors.New("starting")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.up.Run(ctx) }()
	for !f.up.running.Load() {
		time.Sleep(time.Millisecond)
	}
	f.node.set(nil, nil)
	f.expect(Upgraded, "v4.1.1")
	if tr, err := AbortTrial(f.dir, "x"); !errors.Is(err, ErrLocked) || tr != nil {
		t.Fatalf("AbortTrial while the upgrader runs: %v %v", tr, err)
	}
	if tr, err := AbortTrial(filepath.Dir(f.dir), "x"); tr != nil || err != nil {
		t.Fatalf("AbortTrial without a trial: %v %v", tr, err)
	}
	f.node.set(nil, errors.New("identityd is failed"))
	f.reg.set(api.ZosVersion{Version: "v4.1.2", Serial: 2, SafeToUpgrade: true})
	go func() {
		defer close(stopped)
		for {
			if p, _ := (layout{Root: f.dir}).ReadState(); p.Trial != nil && p.Trial.Attempts > 0 {
				cancel() // zosd stops the upgrader with the node
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	r, _ := f.up.CheckNow(cctx)
	ccancel()
	<-stopped
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.Outcome != Failed || !strings.Contains(r.Detail, "stopped while checking v4.1.2") {
		t.Errorf("check interrupted by the stop: %+v", r)
	}
	tr, err := AbortTrial(f.dir, "identityd failed fatally on the new generation")
	if err != nil || tr == nil || tr.Version != "v4.1.2" || tr.From != 1 {
		t.Fatalf("AbortTrial: %+v %v", tr, err)
	}
	if n, _ := (layout{Root: f.dir}).Current(); n != 1 {
		t.Errorf("current after AbortTrial: %d", n)
	}
	if tr, err := AbortTrial(f.dir, "again"); tr != nil || err != nil {
		t.Errorf("AbortTrial on the old generation: %+v %v", tr, err)
	}
	// The upgrader starts again: restarts the modules, records why.
	f.node.set(nil, nil)
	f.run()
	f.expect(Skipped, "v4.1.2 was rolled back under record 2 (identityd failed fatally on the new generation)")
}
