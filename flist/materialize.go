package flist

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grid4/grid4/internal/atomicfile"
)

// BlockSource provides the content of blocks to Materialize.
type BlockSource interface {
	// Block returns the uncompressed bytes of the block ref names.
	// Materialize checks them against ref (size and SHA-256) before
	// writing them, so a source may be untrusted.
	Block(ctx context.Context, ref BlockRef) ([]byte, error)
}

// BlockSourceFunc adapts a function to BlockSource.
type BlockSourceFunc func(ctx context.Context, ref BlockRef) ([]byte, error)

// Block calls f.
func (f BlockSourceFunc) Block(ctx context.Context, ref BlockRef) ([]byte, error) {
	return f(ctx, ref)
}

// Modes of a materialised tree: read-only for everyone, executable where
// the flist says a file is (any x bit) and for every directory.
const (
	ModeFile       fs.FileMode = 0o444
	ModeExecutable fs.FileMode = 0o555
	ModeDir        fs.FileMode = 0o555
)

// tempInfix names the temporary directory Materialize builds in, next to
// the target: ".<target name>.flist-<random>".
const tempInfix = ".flist-"

// Materialize writes the tree of f into dir, which must not exist (its
// parent must). It validates f, builds the tree in a temporary directory
// next to dir (so on the same file system), checks every block it writes
// (ErrCorruptBlock: nothing is written from a block that does not match),
// syncs everything to disk, makes the tree read-only (ModeFile,
// ModeExecutable, ModeDir) and then renames it to dir in one step: dir
// either does not exist or holds the whole tree. On failure the temporary
// directory is removed. A temporary directory left for the same target by
// an interrupted earlier call is removed first, so do not materialise one
// target from two places at once.
func Materialize(ctx context.Context, f *Flist, dir string, src BlockSource) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("flist: materialize: %w", err)
	}
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("flist: materialize: %s: %w", dir, ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("flist: materialize: %w", err)
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	removeStale(parent, base)
	tmp, err := os.MkdirTemp(parent, "."+base+tempInfix)
	if err != nil {
		return fmt.Errorf("flist: materialize: %w", err)
	}
	done := false
	defer func() {
		if !done {
			_ = RemoveTree(tmp)
		}
	}()
	if err := populate(ctx, f, tmp, src); err != nil {
		return fmt.Errorf("flist: materialize %s: %w", dir, err)
	}
	if err := renameNoReplace(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("flist: materialize: %s: %w", dir, ErrExist)
		}
		return fmt.Errorf("flist: materialize: %w", err)
	}
	done = true
	if err := atomicfile.SyncDir(parent); err != nil {
		return fmt.Errorf("flist: materialize: syncing %s: %w", parent, err)
	}
	return nil
}

// populate writes the entries under root, then seals the directories.
func populate(ctx context.Context, f *Flist, root string, src BlockSource) error {
	for i := range f.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		e := &f.Entries[i]
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		switch e.Type {
		case TypeDir:
			// Writable by us until every child is in place.
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
		case TypeSymlink:
			if err := os.Symlink(e.Target, p); err != nil {
				return err
			}
		case TypeFile:
			if err := writeFile(ctx, p, e, src); err != nil {
				return err
			}
		}
	}
	// Deepest first: a directory's mtime is set once its children exist,
	// and it is synced after them.
	for i := len(f.Entries) - 1; i >= 0; i-- {
		e := &f.Entries[i]
		if e.Type != TypeDir {
			continue
		}
		if err := seal(filepath.Join(root, filepath.FromSlash(e.Path)), ModeDir, e.Mtime); err != nil {
			return err
		}
		if err := atomicfile.SyncDir(filepath.Join(root, filepath.FromSlash(e.Path))); err != nil {
			return err
		}
	}
	if err := seal(root, ModeDir, 0); err != nil {
		return err
	}
	return atomicfile.SyncDir(root)
}

// writeFile writes one file from its blocks, checking each.
func writeFile(ctx context.Context, p string, e *Entry, src BlockSource) (err error) {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	for _, b := range e.Blocks {
		data, err := src.Block(ctx, b)
		if err != nil {
			return fmt.Errorf("%s: block %s: %w", e.Path, b.ID, err)
		}
		if int64(len(data)) != b.Size || Sum(data) != b.ID {
			return fmt.Errorf("%w: %s: block %s: the source gave %d bytes that do not match it", ErrCorruptBlock, e.Path, b.ID, len(data))
		}
		if _, err := out.Write(data); err != nil {
			return err
		}
	}
	if err := out.Sync(); err != nil {
		return err
	}
	mode := ModeFile
	if e.Mode&0o111 != 0 {
		mode = ModeExecutable
	}
	return seal(p, mode, e.Mtime)
}

// seal sets the final mode and, when recorded, the mtime.
func seal(p string, mode fs.FileMode, mtime int64) error {
	if err := os.Chmod(p, mode); err != nil {
		return err
	}
	if mtime != 0 {
		t := time.Unix(mtime, 0)
		return os.Chtimes(p, t, t)
	}
	return nil
}

// removeStale removes the temporary directories an interrupted
// Materialize of parent/base left behind.
func removeStale(parent, base string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	prefix := "." + base + tempInfix
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			_ = RemoveTree(filepath.Join(parent, e.Name()))
		}
	}
}

// RemoveTree removes dir and everything below it, read-only directories
// included (os.RemoveAll cannot empty a directory it may not write to).
func RemoveTree(dir string) error {
	st, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o700)
			}
			return nil
		})
	}
	return os.RemoveAll(dir)
}
