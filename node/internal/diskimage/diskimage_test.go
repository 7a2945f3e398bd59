package diskimage

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A blank image is formatted ext4 once; preparing it again keeps its file
// system (same UUID).
func TestPrepareFormatsOnlyBlankImages(t *testing.T) {
	for _, tool := range []string{"blkid", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (make test-services installs it)", tool)
		}
	}
	ctx := context.Background()
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if blank, err := Blank(ctx, img); err != nil || !blank {
		t.Fatalf("Blank of a new image = %v, %v", blank, err)
	}
	uuid := func() string {
		out, err := exec.Command("blkid", "-p", "-s", "UUID", "-s", "TYPE", "-o", "export", img).Output()
		if err != nil {
			t.Fatalf("blkid: %v", err)
		}
		if !strings.Contains(string(out), "TYPE=ext4") {
			t.Fatalf("not ext4: %s", out)
		}
		return string(out)
	}
	if err := Prepare(ctx, img); err != nil {
		t.Fatal(err)
	}
	first := uuid()
	if err := Prepare(ctx, img); err != nil {
		t.Fatal(err)
	}
	if again := uuid(); again != first {
		t.Errorf("prepared twice: %s then %s", first, again)
	}
	if _, err := Blank(ctx, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("Blank of a missing file succeeded")
	}
}
