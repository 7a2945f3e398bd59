package oci_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/oci"
	"github.com/grid4/grid4/oci/ocitest"
)

// convert converts the archive at p into a block store of its own and
// returns the result and the tree it describes (see describe).
func convert(t *testing.T, p string, opts oci.Options) (*oci.Result, map[string]string) {
	t.Helper()
	res, store, err := tryConvert(t, p, opts)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	return res, describe(t, res.Flist, store)
}

func tryConvert(t *testing.T, p string, opts oci.Options) (*oci.Result, *flist.DirStore, error) {
	t.Helper()
	store, err := flist.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store.NoSync = true
	res, err := oci.Convert(context.Background(), p, store, opts)
	return res, store, err
}

// describe maps each path of f to "dir 755", "file 644 CONTENT" or
// "-> TARGET", reading contents from the store (checked).
func describe(t *testing.T, f *flist.Flist, store *flist.DirStore) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, e := range f.Entries {
		switch e.Type {
		case flist.TypeDir:
			out[e.Path] = fmt.Sprintf("dir %o", e.Mode)
		case flist.TypeSymlink:
			out[e.Path] = "-> " + e.Target
		case flist.TypeFile:
			var content []byte
			for _, b := range e.Blocks {
				data, err := store.Block(context.Background(), b)
				if err != nil {
					t.Fatal(err)
				}
				content = append(content, data...)
			}
			out[e.Path] = fmt.Sprintf("file %o %s", e.Mode, content)
		}
	}
	return out
}

func sameTree(t *testing.T, got, want map[string]string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		var lines []string
		for p, v := range got {
			if want[p] != v {
				lines = append(lines, fmt.Sprintf("  %s: got %q, want %q", p, v, want[p]))
			}
		}
		for p, v := range want {
			if _, ok := got[p]; !ok {
				lines = append(lines, fmt.Sprintf("  %s: missing, want %q", p, v))
			}
		}
		slices.Sort(lines)
		t.Fatalf("tree differs:\n%s", strings.Join(lines, "\n"))
	}
}

var formats = []struct {
	name   string
	format ocitest.Format
	gzip   bool
}{
	{"docker-save", ocitest.DockerSave, false},
	{"docker-save.gz", ocitest.DockerSave, true},
	{"oci-dir", ocitest.OCILayout, false},
	{"oci-dir-gzip-layers", ocitest.OCILayout, true},
	{"oci-tar", ocitest.OCIArchive, false},
	{"oci-tar-gzip-layers", ocitest.OCIArchive, true},
}

// TestLayersInOrder applies three layers in every archive format: later
// layers replace files, directories merge, parents are created, the
// configuration becomes the flist's image.
func TestLayersInOrder(t *testing.T) {
	for _, f := range formats {
		t.Run(f.name, func(t *testing.T) {
			img := ocitest.Image{
				Name:   "example.org/web:1.0",
				Format: f.format, Gzip: f.gzip,
				Layers: []ocitest.Layer{
					{
						"bin":           ocitest.Dir(0o755),
						"bin/sh":        ocitest.Text("sh v1", 0o755),
						"etc":           ocitest.Dir(0o755),
						"etc/motd":      ocitest.Text("hello", 0o644),
						"etc/secret":    ocitest.Text("s", 0o600),
						"usr/lib/x.so":  ocitest.Text("lib", 0o644), // parents implied
						"usr/bin/tool":  ocitest.Text("tool", 0o4755),
						"etc/link":      ocitest.Symlink("motd"),
						"etc/nhard":     ocitest.Hardlink("etc/motd"),
						"etc/dir2file":  ocitest.Dir(0o755),
						"etc/dir2file/": ocitest.Dir(0o755),
					},
					{
						"bin/sh":       ocitest.Text("sh v2", 0o755),
						"etc":          ocitest.Dir(0o700), // merges, new mode
						"etc/dir2file": ocitest.Text("now a file", 0o644),
					},
					{"www/index.html": ocitest.Text("<h1>hi</h1>", 0o644)},
				},
				Config: ocitest.Config{
					Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"},
					Env: []string{"PATH=/bin", "EMPTY=", "BROKEN"}, WorkingDir: "/www", User: "1000:1000",
				},
			}
			res, tree := convert(t, ocitest.Archive(t, t.TempDir(), img), oci.Options{})
			sameTree(t, tree, map[string]string{
				"bin":            "dir 755",
				"bin/sh":         "file 755 sh v2",
				"etc":            "dir 700",
				"etc/motd":       "file 644 hello",
				"etc/secret":     "file 600 s",
				"etc/link":       "-> motd",
				"etc/nhard":      "file 644 hello",
				"etc/dir2file":   "file 644 now a file",
				"usr":            "dir 755",
				"usr/lib":        "dir 755",
				"usr/lib/x.so":   "file 644 lib",
				"usr/bin":        "dir 755",
				"usr/bin/tool":   "file 755 tool",
				"www":            "dir 755",
				"www/index.html": "file 644 <h1>hi</h1>",
			})
			want := &flist.Image{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, Env: []string{"PATH=/bin", "EMPTY="}, WorkingDir: "/www", User: "1000:1000"}
			if !reflect.DeepEqual(res.Flist.Image, want) {
				t.Fatalf("image: %+v", res.Flist.Image)
			}
			if res.Name != "example.org/web:1.0" || len(res.Layers) != 3 || res.Layers[2].Index != 3 || res.Layers[0].Count != 3 || !strings.HasPrefix(res.Layers[0].DiffID, "sha256:") {
				t.Fatalf("result: %+v", res)
			}
			wantFormat := oci.FormatOCILayout
			if f.format == ocitest.DockerSave {
				wantFormat = oci.FormatDockerSave
			}
			if res.Format != wantFormat {
				t.Fatalf("format %s", res.Format)
			}
			notes := strings.Join(res.Notes, "\n")
			for _, want := range []string{"setuid, setgid and sticky bits dropped: 1 (usr/bin/tool)", "env entries that are not KEY=VALUE dropped: 1 (BROKEN)"} {
				if !strings.Contains(notes, want) {
					t.Fatalf("notes lack %q:\n%s", want, notes)
				}
			}
			// The document survives the round trip, image included.
			back, err := flist.Parse(res.Flist.Encode())
			if err != nil || !reflect.DeepEqual(back.Image, want) {
				t.Fatalf("parse: %v %+v", err, back)
			}
		})
	}
}

// TestWhiteouts deletes files and directories of lower layers, hides
// lower directories' content with opaque markers (whatever their place
// in the layer), and leaves what the same layer wrote.
func TestWhiteouts(t *testing.T) {
	lower := ocitest.Layer{
		"a/keep":        ocitest.Text("k", 0o644),
		"a/gone":        ocitest.Text("g", 0o644),
		"b/sub/deep":    ocitest.Text("d", 0o644),
		"b/top":         ocitest.Text("t", 0o644),
		"c/old":         ocitest.Text("o", 0o644),
		"c/sub/old":     ocitest.Text("o", 0o644),
		"d/old":         ocitest.Text("o", 0o644),
		"e/old":         ocitest.Text("o", 0o644),
		"link-to-a":     ocitest.Symlink("a"),
		"whiteout-link": ocitest.Symlink("a"),
	}
	upper := ocitest.Tar(t,
		ocitest.Entry{Path: "a/.wh.gone", File: ocitest.Whiteout()},
		ocitest.Entry{Path: "a/.wh.never-was", File: ocitest.Whiteout()},
		ocitest.Entry{Path: ".wh.b", File: ocitest.Whiteout()},
		ocitest.Entry{Path: "c/", File: ocitest.Dir(0o755)},
		ocitest.Entry{Path: "c/.wh..wh..opq", File: ocitest.Opaque()},
		ocitest.Entry{Path: "c/new", File: ocitest.Text("n", 0o644)},
		// The marker after what the layer wrote in the directory: that
		// stays, the lower content goes.
		ocitest.Entry{Path: "d/new", File: ocitest.Text("n", 0o644)},
		ocitest.Entry{Path: "d/.wh..wh..opq", File: ocitest.Opaque()},
		// A whiteout does not delete what its own layer wrote.
		ocitest.Entry{Path: "e/mine", File: ocitest.Text("m", 0o644)},
		ocitest.Entry{Path: "e/.wh.mine", File: ocitest.Whiteout()},
		ocitest.Entry{Path: "e/.wh.old", File: ocitest.Whiteout()},
		// A whiteout through a symlinked parent deletes in its target.
		ocitest.Entry{Path: "link-to-a/.wh.keep", File: ocitest.Whiteout()},
		ocitest.Entry{Path: ".wh.whiteout-link", File: ocitest.Whiteout()},
		// AUFS metadata is ignored.
		ocitest.Entry{Path: ".wh..wh.plnk/1.2", File: ocitest.Text("x", 0o644)},
		ocitest.Entry{Path: "e/plnk-link", File: ocitest.Hardlink(".wh..wh.plnk/1.2")},
	)
	for _, f := range formats[:3] {
		t.Run(f.name, func(t *testing.T) {
			p := ocitest.Archive(t, t.TempDir(), ocitest.Image{Format: f.format, Gzip: f.gzip, Layers: []ocitest.Layer{lower}, Tars: [][]byte{upper}})
			_, tree := convert(t, p, oci.Options{})
			sameTree(t, tree, map[string]string{
				"a":           "dir 755",
				"c":           "dir 755",
				"c/new":       "file 644 n",
				"d":           "dir 755",
				"d/new":       "file 644 n",
				"e":           "dir 755",
				"e/mine":      "file 644 m",
				"e/plnk-link": "file 644 x",
				"link-to-a":   "-> a",
			})
		})
	}
}

// TestSymlinks: absolute targets and targets climbing above the root are
// rewritten to the same file relative to the link; links that loop are
// dropped; a layer writing through a symlinked directory writes into its
// target, inside the image however the link points.
func TestSymlinks(t *testing.T) {
	l1 := ocitest.Layer{
		"usr/bin/env":     ocitest.Text("env", 0o755),
		"bin":             ocitest.Symlink("usr/bin"),
		"sbin":            ocitest.Symlink("/usr/bin"),
		"usr/lib/a.so.1":  ocitest.Text("a", 0o644),
		"usr/lib/a.so":    ocitest.Symlink("/usr/lib/a.so.1"),
		"usr/lib/up":      ocitest.Symlink("../../../../../usr/lib/a.so.1"),
		"usr/lib/root":    ocitest.Symlink("/"),
		"usr/lib/dangle":  ocitest.Symlink("/var/run/x.sock"),
		"usr/lib/rel":     ocitest.Symlink("../bin/env"),
		"loop1":           ocitest.Symlink("loop2"),
		"loop2":           ocitest.Symlink("/loop1"), // dangling once loop1 is dropped
		"self":            ocitest.Symlink("self/x"),
		"escape":          ocitest.Symlink("../../../etc"),
		"abs-escape":      ocitest.Symlink("/../../tmp"),
		"through":         ocitest.Symlink("bin/../lib"), // bin -> usr/bin, so usr/lib
		"usr/share/dir":   ocitest.Dir(0o755),
		"usr/share/tolib": ocitest.Symlink("/usr/lib/"),
	}
	l2 := ocitest.Layer{
		"bin/added":       ocitest.Text("via bin", 0o755),    // bin -> usr/bin
		"escape/passwd":   ocitest.Text("not host's", 0o644), // escape -> ../../../etc: the image's /etc
		"abs-escape/file": ocitest.Text("tmp", 0o644),
	}
	p := ocitest.Archive(t, t.TempDir(), ocitest.Image{Layers: []ocitest.Layer{l1, l2}})
	res, tree := convert(t, p, oci.Options{})
	sameTree(t, tree, map[string]string{
		"usr":             "dir 755",
		"usr/bin":         "dir 755",
		"usr/bin/env":     "file 755 env",
		"usr/bin/added":   "file 755 via bin",
		"bin":             "-> usr/bin",
		"sbin":            "-> usr/bin",
		"usr/lib":         "dir 755",
		"usr/lib/a.so.1":  "file 644 a",
		"usr/lib/a.so":    "-> a.so.1",
		"usr/lib/up":      "-> a.so.1",
		"usr/lib/root":    "-> ../..",
		"usr/lib/dangle":  "-> ../../var/run/x.sock",
		"usr/lib/rel":     "-> ../bin/env",
		"escape":          "-> etc",
		"etc":             "dir 755",
		"etc/passwd":      "file 644 not host's",
		"abs-escape":      "-> tmp",
		"tmp":             "dir 755",
		"tmp/file":        "file 644 tmp",
		"through":         "-> bin/../lib",
		"loop2":           "-> loop1",
		"usr/share":       "dir 755",
		"usr/share/dir":   "dir 755",
		"usr/share/tolib": "-> ../lib",
	})
	if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, "symlinks that loop (or nest more than 40 deep) dropped: 2 (loop1, self)") {
		t.Fatalf("notes: %s", notes)
	}
}

// TestHostileArchives: names leading out of the root, hard links to
// outside or to nothing, and a symlinked parent are either refused with
// ErrUnsafePath / ErrInvalidArchive, or land inside the image; the test
// also checks nothing appeared next to the archive.
func TestHostileArchives(t *testing.T) {
	refused := map[string]struct {
		entries []ocitest.Entry
		want    error
		msg     string
	}{
		"dot-dot name":        {[]ocitest.Entry{{Path: "../evil", File: ocitest.Text("x", 0o644)}}, oci.ErrUnsafePath, `"../evil" leads outside the image's root`},
		"dot-dot inside":      {[]ocitest.Entry{{Path: "a/../../evil", File: ocitest.Text("x", 0o644)}}, oci.ErrUnsafePath, "leads outside"},
		"absolute dot-dot":    {[]ocitest.Entry{{Path: "/../evil", File: ocitest.Text("x", 0o644)}}, oci.ErrUnsafePath, "leads outside"},
		"hard link out":       {[]ocitest.Entry{{Path: "h", File: ocitest.Hardlink("../../etc/passwd")}}, oci.ErrUnsafePath, "hard link"},
		"hard link to none":   {[]ocitest.Entry{{Path: "h", File: ocitest.Hardlink("etc/passwd")}}, oci.ErrInvalidArchive, `hard link to "etc/passwd", which does not exist`},
		"hard link to dir":    {[]ocitest.Entry{{Path: "d/", File: ocitest.Dir(0o755)}, {Path: "h", File: ocitest.Hardlink("d")}}, oci.ErrInvalidArchive, "a directory"},
		"file as parent":      {[]ocitest.Entry{{Path: "f", File: ocitest.Text("x", 0o644)}, {Path: "f/g", File: ocitest.Text("x", 0o644)}}, oci.ErrInvalidArchive, "its parent /f is not a directory"},
		"parent link loop":    {[]ocitest.Entry{{Path: "l", File: ocitest.Symlink("l")}, {Path: "l/x", File: ocitest.Text("x", 0o644)}}, oci.ErrInvalidArchive, "too many levels of symbolic links"},
		"control character":   {[]ocitest.Entry{{Path: "a\nb", File: ocitest.Text("x", 0o644)}}, oci.ErrUnsupported, "control character"},
		"not UTF-8":           {[]ocitest.Entry{{Path: "a\xffb", File: ocitest.Text("x", 0o644)}}, oci.ErrUnsupported, "not valid UTF-8"},
		"empty symlink":       {[]ocitest.Entry{{Path: "l", File: ocitest.Symlink("")}}, oci.ErrInvalidArchive, "empty target"},
		"whiteout of nothing": {[]ocitest.Entry{{Path: "a/.wh.", File: ocitest.Whiteout()}}, oci.ErrInvalidArchive, "names nothing"},
	}
	for name, c := range refused {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := ocitest.Archive(t, dir, ocitest.Image{Tars: [][]byte{ocitest.Tar(t, c.entries...)}})
			_, _, err := tryConvert(t, p, oci.Options{})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) || !strings.Contains(err.Error(), "layer 1") {
				t.Fatalf("got %v, want %v with %q", err, c.want, c.msg)
			}
			if list, _ := os.ReadDir(dir); len(list) != 1 {
				t.Fatalf("files appeared next to the archive: %v", list)
			}
		})
	}

	// Links pointing out, then used as parents, hard links through them:
	// everything stays in the image.
	dir := t.TempDir()
	p := ocitest.Archive(t, dir, ocitest.Image{Tars: [][]byte{ocitest.Tar(t,
		ocitest.Entry{Path: "up", File: ocitest.Symlink("../../../../..")},
		ocitest.Entry{Path: "abs", File: ocitest.Symlink("/")},
		ocitest.Entry{Path: "up/etc/shadow", File: ocitest.Text("1", 0o600)},
		ocitest.Entry{Path: "abs/root/.ssh/authorized_keys", File: ocitest.Text("2", 0o600)},
		ocitest.Entry{Path: "hard", File: ocitest.Hardlink("up/etc/shadow")},
		ocitest.Entry{Path: "dev/null", File: ocitest.Device()},
	)}})
	res, tree := convert(t, p, oci.Options{})
	sameTree(t, tree, map[string]string{
		"up":                        "-> .",
		"abs":                       "-> .",
		"etc":                       "dir 755",
		"etc/shadow":                "file 600 1",
		"root":                      "dir 755",
		"root/.ssh":                 "dir 755",
		"root/.ssh/authorized_keys": "file 600 2",
		"hard":                      "file 600 1",
		"dev":                       "dir 755",
	})
	if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, "device nodes, FIFOs and sockets skipped (an flist cannot hold them; the runtime provides /dev): 1 (dev/null)") {
		t.Fatalf("notes: %s", notes)
	}
	if list, _ := os.ReadDir(dir); len(list) != 1 {
		t.Fatalf("files appeared next to the archive: %v", list)
	}
}

// TestBadArchives: damaged blobs, missing files and malformed documents
// give the sentinel and a message naming what is wrong.
func TestBadArchives(t *testing.T) {
	img := ocitest.Image{
		Name:   "app:1",
		Layers: []ocitest.Layer{{"a": ocitest.Text(strings.Repeat("content ", 1000), 0o644)}, {"b": ocitest.Text("b", 0o644)}},
		Config: ocitest.Config{Cmd: []string{"/a"}},
	}
	// blobs finds an OCI layout's first layer, configuration and
	// manifest.
	blobs := func(t *testing.T, dir string) (layer, config, manifest string) {
		t.Helper()
		var index struct{ Manifests []struct{ Digest string } }
		var m struct {
			Config struct{ Digest string }
			Layers []struct{ Digest string }
		}
		data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		if err := json.Unmarshal(data, &index); err != nil {
			t.Fatal(err)
		}
		p := func(digest string) string {
			return filepath.Join(dir, "blobs/sha256", strings.TrimPrefix(digest, "sha256:"))
		}
		manifest = p(index.Manifests[0].Digest)
		data, _ = os.ReadFile(manifest)
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		return p(m.Layers[0].Digest), p(m.Config.Digest), manifest
	}
	flip := func(t *testing.T, p string, at int) {
		t.Helper()
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data[at%len(data)] ^= 0x01
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		gzip   bool
		damage func(t *testing.T, dir string)
		want   error
		msg    string
	}{
		"layer bit flip": {false, func(t *testing.T, dir string) {
			l, _, _ := blobs(t, dir)
			flip(t, l, 2000)
		}, oci.ErrDigestMismatch, "layer 1 (blobs/sha256/"},
		"gzip layer bit flip": {true, func(t *testing.T, dir string) {
			l, _, _ := blobs(t, dir)
			flip(t, l, 30)
		}, oci.ErrDigestMismatch, "layer 1 (blobs/sha256/"},
		"layer truncated": {false, func(t *testing.T, dir string) {
			l, _, _ := blobs(t, dir)
			data, _ := os.ReadFile(l)
			_ = os.WriteFile(l, data[:len(data)/2], 0o644)
		}, oci.ErrDigestMismatch, "layer 1"},
		"layer missing": {false, func(t *testing.T, dir string) {
			l, _, _ := blobs(t, dir)
			_ = os.Remove(l)
		}, oci.ErrInvalidArchive, "layer 1 (blobs/sha256/"},
		"config damaged": {false, func(t *testing.T, dir string) {
			_, c, _ := blobs(t, dir)
			flip(t, c, 5)
		}, oci.ErrDigestMismatch, "image config sha256:"},
		"manifest damaged": {false, func(t *testing.T, dir string) {
			_, _, m := blobs(t, dir)
			flip(t, m, 5)
		}, oci.ErrDigestMismatch, "manifest sha256:"},
		"no index": {false, func(t *testing.T, dir string) {
			_ = os.Remove(filepath.Join(dir, "index.json"))
		}, oci.ErrInvalidArchive, "neither manifest.json (docker save) nor index.json (OCI image layout) found"},
		"index not JSON": {false, func(t *testing.T, dir string) {
			_ = os.WriteFile(filepath.Join(dir, "index.json"), []byte("{"), 0o644)
		}, oci.ErrInvalidArchive, "index.json"},
		"sha512": {false, func(t *testing.T, dir string) {
			data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
			_ = os.WriteFile(filepath.Join(dir, "index.json"), []byte(strings.Replace(string(data), "sha256:", "sha512:", 1)), 0o644)
		}, oci.ErrUnsupported, "only sha256"},
		"blob escaping the layout": {false, func(t *testing.T, dir string) {
			_, _, m := blobs(t, dir)
			_ = os.Remove(m)
			_ = os.Symlink("/etc/passwd", m)
		}, oci.ErrInvalidArchive, "manifest sha256:"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			im := img
			im.Format, im.Gzip = ocitest.OCILayout, c.gzip
			dir := ocitest.Archive(t, t.TempDir(), im)
			c.damage(t, dir)
			_, _, err := tryConvert(t, dir, oci.Options{})
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v with %q", err, c.want, c.msg)
			}
		})
	}

	// docker save: the configuration's diff_ids check the layers.
	p := ocitest.Archive(t, t.TempDir(), img)
	data, _ := os.ReadFile(p)
	i := strings.Index(string(data), "content content")
	data[i] = 'C'
	_ = os.WriteFile(p, data, 0o644)
	_, _, err := tryConvert(t, p, oci.Options{})
	if !errors.Is(err, oci.ErrDigestMismatch) || !strings.Contains(err.Error(), "layer 1 content (diff_id) has digest") {
		t.Fatalf("docker save, damaged layer: %v", err)
	}

	// An extracted docker save whose manifest names files outside its
	// directory: they are not read.
	parent := t.TempDir()
	outside := ocitest.Archive(t, parent, ocitest.Image{Format: ocitest.OCILayout, Layers: img.Layers})
	extracted := filepath.Join(parent, "extracted")
	_ = os.Mkdir(extracted, 0o755)
	cfgs, _ := filepath.Glob(filepath.Join(outside, "blobs/sha256/*"))
	manifest := fmt.Sprintf(`[{"Config":"../%s/blobs/sha256/%s","RepoTags":["x:1"],"Layers":["../%s/blobs/sha256/%s"]}]`,
		filepath.Base(outside), filepath.Base(cfgs[0]), filepath.Base(outside), filepath.Base(cfgs[1]))
	_ = os.WriteFile(filepath.Join(extracted, "manifest.json"), []byte(manifest), 0o644)
	if _, _, err := tryConvert(t, extracted, oci.Options{}); !errors.Is(err, oci.ErrInvalidArchive) || !strings.Contains(err.Error(), "image config") || !strings.Contains(err.Error(), "escapes") {
		t.Fatalf("manifest naming files outside: %v", err)
	}

	for name, content := range map[string]string{"empty file": "", "not a tar": strings.Repeat("garbage ", 200)} {
		p := filepath.Join(t.TempDir(), "x.tar")
		_ = os.WriteFile(p, []byte(content), 0o644)
		_, _, err := tryConvert(t, p, oci.Options{})
		if !errors.Is(err, oci.ErrInvalidArchive) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, _, err := tryConvert(t, filepath.Join(t.TempDir(), "none.tar"), oci.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing archive: %v", err)
	}
}

// TestSelect picks one image of several by name and platform.
func TestSelect(t *testing.T) {
	shared := ocitest.Layer{"base": ocitest.Text("base", 0o644)}
	a := ocitest.Image{Name: "app:1", Layers: []ocitest.Layer{shared, {"app": ocitest.Text("1", 0o644)}}}
	b := ocitest.Image{Name: "docker.io/library/app:2", Layers: []ocitest.Layer{shared, {"app": ocitest.Text("2", 0o644)}}}
	arm := ocitest.Image{Name: "arm:1", Platform: "linux/arm64", Layers: []ocitest.Layer{shared}}
	for _, format := range []ocitest.Format{ocitest.DockerSave, ocitest.OCIArchive} {
		p := filepath.Join(t.TempDir(), "images.tar")
		if err := ocitest.Write(p, format, false, a, b, arm); err != nil {
			t.Fatal(err)
		}
		_, _, err := tryConvert(t, p, oci.Options{})
		if !errors.Is(err, oci.ErrNoImage) || !strings.Contains(err.Error(), "the archive holds 3 images (app:1, docker.io/library/app:2, arm:1): choose one by name") {
			t.Fatalf("%d: no name: %v", format, err)
		}
		for name, want := range map[string]string{"app:1": "file 644 1", "app:2": "file 644 2", "docker.io/library/app:1": "file 644 1"} {
			res, tree := convert(t, p, oci.Options{Image: name})
			if tree["app"] != want || tree["base"] != "file 644 base" {
				t.Fatalf("%d: %s: %v (%s)", format, name, tree, res.Name)
			}
		}
		if _, _, err := tryConvert(t, p, oci.Options{Image: "app:3"}); !errors.Is(err, oci.ErrNoImage) || !strings.Contains(err.Error(), "no image app:3") {
			t.Fatalf("%d: app:3: %v", format, err)
		}
		if _, _, err := tryConvert(t, p, oci.Options{Image: "arm:1"}); !errors.Is(err, oci.ErrNoImage) || !strings.Contains(err.Error(), "the image is for linux/arm64, not linux/amd64 (choose the platform linux/arm64") {
			t.Fatalf("%d: arm: %v", format, err)
		}
		if _, tree := convert(t, p, oci.Options{Image: "arm:1", Platform: "linux/arm64"}); tree["base"] == "" {
			t.Fatalf("%d: arm: %v", format, tree)
		}
	}
}

// TestSharedLayers: two images sharing a layer store its blocks once.
func TestSharedLayers(t *testing.T) {
	big := make([]byte, 3<<20)
	for i := range big {
		big[i] = byte(i * 7 / 5)
	}
	base := ocitest.Layer{"lib/big.so": ocitest.Bytes(big, 0o644)}
	dir := t.TempDir()
	p1 := ocitest.Archive(t, dir, ocitest.Image{Layers: []ocitest.Layer{base, {"app": ocitest.Text("one", 0o755)}}})
	p2 := ocitest.Archive(t, dir, ocitest.Image{Format: ocitest.OCIArchive, Gzip: true, Layers: []ocitest.Layer{base, {"app": ocitest.Text("two", 0o755)}}})
	var puts []flist.ID
	store, err := flist.NewDirStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sink := flist.BlockSinkFunc(func(ctx context.Context, id flist.ID, stored []byte) error {
		if !store.Has(id) {
			puts = append(puts, id)
		}
		return store.PutBlock(ctx, id, stored)
	})
	r1, err := oci.Convert(context.Background(), p1, sink, oci.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	first := len(puts)
	r2, err := oci.Convert(context.Background(), p2, sink, oci.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if first != 4 || len(puts) != 5 || len(r1.Flist.Blocks()) != 4 || len(r2.Flist.Blocks()) != 4 {
		t.Fatalf("blocks stored: %d then %d", first, len(puts)-first)
	}
}

// TestMaterialize writes a converted image as a tree: executable bits and
// symlinks as the image has them.
func TestMaterialize(t *testing.T) {
	p := ocitest.Archive(t, t.TempDir(), ocitest.Image{Layers: []ocitest.Layer{{
		"bin/hello": ocitest.Text("#!/bin/sh\necho hello from the image\n", 0o755),
		"bin/sh":    ocitest.Symlink("/bin/hello"),
	}}})
	res, store, err := tryConvert(t, p, oci.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := flist.Materialize(context.Background(), res.Flist, root, store); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = flist.RemoveTree(root) })
	if st, err := os.Stat(filepath.Join(root, "bin/sh")); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("bin/sh: %v %v", st, err)
	}
	if target, _ := os.Readlink(filepath.Join(root, "bin/sh")); target != "hello" {
		t.Fatalf("bin/sh -> %q", target)
	}
}

// TestDocker25Save reads what `docker save` writes since Docker 25: an OCI
// layout plus a manifest.json naming blobs/sha256/ files, whose names are
// then checked as digests too.
func TestDocker25Save(t *testing.T) {
	dir := ocitest.Archive(t, t.TempDir(), ocitest.Image{
		Format: ocitest.OCILayout, Name: "app:1",
		Layers: []ocitest.Layer{{"app": ocitest.Text("v1", 0o755)}},
		Config: ocitest.Config{Cmd: []string{"/app"}},
	})
	var index struct{ Manifests []struct{ Digest string } }
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	data, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	_ = json.Unmarshal(data, &index)
	data, _ = os.ReadFile(filepath.Join(dir, "blobs/sha256", strings.TrimPrefix(index.Manifests[0].Digest, "sha256:")))
	_ = json.Unmarshal(data, &m)
	blob := func(d string) string { return "blobs/sha256/" + strings.TrimPrefix(d, "sha256:") }
	manifest := fmt.Sprintf(`[{"Config":%q,"RepoTags":["app:1"],"Layers":[%q]}]`, blob(m.Config.Digest), blob(m.Layers[0].Digest))
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	res, tree := convert(t, dir, oci.Options{})
	if res.Format != oci.FormatDockerSave || tree["app"] != "file 755 v1" || res.Layers[0].Digest != m.Layers[0].Digest || res.Flist.Image.Cmd[0] != "/app" {
		t.Fatalf("%+v %v", res, tree)
	}
	// The layer blob's name is its digest: a changed blob is caught by it
	// (before the diff_id).
	layer := filepath.Join(dir, blob(m.Layers[0].Digest))
	data, _ = os.ReadFile(layer)
	if err := os.WriteFile(layer, append(data, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tryConvert(t, dir, oci.Options{}); !errors.Is(err, oci.ErrDigestMismatch) || !strings.Contains(err.Error(), "layer 1 (blobs/sha256/") {
		t.Fatalf("damaged: %v", err)
	}
}
