// Package ocitest writes container image archives from files in memory,
// for tests: `docker save` tarballs and OCI image layouts (a directory or
// a tar), with plain or gzip-compressed layers.
//
//	path := ocitest.Archive(t, t.TempDir(), ocitest.Image{
//		Name: "busybox:latest",
//		Layers: []ocitest.Layer{
//			{"bin/busybox": ocitest.FileFrom("/bin/busybox", 0o755)},
//			{"www/index.html": ocitest.Text("hello\n", 0o644)},
//		},
//		Config: ocitest.Config{Entrypoint: []string{"/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"}},
//	})
package ocitest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Format is an archive format.
type Format int

// Archive formats.
const (
	// DockerSave is what `docker save` writes: a tar with manifest.json,
	// the image configuration and one layer.tar per layer.
	DockerSave Format = iota
	// OCILayout is an OCI image layout directory: oci-layout, index.json
	// and blobs/sha256/.
	OCILayout
	// OCIArchive is an OCI image layout in a tar file (`skopeo copy ...
	// oci-archive:`, `docker buildx build -o type=oci`).
	OCIArchive
)

// File is an entry of a layer. The zero value is an empty regular file
// (what a whiteout is).
type File struct {
	// Type is the tar type flag; 0 is a regular file (tar.TypeReg).
	Type byte
	// Mode holds the permission bits (and setuid, setgid, sticky); 0 is
	// 0644 for a file, 0755 for a directory.
	Mode int64
	// Data is a regular file's content.
	Data []byte
	// Source is a file whose content is the entry's, read when the
	// archive is written (instead of Data).
	Source string
	// Target is a symlink's or hard link's target, written as is.
	Target string
	// Uid and Gid own the entry.
	Uid, Gid int
}

// Text is a regular file holding s.
func Text(s string, mode fs.FileMode) File { return File{Data: []byte(s), Mode: int64(mode)} }

// Bytes is a regular file holding b.
func Bytes(b []byte, mode fs.FileMode) File { return File{Data: b, Mode: int64(mode)} }

// FileFrom is a regular file with the content of the file at path (read
// when the archive is written), e.g. FileFrom("/bin/busybox", 0o755).
func FileFrom(path string, mode fs.FileMode) File { return File{Source: path, Mode: int64(mode)} }

// Dir is a directory.
func Dir(mode fs.FileMode) File { return File{Type: tar.TypeDir, Mode: int64(mode)} }

// Symlink is a symbolic link to target.
func Symlink(target string) File { return File{Type: tar.TypeSymlink, Target: target} }

// Hardlink is a hard link to target, a path from the image's root.
func Hardlink(target string) File { return File{Type: tar.TypeLink, Target: target} }

// Whiteout is the entry that deletes a lower layer's DIR/NAME when named
// DIR/.wh.NAME.
func Whiteout() File { return File{} }

// Opaque is the entry that hides everything lower layers have in DIR when
// named DIR/.wh..wh..opq.
func Opaque() File { return File{} }

// Device is a character device node (which an flist cannot hold).
func Device() File { return File{Type: tar.TypeChar, Mode: 0o666} }

// Layer is a layer's entries by path. They are written sorted by path,
// which puts a directory before its content and whiteouts before the
// other entries of their directory. Use Tar for another order.
type Layer map[string]File

// Entry is a file at a path, for Tar.
type Entry struct {
	Path string
	File File
}

// Config is the part of the image configuration a test sets.
type Config struct {
	Entrypoint, Cmd, Env []string
	WorkingDir, User     string
}

// Image is one image of an archive.
type Image struct {
	// Name is its reference (busybox:latest): RepoTags in a docker save
	// archive, the org.opencontainers.image.ref.name annotation in an
	// OCI layout. "": none.
	Name string
	// Layers are applied in order, then Tars.
	Layers []Layer
	// Tars are more layers, given as tar files (from Tar, or hostile ones
	// written by hand), applied after Layers.
	Tars [][]byte
	// Config is the configuration.
	Config Config
	// Platform is OS/ARCH[/VARIANT] ("": linux/amd64).
	Platform string
	// Format and Gzip are Archive's: the format, and whether layers are
	// gzip-compressed (OCI formats) or the whole tar is (DockerSave, as
	// `docker save | gzip`).
	Format Format
	Gzip   bool
}

// Archive writes img in img.Format as a new file or directory in dir and
// returns its path. It fails the test if anything goes wrong.
func Archive(t testing.TB, dir string, img Image) string {
	t.Helper()
	p, err := newPath(dir, img.Format, img.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(p, img.Format, img.Gzip, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func newPath(dir string, format Format, gz bool) (string, error) {
	if format == OCILayout {
		return os.MkdirTemp(dir, "image-oci-")
	}
	pattern := "image-*.tar"
	if gz && format == DockerSave {
		pattern += ".gz"
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

// Tar returns a layer holding entries in the order given, their paths and
// targets written as they are.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	b, err := tarOf(entries)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixed is the modification time of every entry: archives are
// reproducible.
var fixed = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func tarOf(entries []Entry) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		f := e.File
		hdr := &tar.Header{Name: e.Path, Typeflag: f.Type, Mode: f.Mode, Uid: f.Uid, Gid: f.Gid, ModTime: fixed, Linkname: f.Target, Format: tar.FormatPAX}
		data := f.Data
		switch f.Type {
		case 0, tar.TypeReg:
			hdr.Typeflag = tar.TypeReg
			if hdr.Mode == 0 {
				hdr.Mode = 0o644
			}
			if f.Source != "" {
				var err error
				if data, err = os.ReadFile(f.Source); err != nil {
					return nil, err
				}
			}
			hdr.Size = int64(len(data))
		case tar.TypeDir:
			if hdr.Mode == 0 {
				hdr.Mode = 0o755
			}
			if !strings.HasSuffix(hdr.Name, "/") {
				hdr.Name += "/"
			}
		case tar.TypeSymlink, tar.TypeLink:
			if hdr.Mode == 0 {
				hdr.Mode = 0o777
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("ocitest: %s: %w", e.Path, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (l Layer) tar() ([]byte, error) {
	paths := make([]string, 0, len(l))
	for p := range l {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	entries := make([]Entry, len(paths))
	for i, p := range paths {
		entries[i] = Entry{Path: p, File: l[p]}
	}
	return tarOf(entries)
}

// blob is a file of an archive, named by its content's digest.
type blob struct {
	data []byte
	hex  string
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{data: data, hex: hex.EncodeToString(sum[:])}
}

func (b blob) digest() string { return "sha256:" + b.hex }

// built is an image's blobs.
type built struct {
	img     Image
	layers  []blob // as stored (compressed or not)
	diffIDs []string
	config  blob
}

func build(img Image, gz bool) (*built, error) {
	b := &built{img: img}
	var tars [][]byte
	for _, l := range img.Layers {
		t, err := l.tar()
		if err != nil {
			return nil, err
		}
		tars = append(tars, t)
	}
	tars = append(tars, img.Tars...)
	for _, t := range tars {
		b.diffIDs = append(b.diffIDs, newBlob(t).digest())
		stored := t
		if gz {
			var z bytes.Buffer
			zw := gzip.NewWriter(&z)
			_, _ = zw.Write(t)
			_ = zw.Close()
			stored = z.Bytes()
		}
		b.layers = append(b.layers, newBlob(stored))
	}
	osName, arch, variant := "linux", "amd64", ""
	if img.Platform != "" {
		parts := strings.SplitN(img.Platform, "/", 3)
		if len(parts) < 2 {
			return nil, fmt.Errorf("ocitest: platform %q: want OS/ARCH[/VARIANT]", img.Platform)
		}
		osName, arch = parts[0], parts[1]
		if len(parts) == 3 {
			variant = parts[2]
		}
	}
	cfg := map[string]any{
		"architecture": arch,
		"os":           osName,
		"created":      fixed.Format(time.RFC3339),
		"config": map[string]any{
			"Entrypoint": img.Config.Entrypoint, "Cmd": img.Config.Cmd, "Env": img.Config.Env,
			"WorkingDir": img.Config.WorkingDir, "User": img.Config.User,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": b.diffIDs},
	}
	if variant != "" {
		cfg["variant"] = variant
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	b.config = newBlob(data)
	return b, nil
}

// Write writes imgs as one archive at path in format (a directory for
// OCILayout, which must not exist or be empty; a file otherwise). gz
// compresses the layers (OCI formats) or the whole file (DockerSave).
// Layers the images share are stored once.
func Write(path string, format Format, gz bool, imgs ...Image) error {
	files := map[string][]byte{}
	var order []string
	put := func(name string, data []byte) {
		if _, ok := files[name]; !ok {
			order = append(order, name)
		}
		files[name] = data
	}
	if format == DockerSave {
		var manifest []map[string]any
		for _, img := range imgs {
			b, err := build(img, false)
			if err != nil {
				return err
			}
			var layers []string
			for _, l := range b.layers {
				name := l.hex + "/layer.tar"
				put(name, l.data)
				layers = append(layers, name)
			}
			put(b.config.hex+".json", b.config.data)
			tags := []string{}
			if img.Name != "" {
				tags = append(tags, img.Name)
			}
			manifest = append(manifest, map[string]any{"Config": b.config.hex + ".json", "RepoTags": tags, "Layers": layers})
		}
		m, err := json.Marshal(manifest)
		if err != nil {
			return err
		}
		put("manifest.json", m)
		return writeTar(path, files, order, gz)
	}

	var index []map[string]any
	layerType := "application/vnd.oci.image.layer.v1.tar"
	if gz {
		layerType += "+gzip"
	}
	for _, img := range imgs {
		b, err := build(img, gz)
		if err != nil {
			return err
		}
		var layers []map[string]any
		for _, l := range b.layers {
			put("blobs/sha256/"+l.hex, l.data)
			layers = append(layers, map[string]any{"mediaType": layerType, "digest": l.digest(), "size": len(l.data)})
		}
		put("blobs/sha256/"+b.config.hex, b.config.data)
		m, err := json.Marshal(map[string]any{
			"schemaVersion": 2,
			"mediaType":     "application/vnd.oci.image.manifest.v1+json",
			"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": b.config.digest(), "size": len(b.config.data)},
			"layers":        layers,
		})
		if err != nil {
			return err
		}
		mb := newBlob(m)
		put("blobs/sha256/"+mb.hex, m)
		desc := map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mb.digest(), "size": len(m)}
		if img.Name != "" {
			desc["annotations"] = map[string]string{"org.opencontainers.image.ref.name": img.Name}
		}
		index = append(index, desc)
	}
	idx, err := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})
	if err != nil {
		return err
	}
	put("index.json", idx)
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	if format == OCIArchive {
		return writeTar(path, files, order, false)
	}
	for _, name := range order {
		p := filepath.Join(path, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[name], 0o644); err != nil {
			return err
		}
	}
	return nil
}

// writeTar writes files (with their directories) as a tar at p.
func writeTar(p string, files map[string][]byte, order []string, gz bool) error {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	for _, name := range order {
		if d := path.Dir(name); d != "." && !dirs[d] {
			for _, sub := range parents(d) {
				if !dirs[sub] {
					dirs[sub] = true
					if err := tw.WriteHeader(&tar.Header{Name: sub + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: fixed}); err != nil {
						return err
					}
				}
			}
		}
		data := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: fixed}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	out := b.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		_, _ = zw.Write(out)
		_ = zw.Close()
		out = z.Bytes()
	}
	return os.WriteFile(p, out, 0o644)
}

// parents lists d and its ancestors, outermost first.
func parents(d string) []string {
	var out []string
	for ; d != "." && d != "/"; d = path.Dir(d) {
		out = append(out, d)
	}
	slices.Reverse(out)
	return out
}
