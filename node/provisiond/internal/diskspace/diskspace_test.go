package diskspace

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReserve(t *testing.T) {
	free := func(string) (uint64, error) { return 100, nil }
	promised := func() (uint64, error) { return 60, nil }
	if err := Reserve("d", 40, free, promised, "disk"); err != nil {
		t.Fatal(err)
	}
	err := Reserve("d", 41, free, promised, "disk")
	if !errors.Is(err, ErrNoSpace) || err.Error() != "not enough free space for a 41-byte disk: 100 bytes free, 60 promised to existing disks" {
		t.Fatalf("refusal: %v", err)
	}
	boom := errors.New("boom")
	if err := Reserve("d", 1, func(string) (uint64, error) { return 0, boom }, promised, "disk"); !errors.Is(err, boom) {
		t.Fatalf("free failing: %v", err)
	}
}

func TestPromisedCountsUnwrittenParts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "full.img"), make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sparse.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "sparse.img"), 1<<30); err != nil {
		t.Fatal(err)
	}
	got, err := Promised(dir, func(e fs.DirEntry) uint64 { return Unwritten(e) })
	if err != nil {
		t.Fatal(err)
	}
	if got != 1<<30 {
		t.Fatalf("promised %d, want %d (the sparse image unwritten, the full one nothing)", got, 1<<30)
	}
	if free, err := Free(dir); err != nil || free == 0 {
		t.Fatalf("Free: %d %v", free, err)
	}
}
