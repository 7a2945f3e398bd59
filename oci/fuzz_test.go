package oci_test

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/oci"
	"github.com/grid4/grid4/oci/ocitest"
)

// discard is a sink keeping nothing: the fuzzers look at the trees.
var discard = flist.BlockSinkFunc(func(context.Context, flist.ID, []byte) error { return nil })

// FuzzLayer converts images whose second layer is arbitrary tar bytes, on
// top of a first layer with symlinks to climb through. Convert must never
// panic, and whatever it accepts must be a valid flist (paths inside the
// root, symlinks resolving inside the tree).
func FuzzLayer(f *testing.F) {
	for _, entries := range [][]ocitest.Entry{
		{{Path: "a/b", File: ocitest.Text("x", 0o644)}, {Path: "a/.wh.b", File: ocitest.Whiteout()}},
		{{Path: "up/etc/x", File: ocitest.Text("x", 0o644)}, {Path: "h", File: ocitest.Hardlink("up/etc/x")}},
		{{Path: "l", File: ocitest.Symlink("/../../x")}, {Path: "l2", File: ocitest.Symlink("l/../..")}},
		{{Path: "d/", File: ocitest.Dir(0o755)}, {Path: "d/.wh..wh..opq", File: ocitest.Opaque()}, {Path: "../x", File: ocitest.Text("x", 0o644)}},
	} {
		f.Add(ocitest.Tar(f, entries...))
	}
	base := ocitest.Layer{
		"up":      ocitest.Symlink("../.."),
		"abs":     ocitest.Symlink("/etc"),
		"etc/x":   ocitest.Text("x", 0o644),
		"loop":    ocitest.Symlink("loop/x"),
		"d/f":     ocitest.Text("f", 0o644),
		"d/s":     ocitest.Symlink("."),
		"usr/bin": ocitest.Dir(0o755),
		"bin":     ocitest.Symlink("usr/bin"),
	}
	f.Fuzz(func(t *testing.T, layer []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "image")
		if err := ocitest.Write(p, ocitest.OCILayout, false, ocitest.Image{Layers: []ocitest.Layer{base}, Tars: [][]byte{layer}}); err != nil {
			t.Fatal(err)
		}
		res, err := oci.Convert(context.Background(), p, discard, oci.Options{Workers: 1, MaxSize: 4 << 20})
		if err != nil {
			if strings.Contains(err.Error(), "cannot be an flist") {
				t.Fatalf("Convert built an invalid flist: %v", err)
			}
			return
		}
		if _, err := flist.Parse(res.Flist.Encode()); err != nil {
			t.Fatalf("the document does not parse: %v", err)
		}
		if list, _ := os.ReadDir(dir); len(list) != 1 {
			t.Fatalf("files appeared next to the archive: %v", list)
		}
	})
}

// FuzzArchive converts arbitrary archive files (seeded with small archives
// of each format): no panic, and a valid flist when it succeeds.
func FuzzArchive(f *testing.F) {
	img := ocitest.Image{Name: "a:1", Layers: []ocitest.Layer{{"a": ocitest.Text("a", 0o755), "l": ocitest.Symlink("/a")}}, Config: ocitest.Config{Cmd: []string{"/a"}}}
	for _, format := range []ocitest.Format{ocitest.DockerSave, ocitest.OCIArchive} {
		p := filepath.Join(f.TempDir(), "seed.tar")
		if err := ocitest.Write(p, format, false, img); err != nil {
			f.Fatal(err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, archive []byte) {
		p := filepath.Join(t.TempDir(), "image.tar")
		if err := os.WriteFile(p, archive, 0o644); err != nil {
			t.Fatal(err)
		}
		res, err := oci.Convert(context.Background(), p, discard, oci.Options{Workers: 1, TempDir: t.TempDir(), MaxSize: 4 << 20})
		if err != nil {
			if strings.Contains(err.Error(), "cannot be an flist") {
				t.Fatalf("Convert built an invalid flist: %v", err)
			}
			return
		}
		if _, err := flist.Parse(res.Flist.Encode()); err != nil {
			t.Fatalf("the document does not parse: %v", err)
		}
	})
}

// FuzzTree builds layers from the input, read as a program of entries
// (files, directories, symlinks, hard links, whiteouts, opaque markers,
// devices) whose paths and targets are made of a few names, "..", "." and
// whiteout prefixes, so that the tar is always well formed and the
// fuzzer explores how layers combine rather than tar checksums. Convert
// must never panic, and must either refuse the image or give a valid
// flist.
func FuzzTree(f *testing.F) {
	f.Add([]byte{2, 1, 8, 2, 3, 3, 3, 1, 0, 2, 8, 0, 7, 4, 2, 8, 0})
	f.Add([]byte{1, 1, 0, 0, 2, 0, 1, 5, 2, 2, 1, 0, 3, 1, 2, 2, 8, 8, 0})
	f.Add([]byte{2, 2, 8, 9, 1, 3, 7, 0, 2, 8, 0, 1, 1, 0, 3, 1, 2, 3, 0, 1})
	f.Fuzz(func(t *testing.T, prog []byte) {
		layers := decodeLayers(prog)
		tars := make([][]byte, len(layers))
		for i, l := range layers {
			tars[i] = ocitest.Tar(t, l...)
		}
		p := filepath.Join(t.TempDir(), "image")
		if err := ocitest.Write(p, ocitest.OCILayout, false, ocitest.Image{Tars: tars}); err != nil {
			t.Fatal(err)
		}
		res, err := oci.Convert(context.Background(), p, discard, oci.Options{Workers: 1})
		if err != nil {
			if strings.Contains(err.Error(), "cannot be an flist") {
				t.Fatalf("Convert built an invalid flist: %v\nlayers: %+v", err, layers)
			}
			return
		}
		if _, err := flist.Parse(res.Flist.Encode()); err != nil {
			t.Fatalf("the document does not parse: %v", err)
		}
	})
}

// decodeLayers reads prog as entries: an op byte, then a path, then (for
// links) a target; op 7 starts a new layer.
func decodeLayers(prog []byte) [][]ocitest.Entry {
	names := []string{"a", "b", "..", ".", "", ".wh.a", ".wh..wh..opq", "l", "m", "/"}
	next := func() byte {
		if len(prog) == 0 {
			return 0
		}
		b := prog[0]
		prog = prog[1:]
		return b
	}
	path := func() string {
		n := int(next()%4) + 1
		parts := make([]string, n)
		for i := range parts {
			parts[i] = names[int(next())%len(names)]
		}
		return strings.Join(parts, "/")
	}
	layers := [][]ocitest.Entry{nil}
	for len(prog) > 0 && len(layers) < 8 {
		var e ocitest.Entry
		switch op := next() % 8; op {
		case 0:
			e = ocitest.Entry{Path: path(), File: ocitest.Text("x", 0o644)}
		case 1:
			e = ocitest.Entry{Path: path(), File: ocitest.Dir(0o755)}
		case 2:
			e = ocitest.Entry{Path: path(), File: ocitest.Symlink(path())}
		case 3:
			e = ocitest.Entry{Path: path(), File: ocitest.Hardlink(path())}
		case 4:
			e = ocitest.Entry{Path: path() + "/.wh." + names[int(next())%len(names)], File: ocitest.Whiteout()}
		case 5:
			e = ocitest.Entry{Path: path() + "/.wh..wh..opq", File: ocitest.Opaque()}
		case 6:
			e = ocitest.Entry{Path: path(), File: ocitest.Device()}
		case 7:
			layers = append(layers, nil)
			continue
		}
		if e.File.Type != tar.TypeDir && strings.HasSuffix(e.Path, "/") {
			continue // only a directory's name may end with a slash in a tar
		}
		layers[len(layers)-1] = append(layers[len(layers)-1], e)
	}
	return layers
}
