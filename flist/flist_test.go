package flist

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// writeTree creates files under dir: name -> content; a name ending in
// "/" is a directory, a content starting with "->" a symlink.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(name, "/")))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// countingSink is a DirStore that counts PutBlock calls per ID.
type countingSink struct {
	*DirStore
	mu    sync.Mutex
	calls map[ID]int
}

func newCountingSink(t *testing.T) *countingSink {
	s, err := NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.NoSync = true
	return &countingSink{DirStore: s, calls: map[ID]int{}}
}

func (c *countingSink) PutBlock(ctx context.Context, id ID, stored []byte) error {
	c.mu.Lock()
	c.calls[id]++
	c.mu.Unlock()
	return c.DirStore.PutBlock(ctx, id, stored)
}

func randomBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildMaterializeRoundTrip(t *testing.T) {
	src := t.TempDir()
	big := randomBytes(t, 2*MaxBlockSize+12345)
	writeTree(t, src, map[string]string{
		"bin/":             "",
		"bin/tool":         "#!/bin/sh\necho hi\n",
		"etc/config":       "key = value\n",
		"etc/empty":        "",
		"etc/link":         "->config",
		"lib/deep/x/":      "",
		"lib/libfoo.so":    "->../etc/config",
		"lib/dangling":     "->nowhere",
		"share/same-1.txt": strings.Repeat("same content\n", 1000),
		"share/same-2.txt": strings.Repeat("same content\n", 1000),
		"weird name \"q\"": "quoted",
	})
	if err := os.Chmod(filepath.Join(src, "bin/tool"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "share/big.bin"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	sink := newCountingSink(t)
	f, err := Build(context.Background(), src, sink)
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range sink.calls {
		if n != 1 {
			t.Errorf("block %s put %d times, want once", id, n)
		}
	}
	// same-1 and same-2 share their block; big has 3 blocks; bin/tool,
	// etc/config, weird name: 1 each.
	if got, want := len(f.Blocks()), 3+1+3; got != want {
		t.Errorf("distinct blocks %d, want %d", got, want)
	}
	if len(sink.calls) != len(f.Blocks()) {
		t.Errorf("sink got %d blocks, flist has %d", len(sink.calls), len(f.Blocks()))
	}

	// The document parses back to the same flist and the same ID.
	doc := f.Encode()
	g, err := Parse(doc)
	if err != nil {
		t.Fatalf("Parse(Encode()): %v\n%s", err, doc)
	}
	if g.ID() != f.ID() {
		t.Fatal("ID changed through Parse")
	}
	// Building again gives the same ID (no mtimes by default).
	f2, err := Build(context.Background(), src, BlockSinkFunc(func(context.Context, ID, []byte) error { return nil }))
	if err != nil || f2.ID() != f.ID() {
		t.Fatalf("second build: %v, same id %v", err, err == nil && f2.ID() == f.ID())
	}

	out := filepath.Join(t.TempDir(), "pkg")
	if err := Materialize(context.Background(), g, out, sink.DirStore); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(out, "share/big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("big.bin differs (err %v)", err)
	}
	for name, want := range map[string]string{"bin/tool": "#!/bin/sh\necho hi\n", "etc/empty": "", "weird name \"q\"": "quoted", "lib/libfoo.so": "key = value\n"} {
		b, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", name, b, err, want)
		}
	}
	modes := map[string]fs.FileMode{
		".": ModeDir | fs.ModeDir, "bin": ModeDir | fs.ModeDir, "lib/deep/x": ModeDir | fs.ModeDir,
		"bin/tool": ModeExecutable, "etc/config": ModeFile, "share/big.bin": ModeFile,
		"etc/link": fs.ModeSymlink, "lib/dangling": fs.ModeSymlink,
	}
	for name, want := range modes {
		st, err := os.Lstat(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		m := st.Mode()
		if m&fs.ModeSymlink != 0 {
			m = fs.ModeSymlink
		}
		if m != want {
			t.Errorf("%s: mode %v, want %v", name, m, want)
		}
	}
	if target, _ := os.Readlink(filepath.Join(out, "lib/libfoo.so")); target != "../etc/config" {
		t.Errorf("symlink target %q", target)
	}
	// Nothing is left next to the target.
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Errorf("parent holds %d entries, want only the tree", len(ents))
	}
	// A second materialisation into the same place is refused.
	if err := Materialize(context.Background(), g, out, sink.DirStore); !errors.Is(err, ErrExist) {
		t.Fatalf("materialize over existing: %v, want ErrExist", err)
	}
	if err := os.Mkdir(out+"2", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Materialize(context.Background(), g, out+"2", sink.DirStore); !errors.Is(err, ErrExist) {
		t.Fatalf("materialize over an empty dir: %v, want ErrExist", err)
	}
	if err := RemoveTree(out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("RemoveTree left %s: %v", out, err)
	}
}

func TestBuildKeepMtimes(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a/": "", "a/f": "x"})
	when := int64(1_700_000_000)
	for _, p := range []string{"a/f", "a"} {
		tm := unixTime(when)
		if err := os.Chtimes(filepath.Join(src, p), tm, tm); err != nil {
			t.Fatal(err)
		}
	}
	store := newCountingSink(t)
	f, err := Builder{KeepMtimes: true}.Build(context.Background(), src, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range f.Entries {
		if e.Mtime != when {
			t.Errorf("%s: mtime %d, want %d", e.Path, e.Mtime, when)
		}
	}
	out := filepath.Join(t.TempDir(), "t")
	if err := Materialize(context.Background(), f, out, store.DirStore); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "a/f"} {
		st, _ := os.Stat(filepath.Join(out, p))
		if st.ModTime().Unix() != when {
			t.Errorf("%s: mtime %v", p, st.ModTime())
		}
	}
}

func TestBuildRefusesEscapesAndSpecialFiles(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"absolute symlink": {"l": "->/etc/passwd"},
		"escaping symlink": {"d/": "", "d/l": "->../../x"},
	} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			writeTree(t, src, files)
			_, err := Build(context.Background(), src, newCountingSink(t))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

// memSource serves blocks from a map of content, optionally lying.
type memSource map[ID][]byte

func (m memSource) Block(_ context.Context, ref BlockRef) ([]byte, error) {
	b, ok := m[ref.ID]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}

func TestMaterializeRefusesBadBlocks(t *testing.T) {
	good := []byte("hello world")
	id := Sum(good)
	f := &Flist{Entries: []Entry{
		{Path: "a", Type: TypeFile, Mode: 0o644, Size: int64(len(good)), Blocks: []BlockRef{{ID: id, Size: int64(len(good))}}},
	}}
	parent := t.TempDir()
	out := filepath.Join(parent, "out")
	err := Materialize(context.Background(), f, out, memSource{id: []byte("hello WORLD")})
	if !errors.Is(err, ErrCorruptBlock) {
		t.Fatalf("got %v, want ErrCorruptBlock", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("left %d entries behind (%s)", len(ents), ents[0].Name())
	}
	// A failing source leaves nothing either.
	if err := Materialize(context.Background(), f, out, memSource{}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("left %d entries behind", len(ents))
	}
	// A stale temporary directory of an interrupted run is cleaned up.
	stale := filepath.Join(parent, ".out"+tempInfix+"123")
	if err := os.MkdirAll(filepath.Join(stale, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(stale, 0o555)
	if err := Materialize(context.Background(), f, out, memSource{id: good}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 1 {
		t.Fatalf("parent holds %d entries, want 1", len(ents))
	}
}

func TestDecodeBlock(t *testing.T) {
	data := bytes.Repeat([]byte("abc"), 1000)
	id := Sum(data)
	enc := EncodeBlock(data)
	if enc[0] != CodecDeflate || len(enc) >= len(data) {
		t.Fatalf("compressible data stored with codec %d, %d bytes", enc[0], len(enc))
	}
	if got, err := DecodeBlock(id, enc, int64(len(data))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("DecodeBlock: %v", err)
	}
	rnd := randomBytes(t, 4096)
	if enc := EncodeBlock(rnd); enc[0] != CodecRaw || len(enc) != len(rnd)+1 {
		t.Fatalf("random data: codec %d, %d bytes", enc[0], len(enc))
	}
	bomb := EncodeBlock(make([]byte, MaxBlockSize))
	// A DEFLATE stream of more than MaxBlockSize bytes.
	big := append([]byte{CodecDeflate}, deflate(t, make([]byte, MaxBlockSize+10))...)
	for name, c := range map[string]struct {
		stored []byte
		size   int64
		id     ID
	}{
		"other content":   {EncodeBlock([]byte("abd")), 3, Sum([]byte("abc"))},
		"wrong size":      {enc, 10, id},
		"unknown codec":   {append([]byte{7}, data...), int64(len(data)), id},
		"truncated":       {enc[:len(enc)/2], int64(len(data)), id},
		"empty":           {nil, 0, id},
		"empty raw":       {[]byte{CodecRaw}, 0, Sum(nil)},
		"too large":       {big, -1, Sum(make([]byte, MaxBlockSize+10))},
		"size of a bomb":  {bomb, 10, Sum(make([]byte, MaxBlockSize))},
		"oversize stored": {make([]byte, MaxStoredBlockSize+1), -1, id},
	} {
		if _, err := DecodeBlock(c.id, c.stored, c.size); !errors.Is(err, ErrCorruptBlock) {
			t.Errorf("%s: got %v, want ErrCorruptBlock", name, err)
		}
	}
}
