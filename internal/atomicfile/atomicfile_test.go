package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, data := range []string{"one", "two"} {
		if err := WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != data {
			t.Fatalf("read %q %v, want %q", b, err, data)
		}
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	onlyFiles(t, dir, "state.json")
}

func TestCreateNeverReplaces(t *testing.T) {
	for name, create := range map[string]func(string, []byte, fs.FileMode) (bool, error){"Create": Create, "CreateScratch": CreateScratch} {
		dir := t.TempDir()
		p := filepath.Join(dir, "block")
		if ok, err := create(p, []byte("first"), 0o644); !ok || err != nil {
			t.Fatalf("%s: %v %v", name, ok, err)
		}
		if ok, err := create(p, []byte("second"), 0o644); ok || err != nil {
			t.Fatalf("%s over an existing file: %v %v", name, ok, err)
		}
		if b, _ := os.ReadFile(p); string(b) != "first" {
			t.Fatalf("%s replaced the file: %q", name, b)
		}
		if st, _ := os.Stat(p); st.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v", name, st.Mode())
		}
		onlyFiles(t, dir, "block")
	}
}

func TestWriteTempAndRename(t *testing.T) {
	dir := t.TempDir()
	tmp, err := WriteTemp(dir, "x.tmp-*", []byte("data"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := Rename(tmp, filepath.Join(dir, "x")); err != nil {
		t.Fatal(err)
	}
	onlyFiles(t, dir, "x")
	tmp, err = WriteTemp(dir, "y.tmp-*", nil, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := Rename(tmp, filepath.Join(dir, "missing", "y")); err == nil {
		t.Fatal("renamed into a missing directory")
	}
	onlyFiles(t, dir, "x")
	if _, err := WriteTemp(filepath.Join(dir, "missing"), "*", nil, 0o644); err == nil {
		t.Fatal("wrote into a missing directory")
	}
	if err := SyncDir(dir); err != nil {
		t.Fatal(err)
	}
}

// onlyFiles fails unless dir holds exactly names: no temporary file is
// left behind.
func onlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("%s holds %v, want %v", dir, got, names)
		}
	}
}
