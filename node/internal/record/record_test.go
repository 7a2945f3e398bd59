package record

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestIDs(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"b": `{"id":"2-1-b"}`, "a": `{"id":"1-1-a"}`, "torn": `{"id":"3-`, "noid": `{}`} {
		os.MkdirAll(filepath.Join(dir, name), 0o700)
		os.WriteFile(filepath.Join(dir, name, "spec.json"), []byte(content), 0o600)
	}
	os.MkdirAll(filepath.Join(dir, "empty"), 0o700)
	ids, err := IDs(dir)
	if err != nil || !slices.Equal(ids, []string{"1-1-a", "2-1-b"}) {
		t.Fatalf("IDs = %q, %v", ids, err)
	}
	if ids, err := IDs(filepath.Join(dir, "missing")); err != nil || len(ids) != 0 {
		t.Fatalf("no directory: %q, %v", ids, err)
	}
}
