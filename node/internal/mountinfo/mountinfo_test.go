package mountinfo

import (
	"os"
	"os/exec"
	"path/filepath"
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
}
