package flist

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyTree: a materialised tree verifies against its flist; a
// changed byte in any block, a lost executable bit, a retargeted link, a
// missing or an added file do not.
func TestVerifyTree(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"bin/":       "",
		"bin/tool":   "#!/bin/sh\necho hi\n",
		"etc/config": "key = value\n",
		"etc/link":   "->config",
	})
	if err := os.Chmod(filepath.Join(src, "bin/tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := randomBytes(t, MaxBlockSize+10)
	if err := os.WriteFile(filepath.Join(src, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f, err := Build(context.Background(), src, store)
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() string {
		dir := filepath.Join(t.TempDir(), "tree")
		if err := Materialize(context.Background(), f, dir, store); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if err := VerifyTree(f, fresh()); err != nil {
		t.Fatalf("a materialised tree: %v", err)
	}
	writable := func(dir, p string) string {
		full := filepath.Join(dir, p)
		_ = os.Chmod(filepath.Dir(full), 0o755)
		_ = os.Chmod(full, 0o644)
		return full
	}
	for _, c := range []struct {
		name, want string
		damage     func(dir string)
	}{
		{"second block", "big.bin: block", func(dir string) {
			b := append([]byte(nil), big...)
			b[MaxBlockSize+3] ^= 1
			os.WriteFile(writable(dir, "big.bin"), b, 0o644)
		}},
		{"exec bit", "bin/tool: executable bits", func(dir string) { os.Chmod(filepath.Join(dir, "bin/tool"), 0o444) }},
		{"link", `etc/link is not a link to "config"`, func(dir string) {
			p := writable(dir, "etc/link")
			os.Remove(p)
			os.Symlink("../bin/tool", p)
		}},
		{"missing", "etc/config", func(dir string) { os.Remove(writable(dir, "etc/config")) }},
		{"added", "bin/extra is not in the flist", func(dir string) {
			os.Chmod(filepath.Join(dir, "bin"), 0o755)
			os.WriteFile(filepath.Join(dir, "bin", "extra"), []byte("x"), 0o755)
		}},
	} {
		dir := fresh()
		c.damage(dir)
		err := VerifyTree(f, dir)
		if !errors.Is(err, ErrTreeMismatch) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrTreeMismatch saying %q", c.name, err, c.want)
		}
	}
}
