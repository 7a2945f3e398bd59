package flist

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// VerifyTree checks that dir holds exactly the tree Materialize writes
// for f: every entry of the type f gives, files of its size whose every
// block hashes to its id and executable where f says so, symlinks to their
// targets, and nothing else. It is Materialize's check of each block done
// again on a tree written earlier (the node's bootstrap checks so the
// generation it starts). Errors wrap ErrTreeMismatch, or are the file
// system's.
func VerifyTree(f *Flist, dir string) error {
	want := make(map[string]bool, len(f.Entries))
	for i := range f.Entries {
		e := &f.Entries[i]
		want[e.Path] = true
		if err := verifyEntry(e, filepath.Join(dir, filepath.FromSlash(e.Path))); err != nil {
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		if !want[filepath.ToSlash(rel)] {
			return fmt.Errorf("%w: %s is not in the flist", ErrTreeMismatch, filepath.ToSlash(rel))
		}
		return nil
	})
}

// verifyEntry checks one entry at p.
func verifyEntry(e *Entry, p string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrTreeMismatch, e.Path, err)
	}
	switch e.Type {
	case TypeDir:
		if !st.IsDir() {
			return fmt.Errorf("%w: %s is not a directory", ErrTreeMismatch, e.Path)
		}
	case TypeSymlink:
		target, err := os.Readlink(p)
		if err != nil || target != e.Target {
			return fmt.Errorf("%w: %s is not a link to %q", ErrTreeMismatch, e.Path, e.Target)
		}
	case TypeFile:
		if !st.Mode().IsRegular() || st.Size() != e.Size {
			return fmt.Errorf("%w: %s is not a file of %d bytes", ErrTreeMismatch, e.Path, e.Size)
		}
		if (st.Mode()&0o111 != 0) != (e.Mode&0o111 != 0) {
			return fmt.Errorf("%w: %s: executable bits %v, the flist says %v", ErrTreeMismatch, e.Path, st.Mode().Perm(), e.Mode)
		}
		return verifyBlocks(e, p)
	}
	return nil
}

// verifyBlocks hashes the file at p block by block against e.Blocks.
func verifyBlocks(e *Entry, p string) error {
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	h := sha256.New()
	for _, b := range e.Blocks {
		h.Reset()
		if _, err := io.CopyN(h, in, b.Size); err != nil {
			return fmt.Errorf("%w: %s: block %s: %w", ErrTreeMismatch, e.Path, b.ID, err)
		}
		if ID(h.Sum(nil)) != b.ID {
			return fmt.Errorf("%w: %s: block %s does not hash to its id", ErrTreeMismatch, e.Path, b.ID)
		}
	}
	return nil
}
