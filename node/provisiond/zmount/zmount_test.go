package zmount

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/provisiond"
)

func task(name string, size uint64) provisiond.Task {
	data, _ := json.Marshal(gridtypes.ZMountData{Size: size})
	return provisiond.Task{TwinID: 7, DeploymentID: 3, Workload: gridtypes.Workload{Name: name, Type: gridtypes.ZMountType, Data: data}}
}

func TestSparseDisk(t *testing.T) {
	m, err := New(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const size = 512 * gridtypes.MiB
	res, err := m.Provision(ctx, task("disk", size))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	var st syscall.Stat_t
	if err := syscall.Stat(r.Path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != int64(size) || r.Size != size {
		t.Fatalf("size %d, want %d", st.Size, size)
	}
	if st.Blocks*512 > 64<<10 {
		t.Fatalf("disk holds %d bytes of blocks; not sparse", st.Blocks*512)
	}
	if r.Path != m.Path(task("disk", size)) || st.Mode&0o077 != 0 {
		t.Fatalf("path %s mode %o", r.Path, st.Mode)
	}
	// Idempotent: again is a no-op, data kept.
	f, _ := os.OpenFile(r.Path, os.O_WRONLY, 0)
	f.WriteAt([]byte("hello"), 4096)
	f.Close()
	if _, err := m.Provision(ctx, task("disk", size)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	f, _ = os.Open(r.Path)
	f.ReadAt(b, 4096)
	f.Close()
	if string(b) != "hello" {
		t.Fatal("provisioning again lost the data")
	}
	// Grow.
	if _, err := m.Update(ctx, task("disk", 2*size)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(r.Path); fi.Size() != int64(2*size) {
		t.Fatalf("grown to %d", fi.Size())
	}
	if _, err := m.Provision(ctx, task("disk", size)); err == nil {
		t.Fatal("shrank a disk")
	}
	// Deprovision twice.
	for range 2 {
		if err := m.Deprovision(ctx, task("disk", size)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(r.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("disk still there: %v", err)
	}
}

func TestFreeSpaceChecked(t *testing.T) {
	free := uint64(3 * gridtypes.GiB)
	m, err := New(t.TempDir(), func(string) (uint64, error) { return free, nil })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := m.Provision(ctx, task("a", 2*gridtypes.GiB)); err != nil {
		t.Fatal(err)
	}
	// The first disk is unwritten: its 2 GiB are promised, 1 GiB is left.
	_, err = m.Provision(ctx, task("b", 2*gridtypes.GiB))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("second disk: %v", err)
	}
	if _, err := os.Stat(m.Path(task("b", 0))); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("refused disk was made")
	}
	if _, err := m.Provision(ctx, task("c", gridtypes.GiB)); err != nil {
		t.Fatal(err)
	}
}

func TestBadData(t *testing.T) {
	m, _ := New(t.TempDir(), nil)
	tk := task("x", 1)
	tk.Workload.Data = json.RawMessage(`{"size":"1"}`)
	if _, err := m.Provision(context.Background(), tk); err == nil {
		t.Fatal("accepted bad data")
	}
}
