package storaged_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/storaged/storagetest"
)

// TestLiveHost: on this machine, the data directory's pool is found on
// its disk and offers storage; a disk that says it rotates was measured
// rather than believed. On the test VM (virtio disk, rotational=1) this
// is the SRU the node used to lack without --sru.
func TestLiveHost(t *testing.T) {
	s, err := storaged.New(storaged.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	pools, _ := s.Pools(context.Background())
	if len(pools) != 1 || pools[0].Size == 0 {
		t.Fatalf("pools: %+v", pools)
	}
	t.Logf("pool %+v", pools[0])
	disks, _ := s.Disks(context.Background())
	for _, d := range disks {
		if d.Name == pools[0].Name && d.Kind == hostinfo.HDD && pools[0].Class.Rule != "seek benchmark" {
			t.Errorf("disk %s says it rotates but was not measured: %+v", d.Name, pools[0].Class)
		}
	}
	c, _ := s.Capacity(context.Background())
	if c.SRU+c.HRU != pools[0].Size {
		t.Errorf("capacity %+v, pool %d", c, pools[0].Size)
	}
}

// TestAllocationsAccounted: on a real 64 MiB file system, sparse images
// are refused once their promised sizes fill the pool (though statfs
// still shows the space free), the accounting survives a restart, and a
// release gives the space back.
func TestAllocationsAccounted(t *testing.T) {
	dir := storagetest.SmallFS(t, 64<<20)
	ctx := context.Background()
	s, err := storaged.New(storaged.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pools, _ := s.Pools(ctx)
	size := pools[0].Size
	if size == 0 || size > 64<<20 || pools[0].Class.Rule != "assumed" {
		t.Fatalf("pool on a loop device: %+v", pools[0])
	}
	a, err := s.Allocate(ctx, storaged.Request{ID: "1-2-disk", Kind: storaged.ZMount, Size: size / 2})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(a.Path); err != nil || uint64(st.Size()) != size/2 || filepath.Dir(a.Path) != filepath.Join(pools[0].Path, "zmount") {
		t.Fatalf("image %s: %v %v", a.Path, st, err)
	}
	again, err := s.Allocate(ctx, storaged.Request{ID: "1-2-disk", Kind: storaged.ZMount, Size: size / 2})
	if err != nil || again != a {
		t.Fatalf("again: %+v %v", again, err)
	}
	vol, err := s.Allocate(ctx, storaged.Request{ID: "1-2-vol", Kind: storaged.Volume, Size: size / 4})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(vol.Path); err != nil || !st.IsDir() {
		t.Fatalf("volume directory: %v", err)
	}
	_, err = s.Allocate(ctx, storaged.Request{ID: "1-2-big", Kind: storaged.ZMount, Size: size / 2})
	if !errors.Is(err, storaged.ErrNoSpace) {
		t.Fatalf("over-promise: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pools[0].Path, "zmount", "1-2-big.img")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused image was made")
	}
	for _, bad := range []storaged.Request{
		{ID: "../x", Kind: storaged.ZMount, Size: 1}, {ID: "x", Kind: "swap", Size: 1}, {ID: "x", Kind: storaged.ZMount},
		{ID: "1-2-disk", Kind: storaged.Volume, Size: size / 2}, {ID: "1-2-disk", Kind: storaged.ZMount, Size: 1},
	} {
		if _, err := s.Allocate(ctx, bad); !errors.Is(err, storaged.ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}

	// A restart keeps the accounting.
	s, err = storaged.New(storaged.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Capacity(ctx)
	if c.UsedSRU != size/2+size/4 || c.SRU != size {
		t.Fatalf("after restart: %+v", c)
	}
	if _, err := s.Allocate(ctx, storaged.Request{ID: "1-2-big", Kind: storaged.ZMount, Size: size / 2}); !errors.Is(err, storaged.ErrNoSpace) {
		t.Fatalf("over-promise after restart: %v", err)
	}
	if got, err := s.Get(ctx, "1-2-disk"); err != nil || got != a {
		t.Fatalf("get: %+v %v", got, err)
	}
	// A lost image is reported, not hidden.
	os.Truncate(a.Path, 4096)
	if _, err := s.Get(ctx, "1-2-disk"); !errors.Is(err, storaged.ErrBroken) {
		t.Fatalf("shrunk image: %v", err)
	}
	if _, err := s.Get(ctx, "nothing"); !errors.Is(err, storaged.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	for range 2 {
		if err := s.Release(ctx, "1-2-disk"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(a.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("released image still there")
	}
	if _, err := s.Allocate(ctx, storaged.Request{ID: "1-2-big", Kind: storaged.ZMount, Size: size / 2}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestReleaseRefusesMounted: a volume directory with a file system still
// mounted in it is not deleted through.
func TestReleaseRefusesMounted(t *testing.T) {
	ctx := context.Background()
	s, err := storaged.New(storaged.Config{Dir: storagetest.SmallFS(t, 16<<20)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Allocate(ctx, storaged.Request{ID: "1-2-v", Kind: storaged.Volume, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	inner := storagetest.SmallFS(t, 8<<20)
	if err := os.WriteFile(filepath.Join(inner, "keep"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(v.Path, "mnt")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "--bind", inner, mnt).CombinedOutput(); err != nil {
		t.Fatalf("bind: %v %s", err, out)
	}
	err = s.Release(ctx, "1-2-v")
	exec.Command("umount", mnt).Run()
	if err == nil || !strings.Contains(err.Error(), "still mounted") {
		t.Fatalf("release with a mount inside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(inner, "keep")); err != nil {
		t.Fatal("deleted through the mount")
	}
	if err := s.Release(ctx, "1-2-v"); err != nil {
		t.Fatal(err)
	}
}
