package record

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

func TestStates(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"a", "b", "c"} {
		os.MkdirAll(filepath.Join(dir, id), 0o700)
		os.WriteFile(filepath.Join(dir, id, "spec.json"), []byte(`{"id":"`+id+`"}`), 0o600)
	}
	gone := errors.New("gone")
	state := func(_ context.Context, id string) (string, error) {
		if id == "b" {
			return "", fmt.Errorf("state of b: %w", gone)
		}
		return "state of " + id, nil
	}
	got, err := States(context.Background(), dir, state, gone)
	if err != nil || !slices.Equal(got, []string{"state of a", "state of c"}) {
		t.Fatalf("States = %q, %v", got, err)
	}
	broken := errors.New("broken")
	if _, err := States(context.Background(), dir, func(context.Context, string) (string, error) { return "", broken }, gone); !errors.Is(err, broken) {
		t.Fatalf("a failing state: %v", err)
	}
}

func TestReadWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	type spec struct {
		ID string `json:"id"`
	}
	if _, err := Read[spec](dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no record: %v", err)
	}
	if Holds(dir, []byte(`{"id":"a"}`)) {
		t.Fatal("Holds without a record")
	}
	if err := Write(dir, []byte(`{"id":"a"}`)); err != nil {
		t.Fatal(err)
	}
	if sp, err := Read[spec](dir); err != nil || sp.ID != "a" {
		t.Fatalf("Read = %+v, %v", sp, err)
	}
	if !Holds(dir, []byte(`{"id":"a"}`)) || Holds(dir, []byte(`{"id":"b"}`)) {
		t.Fatal("Holds does not compare the record")
	}
	if ids, err := IDs(filepath.Dir(dir)); err != nil || !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("IDs = %q, %v", ids, err)
	}
	os.WriteFile(File(dir), []byte(`{"id":`), 0o600)
	if _, err := Read[spec](dir); err == nil || errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), File(dir)) {
		t.Fatalf("a torn record: %v", err)
	}
}
