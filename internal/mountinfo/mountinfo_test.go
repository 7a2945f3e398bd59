package mountinfo

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	if got := Unescape(`/a\040b\134c`); got != `/a b\c` {
		t.Fatalf("got %q", got)
	}
}

// TestMountPoints: a tmpfs mounted in a temporary directory (a name of the
// test's own) is a mount point, found under its parent, and neither once
// unmounted.
func TestMountPoints(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "with space")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	})
	if ok, err := IsMountPoint(mnt); !ok || err != nil {
		t.Fatalf("IsMountPoint(%s) = %v %v", mnt, ok, err)
	}
	if ok, _ := IsMountPoint(dir); ok {
		t.Fatal("its parent is no mount point")
	}
	if got, err := Under(dir); got != mnt || err != nil {
		t.Fatalf("Under = %q %v", got, err)
	}
	if got, err := List("/proc/self/mountinfo", dir); len(got) != 1 || got[0] != mnt || err != nil {
		t.Fatalf("List = %q %v", got, err)
	}
	if got, _ := List("/proc/self/mountinfo", dir+"x"); len(got) != 0 {
		t.Fatalf("List of a sibling's name = %q", got)
	}
	if err := os.WriteFile(filepath.Join(mnt, "kept"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(dir); err == nil || !strings.Contains(err.Error(), "still has a mount ("+mnt+")") {
		t.Fatalf("RemoveAll over a mount: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "kept")); err != nil {
		t.Fatalf("RemoveAll deleted through the mount: %v", err)
	}
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	mounted = false
	if got, _ := Under(dir); got != "" {
		t.Fatalf("Under after umount = %q", got)
	}
	if ok, err := IsMountPoint(filepath.Join(dir, "missing")); ok || err != nil {
		t.Fatalf("missing path: %v %v", ok, err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("RemoveAll left %s: %v", dir, err)
	}
}
