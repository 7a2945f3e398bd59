package identityd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/keys"
)

type layout struct {
	primary string
	disks   []string
}

// newLayout makes a data dir and n mounted data disks.
func newLayout(t *testing.T, n int) layout {
	t.Helper()
	root := t.TempDir()
	l := layout{primary: filepath.Join(root, "data", "identity.seed")}
	for i := range n {
		d := filepath.Join(root, "disk"+string(rune('a'+i)))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		l.disks = append(l.disks, d)
	}
	return l
}

func (l layout) cfg() Config { return Config{Primary: l.primary, Disks: l.disks} }

func mustOpen(t *testing.T, cfg Config) Result {
	t.Helper()
	res, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return res
}

func same(a, b keys.KeyPair) bool { return samePublic(a, b) }

func states(res Result) []CopyState {
	var out []CopyState
	for _, c := range res.Copies {
		out = append(out, c.State)
	}
	return out
}

func TestCreateThenLoad(t *testing.T) {
	l := newLayout(t, 2)
	res := mustOpen(t, l.cfg())
	if res.Origin != Created || res.Key.Scheme() != keys.Ed25519 {
		t.Fatalf("first open: %s %s", res.Origin, res.Key.Scheme())
	}
	if got := states(res); len(got) != 2 || got[0] != CopyWritten || got[1] != CopyWritten {
		t.Errorf("copies: %v", res.Copies)
	}
	st, err := os.Stat(l.primary)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("primary: %v %v", st, err)
	}
	again := mustOpen(t, l.cfg())
	if again.Origin != Loaded || !same(again.Key, res.Key) {
		t.Errorf("second open: %s, same key %v", again.Origin, same(again.Key, res.Key))
	}
	if got := states(again); got[0] != CopyOK || got[1] != CopyOK {
		t.Errorf("copies: %v", again.Copies)
	}
}

// TestRecoverFromCopy: the disk of the primary failed (file gone); the
// identity comes back from a data disk, unchanged.
func TestRecoverFromCopy(t *testing.T) {
	l := newLayout(t, 2)
	first := mustOpen(t, l.cfg())
	if err := os.RemoveAll(filepath.Dir(l.primary)); err != nil {
		t.Fatal(err)
	}
	// One data disk failed too.
	if err := os.RemoveAll(l.disks[0]); err != nil {
		t.Fatal(err)
	}
	res := mustOpen(t, l.cfg())
	if res.Origin != Recovered || !same(res.Key, first.Key) || res.From != copyPath(l.disks[1]) {
		t.Fatalf("recover: %s from %s, same %v", res.Origin, res.From, same(res.Key, first.Key))
	}
	if res.Copies[0].State != CopyUnavailable || !strings.Contains(res.Copies[0].Detail, "not mounted") || res.Copies[1].State != CopyOK {
		t.Errorf("copies: %+v", res.Copies)
	}
	if kp, err := keys.ReadSeedFile(l.primary); err != nil || !same(kp, first.Key) {
		t.Errorf("primary not restored: %v", err)
	}
	if _, err := os.Stat(l.disks[0]); !os.IsNotExist(err) {
		t.Error("a missing data disk's mount point was created")
	}
}

// TestCorruptPrimaryRefuses: a damaged primary is never replaced, neither
// by a new identity nor by a copy, and the message says what to do.
func TestCorruptPrimaryRefuses(t *testing.T) {
	l := newLayout(t, 1)
	first := mustOpen(t, l.cfg())
	garbage := []byte("{\"version\":1,\"scheme\":\"ed25519\",\"seed\":\"00")
	if err := os.WriteFile(l.primary, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"Open":  func() error { _, err := Open(l.cfg()); return err },
		"Check": func() error { return Check(l.cfg()) },
	} {
		err := f()
		if !errors.Is(err, ErrCorrupt) || !errors.Is(err, keys.ErrCorruptSeedFile) {
			t.Fatalf("%s: %v", name, err)
		}
		msg := err.Error()
		for _, want := range []string{l.primary, "refusing to start", copyPath(l.disks[0]), Address(first.Key), "remove the damaged file"} {
			if !strings.Contains(msg, want) {
				t.Errorf("%s: message lacks %q: %s", name, want, msg)
			}
		}
	}
	if b, _ := os.ReadFile(l.primary); string(b) != string(garbage) {
		t.Error("the corrupt primary was changed")
	}
}

func TestUnreadablePrimaryRefuses(t *testing.T) {
	t.Run("insecure mode", func(t *testing.T) {
		l := newLayout(t, 0)
		mustOpen(t, l.cfg())
		if err := os.Chmod(l.primary, 0o644); err != nil {
			t.Fatal(err)
		}
		err := Check(l.cfg())
		if !errors.Is(err, ErrUnreadable) || !errors.Is(err, keys.ErrInsecureSeedFile) || !strings.Contains(err.Error(), "no readable copy") {
			t.Errorf("Check: %v", err)
		}
	})
	t.Run("not a file", func(t *testing.T) {
		l := newLayout(t, 0)
		if err := os.MkdirAll(l.primary, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(l.cfg()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Open: %v", err)
		}
	})
}

// TestDamagedCopyWithoutPrimaryRefuses: with the primary gone and the
// only copy damaged, there was an identity: no new one is made.
func TestDamagedCopyWithoutPrimaryRefuses(t *testing.T) {
	l := newLayout(t, 1)
	mustOpen(t, l.cfg())
	os.Remove(l.primary)
	if err := os.WriteFile(copyPath(l.disks[0]), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(l.cfg())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "refusing to create a new identity") {
		t.Fatalf("Open: %v", err)
	}
	if _, err := os.Stat(l.primary); !os.IsNotExist(err) {
		t.Error("a primary was written")
	}
}

func TestConflictingCopiesRefuse(t *testing.T) {
	l := newLayout(t, 2)
	for _, d := range l.disks {
		kp, _ := keys.Generate(keys.Ed25519)
		if err := writeSeed(copyPath(d), kp); err != nil {
			t.Fatal(err)
		}
	}
	if err := Check(l.cfg()); !errors.Is(err, ErrConflictingCopies) {
		t.Fatalf("Check: %v", err)
	}
}

// TestCopyRepair: a corrupt copy is moved aside and rewritten; a copy of
// another identity (a disk from another node) is left alone.
func TestCopyRepair(t *testing.T) {
	l := newLayout(t, 2)
	first := mustOpen(t, l.cfg())
	if err := os.WriteFile(copyPath(l.disks[0]), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	other, _ := keys.Generate(keys.Ed25519)
	os.Remove(copyPath(l.disks[1]))
	if err := writeSeed(copyPath(l.disks[1]), other); err != nil {
		t.Fatal(err)
	}
	res := mustOpen(t, l.cfg())
	if res.Copies[0].State != CopyReplaced || res.Copies[1].State != CopyForeign {
		t.Fatalf("copies: %+v", res.Copies)
	}
	if kp, err := keys.ReadSeedFile(copyPath(l.disks[0])); err != nil || !same(kp, first.Key) {
		t.Errorf("copy not rewritten: %v", err)
	}
	if kp, err := keys.ReadSeedFile(copyPath(l.disks[1])); err != nil || !same(kp, other) {
		t.Errorf("foreign copy changed: %v", err)
	}
	aside, _ := filepath.Glob(copyPath(l.disks[0]) + ".corrupt-*")
	if len(aside) != 1 {
		t.Errorf("corrupt copy not kept aside: %v", aside)
	}
}

// TestCheckWritesNothing: Check on an empty layout says yes and leaves
// no file behind.
func TestCheckWritesNothing(t *testing.T) {
	l := newLayout(t, 1)
	if err := Check(l.cfg()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l.primary); !os.IsNotExist(err) {
		t.Error("Check wrote the primary")
	}
	if _, err := os.Stat(copyPath(l.disks[0])); !os.IsNotExist(err) {
		t.Error("Check wrote a copy")
	}
}
