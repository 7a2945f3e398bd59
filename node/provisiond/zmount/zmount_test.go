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
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/storaged/storagetest"
)

func task(name string, size uint64) provisiond.Task {
	data, _ := json.Marshal(gridtypes.ZMountData{Size: size})
	return provisiond.Task{TwinID: 7, DeploymentID: 3, Workload: gridtypes.Workload{Name: name, Type: gridtypes.ZMountType, Data: data}}
}

func newManager(t *testing.T, s Storage) *Manager {
	t.Helper()
	m, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSparseDisk: the disk is a sparse image of the size in storaged's
// pool, kept as it is by a second Provision, grown by Update, never
// shrunk, and removed (twice) by Deprovision.
func TestSparseDisk(t *testing.T) {
	m := newManager(t, storagetest.New(t))
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
	if st.Mode&0o077 != 0 {
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
	if err := m.Restore(ctx, task("disk", 2*size)); err != nil {
		t.Fatalf("restore of an intact disk: %v", err)
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

// TestPoolFull: on a 64 MiB file system a disk that does not fit what
// the pool still has unpromised is refused before anything is made,
// although the first disk is unwritten and statfs shows the space free.
func TestPoolFull(t *testing.T) {
	s := storagetest.Open(t, storagetest.SmallFS(t, 64<<20))
	m := newManager(t, s)
	ctx := context.Background()
	c, _ := s.Capacity(ctx)
	if _, err := m.Provision(ctx, task("a", c.SRU/2+gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	_, err := m.Provision(ctx, task("b", c.SRU/2))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("second disk: %v", err)
	}
	if _, err := s.Get(ctx, task("b", 0).ID()); !errors.Is(err, storaged.ErrNotFound) {
		t.Fatalf("refused disk was recorded: %v", err)
	}
	if _, err := m.Provision(ctx, task("c", c.SRU/4)); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreFindsLostDisk: a disk whose image vanished while the node
// was down fails its restore instead of reading ok.
func TestRestoreFindsLostDisk(t *testing.T) {
	m := newManager(t, storagetest.New(t))
	ctx := context.Background()
	res, err := m.Provision(ctx, task("disk", gridtypes.MiB))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(res.(Result).Path); err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(ctx, task("disk", gridtypes.MiB)); !errors.Is(err, storaged.ErrBroken) {
		t.Fatalf("restore of a lost disk: %v", err)
	}
	if err := m.Restore(ctx, task("never", gridtypes.MiB)); !errors.Is(err, storaged.ErrNotFound) {
		t.Fatalf("restore of a disk never made: %v", err)
	}
}

func TestBadData(t *testing.T) {
	m := newManager(t, storagetest.New(t))
	tk := task("x", 1)
	tk.Workload.Data = json.RawMessage(`{"size":"1"}`)
	if _, err := m.Provision(context.Background(), tk); err == nil {
		t.Fatal("accepted bad data")
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New accepted no storage")
	}
}
