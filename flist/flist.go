package flist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format is the value of the "format" member of an flist document.
const Format = "grid4-flist/1"

// Limits of the format. A document, entry or block beyond them is invalid.
const (
	// MaxBlockSize is the largest block (uncompressed), 1 MiB.
	MaxBlockSize = 1 << 20
	// MaxDocumentSize bounds an flist document, 64 MiB: about 400 000
	// files of a few blocks each.
	MaxDocumentSize = 64 << 20
	// MaxEntries bounds the number of entries of an flist.
	MaxEntries = 1 << 20
	// MaxPathLength bounds a path or symlink target, in bytes (PATH_MAX).
	MaxPathLength = 4096
	// MaxComponentLength bounds one component of a path (NAME_MAX).
	MaxComponentLength = 255
)

// EntryType is the kind of an entry.
type EntryType string

// Entry types.
const (
	TypeDir     EntryType = "dir"
	TypeFile    EntryType = "file"
	TypeSymlink EntryType = "symlink"
)

// BlockRef is one block of a file: the SHA-256 of its uncompressed bytes
// and their number.
type BlockRef struct {
	// ID is the SHA-256 of the block's uncompressed bytes.
	ID ID
	// Size is their number, 1 to MaxBlockSize.
	Size int64
}

// Entry is a directory, regular file or symbolic link of an flist.
type Entry struct {
	// Path is relative to the root of the tree, components separated by
	// "/", clean (no "." or ".." component, no empty component, no leading
	// or trailing slash).
	Path string
	// Type is the kind of entry.
	Type EntryType
	// Mode holds the permission bits (at most 0o777) of a directory or
	// file; 0 for a symlink. Materialize only keeps whether a file is
	// executable: the tree it writes is read-only.
	Mode fs.FileMode
	// Mtime is the modification time in Unix seconds, 0 when not recorded
	// (the default of Build, so that a tree gives the same flist whenever
	// it is built). Symlinks have none.
	Mtime int64
	// Size is the length of a file; 0 for the others.
	Size int64
	// Blocks are a file's content, in order; their sizes add up to Size.
	Blocks []BlockRef
	// Target is a symlink's target: relative, and resolving inside the
	// tree (see Validate).
	Target string
}

// Flist is a tree: entries sorted by path, every parent directory listed
// before its children. The root directory is implicit.
type Flist struct {
	// Entries are the directories, files and symlinks, sorted by path.
	Entries []Entry
	// Image is how to run the tree when it was built from a container
	// image (entrypoint, environment, ...); nil for a plain package, whose
	// document then has no "image" member.
	Image *Image
}

// ID returns the identity of f: the SHA-256 of its canonical document.
// It encodes the whole document; keep the result rather than calling it in
// a loop.
func (f *Flist) ID() ID { return Sum(f.Encode()) }

// Size returns the total length of the files.
func (f *Flist) Size() int64 {
	var n int64
	for i := range f.Entries {
		n += f.Entries[i].Size
	}
	return n
}

// Blocks returns every distinct block of f once, in the order of first use.
func (f *Flist) Blocks() []BlockRef {
	seen := make(map[ID]bool)
	var out []BlockRef
	for i := range f.Entries {
		for _, b := range f.Entries[i].Blocks {
			if !seen[b.ID] {
				seen[b.ID] = true
				out = append(out, b)
			}
		}
	}
	return out
}

// Encode returns the canonical document of f (docs/flist.md): JSON without
// insignificant white space, members in a fixed (sorted) order, per-type
// members only, strings escaped only where JSON requires it. It does not
// validate f; an invalid f encodes to a document Parse refuses.
func (f *Flist) Encode() []byte {
	var b bytes.Buffer
	b.Grow(64 + 120*len(f.Entries))
	b.WriteString(`{"entries":[`)
	for i := range f.Entries {
		if i > 0 {
			b.WriteByte(',')
		}
		encodeEntry(&b, &f.Entries[i])
	}
	b.WriteString(`],"format":`)
	writeString(&b, Format)
	if f.Image != nil {
		b.WriteString(`,"image":`)
		encodeImage(&b, f.Image)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func encodeEntry(b *bytes.Buffer, e *Entry) {
	var num [20]byte
	b.WriteByte('{')
	if e.Type == TypeFile {
		b.WriteString(`"blocks":[`)
		for i, blk := range e.Blocks {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"id":"`)
			b.WriteString(blk.ID.String())
			b.WriteString(`","size":`)
			b.Write(strconv.AppendInt(num[:0], blk.Size, 10))
			b.WriteByte('}')
		}
		b.WriteString(`],`)
	}
	if e.Type != TypeSymlink {
		b.WriteString(`"mode":`)
		b.Write(strconv.AppendUint(num[:0], uint64(e.Mode), 10))
		b.WriteByte(',')
		if e.Mtime != 0 {
			b.WriteString(`"mtime":`)
			b.Write(strconv.AppendInt(num[:0], e.Mtime, 10))
			b.WriteByte(',')
		}
	}
	b.WriteString(`"path":`)
	writeString(b, e.Path)
	if e.Type == TypeFile {
		b.WriteString(`,"size":`)
		b.Write(strconv.AppendInt(num[:0], e.Size, 10))
	}
	if e.Type == TypeSymlink {
		b.WriteString(`,"target":`)
		writeString(b, e.Target)
	}
	b.WriteString(`,"type":`)
	writeString(b, string(e.Type))
	b.WriteByte('}')
}

// writeString writes s as a JSON string escaping '"' and '\', and control
// characters (U+0001 to U+001F, U+007F) as \u00xx in lowercase hex. Paths
// and targets contain no control characters, so for them the first two
// are the only escapes; image strings may hold a tab or a newline. One
// spelling per character keeps the canonical form trivial to reproduce.
func writeString(b *bytes.Buffer, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			b.WriteString(`\u00`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// wire types decode a document; Parse then checks that re-encoding gives
// back the same bytes, which refuses unknown or duplicate members, other
// member orders, white space, escapes and number spellings in one go.
type wireFlist struct {
	Entries []wireEntry `json:"entries"`
	Format  string      `json:"format"`
	Image   *wireImage  `json:"image"`
}

type wireEntry struct {
	Blocks []wireBlock `json:"blocks"`
	Mode   uint32      `json:"mode"`
	Mtime  int64       `json:"mtime"`
	Path   string      `json:"path"`
	Size   int64       `json:"size"`
	Target string      `json:"target"`
	Type   string      `json:"type"`
}

type wireBlock struct {
	ID   ID    `json:"id"`
	Size int64 `json:"size"`
}

// Parse decodes and validates an flist document. It accepts only the
// canonical encoding of a valid flist, so one tree has exactly one document
// and one ID. Errors wrap ErrInvalid.
func Parse(data []byte) (*Flist, error) {
	if len(data) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: document is %d bytes, limit %d", ErrInvalid, len(data), MaxDocumentSize)
	}
	var w wireFlist
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if w.Format != Format {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrInvalid, truncate(w.Format), Format)
	}
	if len(w.Entries) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, limit %d", ErrInvalid, len(w.Entries), MaxEntries)
	}
	f := &Flist{Entries: make([]Entry, len(w.Entries))}
	for i, we := range w.Entries {
		e := Entry{
			Path: we.Path, Type: EntryType(we.Type), Mode: fs.FileMode(we.Mode), Mtime: we.Mtime,
			Size: we.Size, Target: we.Target,
		}
		if we.Mode > 0o777 {
			return nil, fmt.Errorf("%w: entry %q: mode %#o has bits beyond 0777", ErrInvalid, truncate(we.Path), we.Mode)
		}
		if we.Blocks != nil {
			e.Blocks = make([]BlockRef, len(we.Blocks))
			for j, b := range we.Blocks {
				e.Blocks[j] = BlockRef(b)
			}
		}
		f.Entries[i] = e
	}
	if w.Image != nil {
		wi := w.Image
		f.Image = &Image{Entrypoint: wi.Entrypoint, Cmd: wi.Cmd, Env: wi.Env, WorkingDir: wi.WorkingDir, User: wi.User}
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if !bytes.Equal(f.Encode(), data) {
		return nil, fmt.Errorf("%w: document is not in canonical form (member order, white space, escapes or numbers differ from docs/flist.md)", ErrInvalid)
	}
	return f, nil
}

// Validate checks every rule of the format (docs/flist.md): paths clean,
// relative and sorted; parents are directories listed earlier; modes and
// sizes in range; blocks adding up to each file's size; symlink targets
// relative and resolving inside the tree even through other symlinks; the
// image metadata, if any, within its limits (Image.Validate). Errors wrap
// ErrInvalid.
func (f *Flist) Validate() error {
	if len(f.Entries) > MaxEntries {
		return fmt.Errorf("%w: %d entries, limit %d", ErrInvalid, len(f.Entries), MaxEntries)
	}
	if f.Image != nil {
		if err := f.Image.Validate(); err != nil {
			return err
		}
	}
	byPath := make(map[string]*Entry, len(f.Entries))
	prev := ""
	for i := range f.Entries {
		e := &f.Entries[i]
		if err := checkPath(e.Path); err != nil {
			return fmt.Errorf("%w: entry %d: %w", ErrInvalid, i, err)
		}
		if i > 0 && e.Path <= prev {
			return fmt.Errorf("%w: entry %q: entries must be sorted by path (byte order) without duplicates; it follows %q", ErrInvalid, e.Path, prev)
		}
		prev = e.Path
		if parent := path.Dir(e.Path); parent != "." {
			p, ok := byPath[parent]
			if !ok || p.Type != TypeDir {
				return fmt.Errorf("%w: entry %q: parent %q is not a directory listed before it", ErrInvalid, e.Path, parent)
			}
		}
		if err := checkEntry(e); err != nil {
			return fmt.Errorf("%w: entry %q: %w", ErrInvalid, e.Path, err)
		}
		byPath[e.Path] = e
	}
	r := newResolver(byPath)
	for i := range f.Entries {
		e := &f.Entries[i]
		if e.Type != TypeSymlink {
			continue
		}
		if _, _, err := r.link(strings.Split(e.Path, "/")); err != nil {
			return fmt.Errorf("%w: symlink %q -> %q: %w", ErrInvalid, e.Path, e.Target, err)
		}
	}
	return nil
}

func checkEntry(e *Entry) error {
	switch e.Type {
	case TypeDir, TypeFile:
		if e.Mode&^fs.ModePerm != 0 {
			return fmt.Errorf("mode %#o has bits beyond 0777", uint32(e.Mode))
		}
		if e.Mtime < 0 {
			return fmt.Errorf("negative mtime %d", e.Mtime)
		}
		if e.Target != "" {
			return fmt.Errorf("a %s has no target", e.Type)
		}
	case TypeSymlink:
		if e.Mode != 0 || e.Mtime != 0 || e.Size != 0 || e.Blocks != nil {
			return fmt.Errorf("a symlink has only a path and a target")
		}
		if e.Target == "" {
			return fmt.Errorf("empty symlink target")
		}
		if len(e.Target) > MaxPathLength {
			return fmt.Errorf("symlink target longer than %d bytes", MaxPathLength)
		}
		if err := checkText(e.Target); err != nil {
			return fmt.Errorf("symlink target: %w", err)
		}
		if strings.HasPrefix(e.Target, "/") {
			return fmt.Errorf("absolute symlink target %q (targets must be relative and stay inside the tree)", truncate(e.Target))
		}
		return nil
	default:
		return fmt.Errorf("type %q: want dir, file or symlink", truncate(string(e.Type)))
	}
	if e.Type == TypeDir {
		if e.Size != 0 || e.Blocks != nil {
			return fmt.Errorf("a directory has no size or blocks")
		}
		return nil
	}
	if e.Blocks == nil {
		return fmt.Errorf("a file needs a blocks list (empty for an empty file)")
	}
	var sum int64
	for j, b := range e.Blocks {
		if b.Size < 1 || b.Size > MaxBlockSize {
			return fmt.Errorf("block %d (%s): size %d, want 1 to %d", j, b.ID, b.Size, MaxBlockSize)
		}
		sum += b.Size
	}
	if sum != e.Size {
		return fmt.Errorf("size %d but its blocks hold %d bytes", e.Size, sum)
	}
	return nil
}

// checkPath enforces the path rules of docs/flist.md.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case len(p) > MaxPathLength:
		return fmt.Errorf("path longer than %d bytes", MaxPathLength)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path %q", truncate(p))
	}
	if err := checkText(p); err != nil {
		return fmt.Errorf("path %q: %w", truncate(p), err)
	}
	for _, c := range strings.Split(p, "/") {
		switch {
		case c == "":
			return fmt.Errorf("path %q has an empty component (a doubled or trailing slash)", truncate(p))
		case c == "." || c == "..":
			return fmt.Errorf("path %q has a %q component", truncate(p), c)
		case len(c) > MaxComponentLength:
			return fmt.Errorf("path %q has a component longer than %d bytes", truncate(p), MaxComponentLength)
		}
	}
	return nil
}

// checkText refuses invalid UTF-8 and control characters, which no sane
// file name has and which would need JSON escapes.
func checkText(s string) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("control character %U", r)
		}
	}
	return nil
}

// resolver follows symlink targets the way the kernel would inside the
// tree. The resolution of a symlink depends only on the link (its target is
// relative to its own directory), so each one is resolved once and
// remembered: a hostile document cannot make validation exponential.
type resolver struct {
	tree  map[string]*Entry
	done  map[string]resolved
	depth int
}

// maxSymlinkDepth bounds nested symlink expansion, as Linux does (ELOOP),
// which also bounds the recursion.
const maxSymlinkDepth = 40

type resolved struct {
	cur  []string
	stop bool
	err  error
}

// errLoop is the result recorded for a link while it is being resolved:
// meeting it again means the link leads back to itself.
var errLoop = errors.New("symlink loop")

func newResolver(tree map[string]*Entry) *resolver {
	return &resolver{tree: tree, done: make(map[string]resolved)}
}

// link resolves the symlink at p (its components, p != nil).
func (r *resolver) link(p []string) ([]string, bool, error) {
	key := strings.Join(p, "/")
	if v, ok := r.done[key]; ok {
		return v.cur, v.stop, v.err
	}
	if r.depth >= maxSymlinkDepth {
		return nil, false, fmt.Errorf("more than %d nested symlinks", maxSymlinkDepth)
	}
	r.depth++
	r.done[key] = resolved{err: errLoop}
	cur, stop, err := r.resolve(p[:len(p)-1], r.tree[key].Target)
	r.depth--
	r.done[key] = resolved{cur: cur, stop: stop, err: err}
	return cur, stop, err
}

// resolve follows target from directory dir (components from the root),
// expanding the symlinks met on the way, the last one too. It fails when
// resolution leaves the root (a ".." above it, or an absolute target) or
// loops. It stops early, successfully, where the kernel's resolution would
// fail (a missing entry, a file used as a directory): nothing outside the
// tree can be reached from there.
func (r *resolver) resolve(dir []string, target string) (cur []string, stop bool, err error) {
	if strings.HasPrefix(target, "/") {
		return nil, false, fmt.Errorf("absolute target %q", truncate(target))
	}
	cur = append([]string(nil), dir...)
	comps := strings.Split(target, "/")
	for i, c := range comps {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, false, fmt.Errorf("leads outside the tree")
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, c)
		e, ok := r.tree[strings.Join(cur, "/")]
		if !ok {
			return cur, true, nil
		}
		switch e.Type {
		case TypeFile:
			if slices.ContainsFunc(comps[i+1:], func(s string) bool { return s != "" && s != "." }) {
				return cur, true, nil
			}
		case TypeSymlink:
			next, stop, err := r.link(cur)
			if err != nil || stop {
				return next, stop, err
			}
			cur = append([]string(nil), next...)
		}
	}
	return cur, false, nil
}
