package storaged

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/node/hostinfo"
)

// fixtureDisk adds disk name to a fixture root: size in bytes, the
// rotational flag, a device link and a /dev file to benchmark.
func fixtureDisk(t *testing.T, root, name string, size uint64, rotational string) {
	t.Helper()
	dir := filepath.Join(root, "sys/block", name)
	for p, c := range map[string]string{
		"size":                 fmt.Sprint(size / 512),
		"queue/rotational":     rotational,
		"removable":            "0",
		"device/vendor":        "fixture",
		"../../../dev/" + name: strings.Repeat("x", 1<<20),
	} {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClassifyRules(t *testing.T) {
	root := t.TempDir()
	fixtureDisk(t, root, "nvme0n1", 1<<40, "0")
	fixtureDisk(t, root, "sda", 4<<40, "1")
	fixtureDisk(t, root, "vda", 256<<30, "1")
	p, err := hostinfo.New(hostinfo.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	disks := p.Disks().Value
	slow := func(dev string) (time.Duration, error) {
		if filepath.Base(dev) != "sda" {
			return 0, fmt.Errorf("benchmarked %s", dev)
		}
		return 8 * time.Millisecond, nil
	}
	cfg := Config{HostRoot: root, Seeker: slow}
	for _, c := range []struct {
		disk string
		cfg  Config
		kind hostinfo.DiskKind
		rule string
	}{
		{"nvme0n1", cfg, hostinfo.SSD, "rotational=0"},
		{"sda", cfg, hostinfo.HDD, "seek benchmark"},
		// The real benchmark on vda's fixture file: a file answers fast.
		{"vda", Config{HostRoot: root}, hostinfo.SSD, "seek benchmark"},
		{"sda", Config{HostRoot: root, Seeker: slow, Types: map[string]hostinfo.DiskKind{"sda": hostinfo.SSD}}, hostinfo.SSD, "configured"},
		{"", cfg, hostinfo.SSD, "assumed"},
		{"sdz", cfg, hostinfo.SSD, "assumed"},
	} {
		got := classify(c.disk, disks, c.cfg, "")
		if got.Kind != c.kind || got.Rule != c.rule {
			t.Errorf("%s: %+v, want %s by %q", c.disk, got, c.kind, c.rule)
		}
	}
	// A rotational disk that cannot be benchmarked stays an HDD.
	os.Remove(filepath.Join(root, "dev/sda"))
	if got := classify("sda", disks, Config{HostRoot: root}, ""); got.Kind != hostinfo.HDD || got.Rule != "rotational=1" || !strings.Contains(got.Detail, "no such file") {
		t.Errorf("sda without a device: %+v", got)
	}
}

// TestLiveHost: on this machine, the data directory's pool is found on
// its disk and offers storage; a disk that says it rotates was measured
// rather than believed. On the test VM (virtio disk, rotational=1) this
// is the SRU the node used to lack without --sru.
func TestLiveHost(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir()})
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

// smallFS mounts a fresh ext4 file system of size bytes (a loop image)
// and returns its mount point.
func smallFS(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"mkfs.ext4", "-q", "-F", "-m", "0", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return mnt
}

// TestAllocationsAccounted: on a real 64 MiB file system, sparse images
// are refused once their promised sizes fill the pool (though statfs
// still shows the space free), the accounting survives a restart, and a
// release gives the space back.
func TestAllocationsAccounted(t *testing.T) {
	dir := smallFS(t, 64<<20)
	ctx := context.Background()
	s, err := New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pools, _ := s.Pools(ctx)
	size := pools[0].Size
	if size == 0 || size > 64<<20 || pools[0].Class.Rule != "assumed" {
		t.Fatalf("pool on a loop device: %+v", pools[0])
	}
	a, err := s.Allocate(ctx, Request{ID: "1-2-disk", Kind: ZMount, Size: size / 2})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(a.Path); err != nil || uint64(st.Size()) != size/2 || filepath.Dir(a.Path) != filepath.Join(pools[0].Path, "zmount") {
		t.Fatalf("image %s: %v %v", a.Path, st, err)
	}
	again, err := s.Allocate(ctx, Request{ID: "1-2-disk", Kind: ZMount, Size: size / 2})
	if err != nil || again != a {
		t.Fatalf("again: %+v %v", again, err)
	}
	vol, err := s.Allocate(ctx, Request{ID: "1-2-vol", Kind: Volume, Size: size / 4})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(vol.Path); err != nil || !st.IsDir() {
		t.Fatalf("volume directory: %v", err)
	}
	_, err = s.Allocate(ctx, Request{ID: "1-2-big", Kind: ZMount, Size: size / 2})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("over-promise: %v", err)
	}
	if _, err := os.Stat(filepath.Join(pools[0].Path, "zmount", "1-2-big.img")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused image was made")
	}
	for _, bad := range []Request{
		{ID: "../x", Kind: ZMount, Size: 1}, {ID: "x", Kind: "swap", Size: 1}, {ID: "x", Kind: ZMount},
		{ID: "1-2-disk", Kind: Volume, Size: size / 2}, {ID: "1-2-disk", Kind: ZMount, Size: 1},
	} {
		if _, err := s.Allocate(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", bad, err)
		}
	}

	// A restart keeps the accounting.
	s, err = New(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.Capacity(ctx)
	if c.UsedSRU != size/2+size/4 || c.SRU != size {
		t.Fatalf("after restart: %+v", c)
	}
	if _, err := s.Allocate(ctx, Request{ID: "1-2-big", Kind: ZMount, Size: size / 2}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("over-promise after restart: %v", err)
	}
	if got, err := s.Get(ctx, "1-2-disk"); err != nil || got != a {
		t.Fatalf("get: %+v %v", got, err)
	}
	// A lost image is reported, not hidden.
	os.Truncate(a.Path, 4096)
	if _, err := s.Get(ctx, "1-2-disk"); !errors.Is(err, ErrBroken) {
		t.Fatalf("shrunk image: %v", err)
	}
	if _, err := s.Get(ctx, "nothing"); !errors.Is(err, ErrNotFound) {
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
	if _, err := s.Allocate(ctx, Request{ID: "1-2-big", Kind: ZMount, Size: size / 2}); err != nil {
		t.Fatalf("after release: %v", err)
	}
}

// TestReleaseRefusesMounted: a volume directory with a file system still
// mounted in it is not deleted through.
func TestReleaseRefusesMounted(t *testing.T) {
	ctx := context.Background()
	s, err := New(Config{Dir: smallFS(t, 16<<20)})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Allocate(ctx, Request{ID: "1-2-v", Kind: Volume, Size: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	inner := smallFS(t, 8<<20)
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
