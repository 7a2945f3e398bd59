package upgrader

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/upgrader/upgradetest"
	"github.com/grid4/grid4/registrar/client"
)

// testModules are the modules of a test node: the release's zos program
// run as `zosd run <module>`.
var testModules = []string{"noded", "registrar_light"}

// nodeSpec is what a test node is made of; it crosses to the crash
// helper process as environment variables.
type nodeSpec struct {
	Dir          string // upgrade directory
	Marks        string // where the modules write which version runs them
	Bootstrap    string // the bootstrap's zosd (generation 0)
	Farm         uint64
	Base         string // the bootstrap's version
	HubURL       string
	RegistrarURL string
	PublisherKey []byte
}

func (s nodeSpec) env() []string {
	return []string{
		"UPGRADE_HELPER_DIR=" + s.Dir, "UPGRADE_HELPER_MARKS=" + s.Marks, "UPGRADE_HELPER_BOOTSTRAP=" + s.Bootstrap,
		fmt.Sprintf("UPGRADE_HELPER_FARM=%d", s.Farm), "UPGRADE_HELPER_BASE=" + s.Base,
		"UPGRADE_HELPER_HUB=" + s.HubURL, "UPGRADE_HELPER_REGISTRAR=" + s.RegistrarURL,
		"UPGRADE_HELPER_KEY=" + hex.EncodeToString(s.PublisherKey),
	}
}

func specFromEnv() (nodeSpec, error) {
	s := nodeSpec{
		Dir: os.Getenv("UPGRADE_HELPER_DIR"), Marks: os.Getenv("UPGRADE_HELPER_MARKS"), Bootstrap: os.Getenv("UPGRADE_HELPER_BOOTSTRAP"),
		Base: os.Getenv("UPGRADE_HELPER_BASE"), HubURL: os.Getenv("UPGRADE_HELPER_HUB"), RegistrarURL: os.Getenv("UPGRADE_HELPER_REGISTRAR"),
	}
	if _, err := fmt.Sscan(os.Getenv("UPGRADE_HELPER_FARM"), &s.Farm); err != nil {
		return s, err
	}
	k, err := hex.DecodeString(os.Getenv("UPGRADE_HELPER_KEY"))
	s.PublisherKey = k
	return s, err
}

// newSpec lays out a node in a fresh directory, its bootstrap at base.
func newSpec(t testing.TB, g *upgradetest.Grid, farm uint64, base string) nodeSpec {
	t.Helper()
	root := t.TempDir()
	s := specAt(root, g, farm, base)
	upgradetest.Write(t, filepath.Join(root, "bootstrap"), upgradetest.Tree{"zosd": upgradetest.ZosScript(base)})
	if err := os.Mkdir(s.Marks, 0o755); err != nil {
		t.Fatal(err)
	}
	return s
}

// specAt is the spec of the node laid out under root.
func specAt(root string, g *upgradetest.Grid, farm uint64, base string) nodeSpec {
	return nodeSpec{
		Dir: filepath.Join(root, "upgrade"), Marks: filepath.Join(root, "marks"), Bootstrap: filepath.Join(root, "bootstrap", "zosd"),
		Farm: farm, Base: base, HubURL: g.HubURL, RegistrarURL: g.RegistrarURL, PublisherKey: g.PublisherKey,
	}
}

// options tune a test node.
type options struct {
	registrar VersionSource // nil: the grid's registrar
	atStep    func(Step)
	deadline  time.Duration
	stable    time.Duration
	logTo     *syncBuffer
}

// testNode is a node as far as upgrades go: a supervisor running the
// modules from the current generation (real processes), and an upgrader
// with a real flistd against the hub and the registrar.
type testNode struct {
	spec nodeSpec
	sup  *supervisor.Supervisor
	up   *Upgrader
	log  *syncBuffer
	stop func()
}

// startNode starts the node's supervisor and upgrader; they stop when
// the test ends (or stop is called).
func startNode(t testing.TB, s nodeSpec, o options) *testNode {
	t.Helper()
	n, err := buildNode(s, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

func buildNode(s nodeSpec, o options) (*testNode, error) {
	if o.logTo == nil {
		o.logTo = &syncBuffer{}
	}
	log := slog.New(slog.NewTextHandler(o.logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	installed := Installed{Dir: s.Dir, Base: s.Base}
	var specs []supervisor.Spec
	for _, m := range testModules {
		specs = append(specs, supervisor.Spec{Name: m, Start: func(ctx context.Context) (supervisor.Process, error) {
			prog, ok := installed.ModuleProgram()
			if !ok {
				prog = s.Bootstrap
			}
			return supervisor.Exec{
				Path: prog, Args: []string{"run", m}, Lifeline: true,
				Env:    append(os.Environ(), "UPGRADETEST_MARKS="+s.Marks),
				Stderr: o.logTo,
			}.Start(ctx)
		}})
	}
	sup := supervisor.New(supervisor.Config{RestartMin: 50 * time.Millisecond, RestartMax: 200 * time.Millisecond, StopTimeout: 2 * time.Second}, specs, nil, log.With("module", "supervisor"))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sup.Run(ctx) })

	reg := o.registrar
	if reg == nil {
		c, err := client.New(s.RegistrarURL, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
			client.WithRetry(client.RetryPolicy{MaxAttempts: 1}))
		if err != nil {
			cancel()
			return nil, err
		}
		reg = c
	}
	m, err := flistd.New(flistd.Config{HubURL: s.HubURL, CacheDir: filepath.Join(s.Dir, CacheDir), RetryDelay: time.Millisecond, Attempts: 2, Logger: log.With("module", "flistd")}, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	stable, deadline := o.stable, o.deadline
	if stable == 0 {
		stable = 150 * time.Millisecond
	}
	if deadline == 0 {
		deadline = 2 * time.Second
	}
	up, err := New(Config{
		Dir: s.Dir, Farm: s.Farm, BaseVersion: s.Base, PublisherKey: s.PublisherKey,
		FirstCheck: time.Hour, Interval: time.Hour, HealthDeadline: deadline, HealthPoll: 20 * time.Millisecond,
	}, Deps{
		Registrar: reg,
		Packages:  FlistdPackages{Manager: m},
		Restarter: RestarterFunc(func(ctx context.Context) error { return sup.Restart(ctx) }),
		Health:    ModulesHealth{Modules: sup, Stable: stable},
		Logger:    log.With("module", "upgrader"),
		AtStep:    o.atStep,
	})
	if err != nil {
		cancel()
		m.Close()
		return nil, err
	}
	done := make(chan error, 1)
	wg.Go(func() { done <- up.Run(ctx) })
	var once sync.Once
	n := &testNode{spec: s, sup: sup, up: up, log: o.logTo}
	n.stop = func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			m.Close()
		})
	}
	// Wait for Run to take the directory (or fail).
	for !up.running.Load() {
		select {
		case err := <-done:
			n.stop()
			return nil, fmt.Errorf("upgrader stopped: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	return n, nil
}

// check makes the node's upgrader check now.
func (n *testNode) check(t testing.TB) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := n.up.CheckNow(ctx)
	if err != nil {
		t.Fatalf("CheckNow: %v\nlog:\n%s", err, n.log)
	}
	return r
}

// expect checks the outcome of a check.
func (n *testNode) expect(t testing.TB, want Outcome, detail string) Result {
	t.Helper()
	r := n.check(t)
	if r.Outcome != want || !strings.Contains(r.Detail, detail) {
		t.Fatalf("check: %s %q; want %s with %q\nlog:\n%s", r.Outcome, r.Detail, want, detail, n.log)
	}
	return r
}

func (n *testNode) state(t testing.TB) State {
	t.Helper()
	s, _ := n.up.State(context.Background())
	return s
}

// marks returns which version each module wrote it runs.
func (n *testNode) marks(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range testModules {
		b, err := os.ReadFile(filepath.Join(n.spec.Marks, m))
		if err == nil {
			out[m] = strings.TrimSpace(string(b))
		}
	}
	return out
}

// clearMarks forgets the marks, so the next ones come from new starts.
func (n *testNode) clearMarks(t testing.TB) {
	t.Helper()
	for _, m := range testModules {
		_ = os.Remove(filepath.Join(n.spec.Marks, m))
	}
}

// waitModules waits until every module runs version (by its mark) and is
// running.
func (n *testNode) waitModules(t testing.TB, version string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		marks := n.marks(t)
		ok := len(marks) == len(testModules)
		for _, v := range marks {
			ok = ok && v == version
		}
		sts, _ := n.sup.Statuses(context.Background())
		for _, s := range sts {
			ok = ok && s.State == supervisor.Running
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("modules do not run %s: marks %v, states %+v\nlog:\n%s", version, marks, sts, n.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a goroutine-safe bytes.Buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// release publishes version: the containerd dependency (the same tree
// every time: one flist, published once) and a zos package whose program
// is zosd.
func release(t testing.TB, g *upgradetest.Grid, version, zosd string) flist.ID {
	t.Helper()
	hash, _ := g.Release(t, version, map[string]upgradetest.Tree{"containerd": containerd()}, []string{"containerd"}, upgradetest.Tree{
		"bin/zosd": zosd, "etc/zos.conf": "version = " + version + "\n", "lib/": "",
	})
	return hash
}

func containerd() upgradetest.Tree {
	return upgradetest.Tree{
		"bin/containerd":         "#!/bin/sh\necho containerd\n",
		"lib/libcontainerd.so":   strings.Repeat("a shared library of 1.6 MB in two blocks\n", 40_000),
		"lib/libcontainerd.so.1": "->libcontainerd.so",
	}
}

// checkGeneration checks that dir's current generation is complete and
// holds version: its manifest, and every package with its files.
func checkGeneration(t testing.TB, dir string, version string) Running {
	t.Helper()
	l := layout{Root: dir, AtStep: func(Step) {}}
	run, err := readRunning(l, "v4.1.0")
	if err != nil {
		t.Fatalf("current generation: %v", err)
	}
	if run.Version != version {
		t.Fatalf("running %s (generation %d), want %s", run.Version, run.Generation, version)
	}
	if run.Generation == 0 {
		return run
	}
	m, err := l.ReadManifest(run.Generation)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Packages {
		link := filepath.Join(dir, CurrentLink, PackageLinks, p.Name)
		target, err := filepath.EvalSymlinks(link)
		if err != nil || target != l.PkgDir(p.Flist) {
			t.Fatalf("package %s: %s -> %s (%v), want %s", p.Name, link, target, err, l.PkgDir(p.Flist))
		}
	}
	conf, err := os.ReadFile(filepath.Join(dir, CurrentLink, ZosLink, "etc", "zos.conf"))
	if err != nil || string(conf) != "version = "+version+"\n" {
		t.Fatalf("zos/etc/zos.conf of %s: %q %v", version, conf, err)
	}
	if _, err := os.Stat(filepath.Join(dir, CurrentLink, PackageLinks, "containerd", "lib", "libcontainerd.so.1")); err != nil {
		t.Fatalf("containerd: %v", err)
	}
	return run
}

// leftovers lists the temporary names in an upgrade directory.
func leftovers(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"", GenerationsDir, PackagesDir} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") || strings.Contains(e.Name(), ".tmp") {
				out = append(out, filepath.Join(sub, e.Name()))
			}
		}
	}
	return out
}

// generationsOnDisk lists the generation directories.
func generationsOnDisk(t testing.TB, dir string) []uint64 {
	t.Helper()
	gens, err := layout{Root: dir}.Generations()
	if err != nil {
		t.Fatal(err)
	}
	return gens
}
