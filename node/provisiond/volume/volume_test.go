package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/provisiond"
)

func task(name string, size uint64) provisiond.Task {
	data, _ := json.Marshal(gridtypes.VolumeData{Size: size})
	return provisiond.Task{TwinID: 7, DeploymentID: 3, Workload: gridtypes.Workload{Name: name, Type: gridtypes.VolumeType, Data: data}}
}

func TestAccountingVolume(t *testing.T) {
	free := uint64(100 * gridtypes.MiB)
	m, err := New(Config{Dir: t.TempDir(), Mode: Accounting, Free: func(string) (uint64, error) { return free, nil }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := m.Provision(ctx, task("vol", 64*gridtypes.MiB))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	if r.Enforcement != Accounting || r.Size != 64*gridtypes.MiB {
		t.Fatalf("result %+v", r)
	}
	if err := os.MkdirAll(filepath.Join(r.Path, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 3<<20)
	if err := os.WriteFile(filepath.Join(r.Path, "sub", "f"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A hard link is counted once.
	if err := os.Link(filepath.Join(r.Path, "sub", "f"), filepath.Join(r.Path, "g")); err != nil {
		t.Fatal(err)
	}
	used, err := m.Usage(ctx, task("vol", 0))
	if err != nil {
		t.Fatal(err)
	}
	if used < 3<<20 || used > 4<<20 {
		t.Fatalf("usage %d, want about 3 MiB", used)
	}
	// 64 MiB promised minus 3 MiB used: 61 MiB of the 100 are taken.
	_, err = m.Provision(ctx, task("vol2", 40*gridtypes.MiB))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("second volume: %v", err)
	}
	if _, err := m.Provision(ctx, task("vol2", 30*gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	// Idempotent, data kept.
	if _, err := m.Provision(ctx, task("vol", 64*gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.Path, "g")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Deprovision(ctx, task("vol", 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(r.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("volume still there")
	}
}

func TestLoopVolumeIsAHardLimit(t *testing.T) {
	if ok, why := Probe(); !ok {
		t.Skipf("loop volumes unavailable here: %s", why)
	}
	m, err := New(Config{Dir: t.TempDir(), Mode: LoopExt4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tk := task("vol", 16*gridtypes.MiB)
	t.Cleanup(func() { _ = m.Deprovision(ctx, tk) })
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	if r.Enforcement != LoopExt4 {
		t.Fatalf("result %+v", r)
	}
	if ok, _ := isMounted(r.Path); !ok {
		t.Fatal("not mounted")
	}
	// Again: still one mount.
	if _, err := m.Provision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if n := mountCount(t, r.Path); n != 1 {
		t.Fatalf("mounted %d times", n)
	}
	// Writing more than the size fails with ENOSPC.
	err = os.WriteFile(filepath.Join(r.Path, "big"), make([]byte, 32<<20), 0o600)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 32 MiB in a 16 MiB volume: %v", err)
	}
	used, err := m.Usage(ctx, tk)
	if err != nil || used < 8<<20 {
		t.Fatalf("usage %d %v", used, err)
	}
	os.Remove(filepath.Join(r.Path, "big"))
	// Grow online to 48 MiB: now 32 MiB fit.
	if _, err := m.Update(ctx, task("vol", 48*gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.Path, "big"), make([]byte, 32<<20), 0o600); err != nil {
		t.Fatalf("after growing: %v", err)
	}
	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if ok, _ := isMounted(r.Path); ok {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(m.image(tk)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("image still there")
	}
}

func mountCount(t *testing.T, path string) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			n++
		}
	}
	return n
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/a\040b\134c`); got != `/a b\c` {
		t.Fatalf("got %q", got)
	}
}
