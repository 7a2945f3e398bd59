// Package storagetest gives the tests of storaged's users a real storaged
// service: on a temporary directory of the machine, or on a small file
// system of its own (an ext4 loop image mounted for the test) where a
// test needs the pool to fill up.
package storagetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/grid4/grid4/node/storaged"
)

// New returns a storaged service keeping its pool and state in a
// temporary directory.
func New(t testing.TB) *storaged.Service {
	t.Helper()
	return Open(t, t.TempDir())
}

// Open returns a storaged service on dir (again on the same dir: the
// node restarted).
func Open(t testing.TB, dir string) *storaged.Service {
	t.Helper()
	s, err := storaged.New(storaged.Config{Dir: dir, Seeker: FastDisk})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// FastDisk stands in for the seek benchmark, which decides whether a disk
// that reports itself rotational (as virtual disks often do) is an SSD: on
// a machine busy with other tests a median random read can pass the
// threshold, the pool becomes an HDD and every allocation fails with "no
// SSD pool". storaged's own tests measure the classification.
func FastDisk(string) (time.Duration, error) { return 0, nil }

// SmallFS mounts a fresh ext4 file system of size bytes (a sparse loop
// image in a temporary directory, so its name is the test's own) and
// returns its mount point; it is unmounted, and its loop device freed,
// when the test ends. Needs root, mkfs.ext4 and loop devices.
func SmallFS(t testing.TB, size int64) string {
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
	// mount -o loop sets up the loop device with autoclear: umount frees
	// it.
	for _, args := range [][]string{{"mkfs.ext4", "-q", "-F", "-m", "0", img}, {"mount", "-o", "loop", img, mnt}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			// Something the test left mounted inside: detach it all.
			if out2, err2 := exec.Command("umount", "-R", "-l", mnt).CombinedOutput(); err2 != nil {
				t.Errorf("umount %s: %v: %s; %s", mnt, err, out, out2)
			}
		}
	})
	return mnt
}
