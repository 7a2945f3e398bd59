package oci

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Limits on what an archive may ask this package to hold in memory.
const (
	// maxJSON bounds a manifest, index or configuration document.
	maxJSON = 8 << 20
	// maxArchiveFiles bounds the files of a tar archive (an image of 100
	// layers has a few hundred).
	maxArchiveFiles = 1 << 16
)

// files is the content of an archive: a tar file or a directory.
type files interface {
	// open opens the regular file name (slash-separated, relative); the
	// error wraps fs.ErrNotExist when there is none.
	open(name string) (io.ReadCloser, error)
	has(name string) bool
	// size is the length of file name, -1 if there is none.
	size(name string) int64
	close() error
}

// openArchive opens the archive at p: a directory, or a tar file (gzip
// compressed or not; a compressed one is first decompressed into tempDir,
// since blobs are read in an order the tar does not follow).
func openArchive(p, tempDir string) (files, error) {
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		root, err := os.OpenRoot(p)
		if err != nil {
			return nil, err
		}
		return dirFiles{root}, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	var magic [4]byte
	n, _ := io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		tmp, err := gunzipToTemp(f, tempDir)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalidArchive, p, err)
		}
		f = tmp
	case n == 4 && bytes.Equal(magic[:], zstdMagic):
		f.Close()
		return nil, fmt.Errorf("%w: %s is zstd-compressed: decompress it first (zstd -d)", ErrUnsupported, p)
	}
	tf, err := indexTar(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidArchive, p, err)
	}
	return tf, nil
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// gunzipToTemp decompresses r into an unlinked temporary file.
func gunzipToTemp(r io.Reader, tempDir string) (*os.File, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(tempDir, "oci-archive-*.tar")
	if err != nil {
		return nil, err
	}
	// Unlinked at once: the open file is all that is needed, and nothing
	// is left behind whatever happens.
	_ = os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		return nil, err
	}
	return tmp, nil
}

// dirFiles reads an archive extracted to a directory. os.Root keeps every
// name the archive gives (manifest.json's layer paths) inside it, symlinks
// included.
type dirFiles struct{ root *os.Root }

func (d dirFiles) open(name string) (io.ReadCloser, error) {
	f, err := d.root.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: %w (not a regular file)", name, fs.ErrNotExist)
	}
	return f, nil
}

func (d dirFiles) has(name string) bool {
	st, err := d.root.Stat(name)
	return err == nil && st.Mode().IsRegular()
}

func (d dirFiles) size(name string) int64 {
	st, err := d.root.Stat(name)
	if err != nil || !st.Mode().IsRegular() {
		return -1
	}
	return st.Size()
}

func (d dirFiles) close() error { return d.root.Close() }

// tarFiles reads the regular files of a tar file in place: the index holds
// where each one's data starts.
type tarFiles struct {
	f     *os.File
	index map[string]tarFile
}

type tarFile struct{ off, size int64 }

// indexTar lists the regular files of the tar file f. archive/tar reads
// headers straight from f (no buffering), so after Next the file's offset
// is where the entry's data starts.
func indexTar(f *os.File) (*tarFiles, error) {
	t := &tarFiles{f: f, index: make(map[string]tarFile)}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a tar archive or an OCI layout directory: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if len(t.index) >= maxArchiveFiles {
			return nil, fmt.Errorf("more than %d files", maxArchiveFiles)
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, err
		}
		t.index[cleanName(hdr.Name)] = tarFile{off: off, size: hdr.Size}
	}
	return t, nil
}

// cleanName is the form under which archive files are looked up: relative,
// without "./" or "..".
func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (t *tarFiles) open(name string) (io.ReadCloser, error) {
	e, ok := t.index[cleanName(name)]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return io.NopCloser(io.NewSectionReader(t.f, e.off, e.size)), nil
}

func (t *tarFiles) has(name string) bool {
	_, ok := t.index[cleanName(name)]
	return ok
}

func (t *tarFiles) size(name string) int64 {
	if e, ok := t.index[cleanName(name)]; ok {
		return e.size
	}
	return -1
}

func (t *tarFiles) close() error { return t.f.Close() }

// digest is a parsed "sha256:<hex>".
type digest struct {
	hex string
}

func (d digest) String() string { return "sha256:" + d.hex }

// blobPath is where an OCI layout keeps the blob.
func (d digest) blobPath() string { return "blobs/sha256/" + d.hex }

func parseDigest(s string) (digest, error) {
	alg, h, ok := strings.Cut(s, ":")
	if !ok {
		return digest{}, fmt.Errorf("%w: digest %q: want sha256:<hex>", ErrInvalidArchive, trunc(s))
	}
	if alg != "sha256" {
		return digest{}, fmt.Errorf("%w: digest %q: only sha256 is supported", ErrUnsupported, trunc(s))
	}
	if len(h) != 64 || strings.ToLower(h) != h {
		return digest{}, fmt.Errorf("%w: digest %q: want 64 lowercase hex digits", ErrInvalidArchive, trunc(s))
	}
	if _, err := hex.DecodeString(h); err != nil {
		return digest{}, fmt.Errorf("%w: digest %q: want 64 lowercase hex digits", ErrInvalidArchive, trunc(s))
	}
	return digest{hex: h}, nil
}

// verifier passes a stream through and, at its end, checks its SHA-256
// (when want is set) and length (when size >= 0): a mismatch is returned
// by the Read that would have returned io.EOF, so nothing reading to the
// end can miss it.
type verifier struct {
	r    io.Reader
	what string
	want *digest
	size int64
	h    hash.Hash
	n    int64
	err  error
}

func newVerifier(r io.Reader, what string, want *digest, size int64) *verifier {
	return &verifier{r: r, what: what, want: want, size: size, h: sha256.New()}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.size >= 0 && v.n > v.size {
		v.err = fmt.Errorf("%w: %s is longer than its %d bytes", ErrDigestMismatch, v.what, v.size)
		return n, v.err
	}
	if err == io.EOF {
		err = v.check()
		if err == nil {
			err = io.EOF
		}
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

func (v *verifier) check() error {
	if v.size >= 0 && v.n != v.size {
		return fmt.Errorf("%w: %s has %d bytes, want %d", ErrDigestMismatch, v.what, v.n, v.size)
	}
	if v.want != nil {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want.hex {
			return fmt.Errorf("%w: %s has digest sha256:%s, want %s", ErrDigestMismatch, v.what, got, v.want)
		}
	}
	return nil
}

// drain reads v to its end and returns its verdict.
func (v *verifier) drain() error {
	_, err := io.Copy(io.Discard, v)
	return err
}

// readJSON reads and decodes the JSON file name of a, checking its digest
// and size when given.
func readJSON(a files, name, what string, want *digest, size int64, out any) error {
	r, err := a.open(name)
	if err != nil {
		return missing(what, name, err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(newVerifier(r, what, want, size), maxJSON+1))
	if err != nil {
		return err
	}
	if len(data) > maxJSON {
		return fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalidArchive, what, maxJSON)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidArchive, what, err)
	}
	return nil
}

// missing words the error of a file the archive refers to but lacks.
func missing(what, name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s (%s) is missing from the archive", ErrInvalidArchive, what, name)
	}
	return fmt.Errorf("%w: %s (%s): %w", ErrInvalidArchive, what, name, err)
}

// trunc shortens archive-provided text for error messages.
func trunc(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
