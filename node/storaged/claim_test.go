package storaged_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/storaged/storagetest"
)

// loopDisk attaches a fresh sparse file of size bytes to a free loop
// device: a whole disk the test may claim.
func loopDisk(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup: %v %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func poolOf(t *testing.T, s *storaged.Service, dev string) (storaged.Pool, bool) {
	t.Helper()
	pools, _ := s.Pools(context.Background())
	for _, p := range pools {
		if p.Device == dev {
			return p, true
		}
	}
	return storaged.Pool{}, false
}

// TestClaimedDisk: an empty disk the farmer claims gets an ext4 file
// system of its own, mounted as a pool; allocations go there when it has
// the most room; after a reboot (unmounted) it is mounted again, not
// formatted again, with its data; a disk that is gone leaves its pool
// offline, its allocations broken and its capacity out.
func TestClaimedDisk(t *testing.T) {
	ctx := context.Background()
	dir := storagetest.SmallFS(t, 16<<20)
	dev := loopDisk(t, 96<<20)
	cfg := storaged.Config{Dir: dir, Claims: []string{dev}}
	s, err := storaged.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := poolOf(t, s, dev)
	if !ok || p.UUID == "" || p.Size < 80<<20 || p.Offline != "" || p.Name != filepath.Base(dev) {
		t.Fatalf("claimed pool: %+v", p)
	}
	t.Cleanup(func() { exec.Command("umount", p.Path).Run() })
	if m, _ := mountinfo.IsMountPoint(p.Path); !m {
		t.Fatal("claimed pool not mounted")
	}
	c, _ := s.Capacity(ctx)
	a, err := s.Allocate(ctx, storaged.Request{ID: "1-1-disk", Kind: storaged.ZMount, Size: 40 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if a.Pool != p.Name {
		t.Fatalf("allocated in %s, not the claimed disk with the most room", a.Pool)
	}
	if err := os.WriteFile(a.Path, []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(a.Path, 40<<20)

	// A reboot: the pool is unmounted; the next start mounts it again.
	if out, err := exec.Command("umount", p.Path).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	s, err = storaged.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := poolOf(t, s, dev)
	if again.UUID != p.UUID || again.Offline != "" {
		t.Fatalf("after restart: %+v (was %+v)", again, p)
	}
	if _, err := s.Get(ctx, "1-1-disk"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(a.Path); string(b[:4]) != "kept" {
		t.Fatal("data lost: the disk was formatted again")
	}
	if c2, _ := s.Capacity(ctx); c2.SRU != c.SRU {
		t.Fatalf("capacity %+v, was %+v", c2, c)
	}

	// The disk is gone at the next start: offline, never written through.
	if out, err := exec.Command("umount", p.Path).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
		t.Fatalf("losetup -d: %v %s", err, out)
	}
	// The kernel lets go of a loop device after a while on a busy host.
	backing := filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(backing); errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still attached 10 s after losetup -d", dev)
		}
	}
	s, err = storaged.New(storaged.Config{Dir: dir, Claims: []string{dev}})
	if err != nil {
		t.Fatal(err)
	}
	gone, _ := poolOf(t, s, dev)
	if gone.Offline == "" || gone.Size != 0 {
		t.Fatalf("pool of a missing disk: %+v", gone)
	}
	if _, err := s.Get(ctx, "1-1-disk"); !errors.Is(err, storaged.ErrBroken) {
		t.Fatalf("allocation on a missing disk: %v", err)
	}
	if _, err := s.Allocate(ctx, storaged.Request{ID: "1-1-disk", Kind: storaged.ZMount, Size: 40 << 20}); !errors.Is(err, storaged.ErrBroken) {
		t.Fatalf("allocate again on a missing disk: %v", err)
	}
	if _, err := os.Stat(a.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an image was made in the empty mount point")
	}
	if c3, _ := s.Capacity(ctx); c3.SRU >= c.SRU {
		t.Fatalf("capacity still counts the missing disk: %+v", c3)
	}
}

// TestClaimRefused: a claimed disk holding a file system storaged did not
// make, or mounted elsewhere, is left alone.
func TestClaimRefused(t *testing.T) {
	foreign := loopDisk(t, 32<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", foreign).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	mounted := loopDisk(t, 32<<20)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", mounted).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", mounted, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	if err := os.WriteFile(filepath.Join(mnt, "theirs"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := storaged.New(storaged.Config{Dir: t.TempDir(), Claims: []string{foreign, mounted, "/dev/null"}})
	if err != nil {
		t.Fatal(err)
	}
	pools, _ := s.Pools(context.Background())
	if len(pools) != 1 || pools[0].Device != "" {
		t.Fatalf("pools: %+v", pools)
	}
	if _, err := os.Stat(filepath.Join(mnt, "theirs")); err != nil {
		t.Fatal("the mounted disk was touched")
	}
	if out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "LABEL", foreign).Output(); strings.TrimSpace(string(out)) == "storaged" {
		t.Fatal("the foreign file system was formatted")
	}
}
