package bootstrap

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/upgrader/generation"
)

// zosScript is a stand-in zosd: it writes its version to $MARKS/running
// and beats every 20 ms on the bootstrap's descriptor; it hands over
// (exits ExitHandover) once $MARKS/handover-<version> appears. With
// mode "exit" it fails at once, with "hang" it never beats, with
// "handover" it asks for a handover at once, without a switch.
func zosScript(version, mode string) string {
	return fmt.Sprintf(`#!/bin/sh
case "$1" in version) echo "zosd %[1]s"; exit 0 ;; esac
echo %[1]s "$ZOSD_GENERATION" > "$MARKS/running"
case %[2]q in
exit) echo "zosd %[1]s: cannot start: boom" >&2; exit 1 ;;
handover) exit %[3]d ;;
hang) exec sleep 3600 ;;
esac
while :; do
	if [ -e "$MARKS/handover-%[1]s" ]; then rm -f "$MARKS/handover-%[1]s"; exit %[3]d; fi
	printf . >&3 || exit 9
	sleep 0.02
done
`, version, mode, ExitHandover)
}

// node is an upgrade directory with generations built as the upgrader
// builds them (signed release, materialised packages), offline.
type node struct {
	t     *testing.T
	data  string
	marks string
	dir   generation.Dir
	key   keys.KeyPair
	store *flist.DirStore
}

func newNode(t *testing.T) *node {
	t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	store, err := flist.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "node")
	n := &node{t: t, data: data, marks: t.TempDir(), dir: generation.Dir{Root: filepath.Join(data, "upgrade")}, key: kp, store: store}
	if err := n.dir.Init(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MARKS", n.marks)
	return n
}

// install builds generation gen of version with script as its bin/zosd
// and, when given, a bootstrap package holding bin/bootstrap.
func (n *node) install(gen uint64, version, script string, bootstrap ...[]byte) {
	n.t.Helper()
	tag := &flist.Tag{Publisher: "tf", Repo: "zos", Name: version}
	proof := generation.Proof{Flists: map[flist.ID][]byte{}}
	m := generation.Manifest{Format: generation.ManifestFormat, Generation: gen, Version: version, Serial: gen, Publisher: "tf", Repo: "zos", Tag: version, Installed: time.Now().UTC()}
	add := func(name, file string, content []byte, role flist.Role) {
		id, doc := n.pkg(file, content)
		tag.Entries = append(tag.Entries, flist.TagEntry{Name: name, Flist: id, Role: role})
		m.Packages = append(m.Packages, generation.Package{Name: name, Flist: id, Role: role})
		proof.Flists[id] = doc
	}
	for _, b := range bootstrap {
		add(BootstrapPackage, "bootstrap", b, flist.RoleDependency)
	}
	add("zos", "zosd", []byte(script), flist.RoleZos)
	st, err := flist.SignTag(tag, n.key)
	if err != nil {
		n.t.Fatal(err)
	}
	m.Release, proof.Release = st.Hash(), st
	if err := n.dir.Build(m, proof); err != nil {
		n.t.Fatal(err)
	}
}

// pkg makes a package holding bin/<file>, materialised in packages/.
func (n *node) pkg(file string, content []byte) (flist.ID, []byte) {
	n.t.Helper()
	ctx := context.Background()
	src := filepath.Join(n.t.TempDir(), "pkg")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		n.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", file), content, 0o755); err != nil {
		n.t.Fatal(err)
	}
	fl, err := flist.Build(ctx, src, n.store)
	if err != nil {
		n.t.Fatal(err)
	}
	id := fl.ID()
	if !n.dir.HasPackage(id) {
		if err := flist.Materialize(ctx, fl, n.dir.PkgDir(id), n.store); err != nil {
			n.t.Fatal(err)
		}
	}
	return id, fl.Encode()
}

// trySwitch does what the upgrader does before it restarts the modules:
// the trial written down, then the switch.
func (n *node) trySwitch(gen, from uint64, version string) {
	n.t.Helper()
	p, err := n.dir.ReadState()
	if err != nil {
		n.t.Fatal(err)
	}
	m, err := n.dir.ReadManifest(gen)
	if err != nil {
		n.t.Fatal(err)
	}
	p.LastGeneration = gen
	p.Trial = &generation.Trial{Generation: gen, From: from, Version: version, Serial: gen, Release: m.Release, Phase: generation.PhaseSwitching, Started: time.Now().UTC()}
	if err := n.dir.WriteState(p); err != nil {
		n.t.Fatal(err)
	}
	if err := n.dir.SwitchTo(gen); err != nil {
		n.t.Fatal(err)
	}
}

// commit does what the upgrader does once the generation is healthy.
func (n *node) commit() {
	n.t.Helper()
	p, err := n.dir.ReadState()
	if err != nil {
		n.t.Fatal(err)
	}
	p.Previous, p.Trial = p.Trial.From, nil
	if err := n.dir.WriteState(p); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) touch(name string) {
	n.t.Helper()
	if err := os.WriteFile(filepath.Join(n.marks, name), nil, 0o644); err != nil {
		n.t.Fatal(err)
	}
}

// waitRunning waits for the zosd of version (started from generation
// gen) to run.
func (n *node) waitRunning(version string, gen uint64, log *syncBuffer) {
	n.t.Helper()
	want := fmt.Sprintf("%s %d", version, gen)
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(n.marks, "running"))
		if strings.TrimSpace(string(b)) == want {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("running %q, want %q\nlog:\n%s", b, want, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitRolledBack waits for the record of a rollback of version.
func (n *node) waitRolledBack(version, reason string, log *syncBuffer) generation.Rollback {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, _ := n.dir.ReadState()
		if rb := p.RolledBack; rb != nil && rb.Version == version {
			if !strings.Contains(rb.Reason, reason) || p.Trial != nil {
				n.t.Fatalf("rolled back from %s: %q (trial %+v); want the reason to say %q", version, rb.Reason, p.Trial, reason)
			}
			return *rb
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("no rollback from %s; state %+v\nlog:\n%s", version, p, log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// start runs a bootstrap on the node until the test ends.
func (n *node) start(base string) *syncBuffer {
	n.t.Helper()
	var log syncBuffer
	b, err := New(Config{
		DataDir: n.data, BaseZosd: base, PublisherKey: n.key.Public().Key,
		StartDeadline: 2 * time.Second, HeartbeatDeadline: time.Second, TrialDeadline: 3 * time.Second,
		StopGrace: 2 * time.Second, RestartMin: 50 * time.Millisecond, RestartMax: 200 * time.Millisecond,
		Stderr: &log, Logger: slogTo(&log),
	})
	if err != nil {
		n.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	n.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			n.t.Errorf("Run: %v", err)
		}
	})
	return &log
}

// TestBootstrap: a bootstrap starts the base zosd, hands over to the
// generations an upgrader switches to, and switches back from the
// generations on trial whose zosd exits at start, hangs, or is never
// confirmed healthy, recording why; a generation whose files changed on
// disk is not started.
func TestBootstrap(t *testing.T) {
	n := newNode(t)
	base := filepath.Join(t.TempDir(), "zosd")
	if err := os.WriteFile(base, []byte(zosScript("v4.1.0", "")), 0o755); err != nil {
		t.Fatal(err)
	}
	log := n.start(base)
	n.waitRunning("v4.1.0", 0, log)

	// An upgrade: generation 1 installed and switched to, the old zosd
	// hands over; the upgrader of the new one confirms it.
	n.install(1, "v4.1.1", zosScript("v4.1.1", ""))
	n.trySwitch(1, 0, "v4.1.1")
	n.touch("handover-v4.1.0")
	n.waitRunning("v4.1.1", 1, log)
	n.commit()

	cases := []struct {
		version, mode, reason string
	}{
		{"v4.1.2", "exit", "the zosd of generation 2 exited with status 1: zosd v4.1.2: cannot start: boom"},
		{"v4.1.3", "hang", "the zosd of generation 3 hung: no heartbeat within 2s"},
		{"v4.1.4", "unconfirmed", "generation 4 (v4.1.4) was not confirmed healthy within 3s"},
		{"v4.1.5", "handover", "the zosd of generation 5 exited with status 75 (handover) but the node did not switch generations"},
	}
	for i, c := range cases {
		gen := uint64(i + 2)
		n.install(gen, c.version, zosScript(c.version, c.mode))
		n.trySwitch(gen, 1, c.version)
		n.touch("handover-v4.1.1")
		n.waitRolledBack(c.version, c.reason, log)
		n.waitRunning("v4.1.1", 1, log)
		if cur, _ := n.dir.Current(); cur != 1 {
			t.Fatalf("%s: current generation %d, want 1", c.version, cur)
		}
	}

	// A file of the running generation changed on disk: at the next
	// start the bootstrap does not run it but the previous one (the
	// base zosd here).
	zosd := filepath.Join(n.dir.GenDir(1), "zos", "bin", "zosd")
	if err := os.Chmod(filepath.Dir(zosd), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(zosd, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(zosd, bytes.Replace([]byte(zosScript("v4.1.1", "")), []byte("sleep 0.02"), []byte("sleep 0.03"), 1), 0o755); err != nil {
		t.Fatal(err)
	}
	n.touch("handover-v4.1.1")
	rb := n.waitRolledBack("v4.1.1", "does not verify", log)
	if !strings.Contains(rb.Reason, "bin/zosd: block") {
		t.Errorf("reason: %q", rb.Reason)
	}
	n.waitRunning("v4.1.0", 0, log)
}
