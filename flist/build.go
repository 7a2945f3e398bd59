package flist

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// BlockSink receives the blocks of a tree being built.
type BlockSink interface {
	// PutBlock stores a block: id is the SHA-256 of its uncompressed
	// bytes, stored its encoded form (EncodeBlock). Build calls it once per
	// distinct block, from several goroutines at once.
	PutBlock(ctx context.Context, id ID, stored []byte) error
}

// BlockSinkFunc adapts a function to BlockSink.
type BlockSinkFunc func(ctx context.Context, id ID, stored []byte) error

// PutBlock calls f.
func (f BlockSinkFunc) PutBlock(ctx context.Context, id ID, stored []byte) error {
	return f(ctx, id, stored)
}

// Builder builds flists from directories. The zero value is ready to use.
type Builder struct {
	// KeepMtimes records modification times. Off by default so that the
	// same tree always gives the same flist ID, wherever and whenever it
	// was checked out.
	KeepMtimes bool
	// Workers compress and store blocks in parallel (0: GOMAXPROCS).
	Workers int
}

// Build makes an flist of the tree at dir with a zero Builder.
func Build(ctx context.Context, dir string, sink BlockSink) (*Flist, error) {
	return Builder{}.Build(ctx, dir, sink)
}

// Build makes an flist of the tree at dir (dir itself is the implicit
// root): directories, regular files cut into blocks of MaxBlockSize bytes
// (the last one shorter), and symlinks. Each distinct block goes to sink
// once. Permission bits beyond 0777 (setuid, setgid, sticky) are dropped.
// Devices, FIFOs and sockets are refused (ErrUnsupportedFile), and so is a
// tree the format cannot describe (a symlink leading outside it, a
// non-UTF-8 name: ErrInvalid).
func (b Builder) Build(ctx context.Context, dir string, sink BlockSink) (*Flist, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("flist: build: %w", err)
	}
	if st, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("flist: build: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("flist: build: %s is not a directory", dir)
	}
	cut := NewCutter(ctx, sink, b.Workers)
	var entries []Entry
	walkErr := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		e, err := b.entry(root, p, d, cut)
		if err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err := cut.Wait(); err != nil {
		return nil, err
	}
	if walkErr != nil {
		if errors.Is(walkErr, ErrUnsupportedFile) {
			return nil, fmt.Errorf("flist: build: %w", walkErr)
		}
		return nil, fmt.Errorf("flist: build %s: %w", dir, walkErr)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	f := &Flist{Entries: entries}
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("flist: build %s: %w", dir, err)
	}
	return f, nil
}

// entry describes the file at p (d, below root), cutting a regular file's
// content with cut.
func (b Builder) entry(root, p string, d fs.DirEntry, cut *Cutter) (Entry, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Path: filepath.ToSlash(rel)}
	info, err := d.Info()
	if err != nil {
		return Entry{}, err
	}
	if b.KeepMtimes && d.Type()&fs.ModeSymlink == 0 {
		e.Mtime = max(info.ModTime().Unix(), 0)
	}
	switch t := d.Type(); {
	case t.IsDir():
		e.Type, e.Mode = TypeDir, info.Mode().Perm()
	case t&fs.ModeSymlink != 0:
		e.Type = TypeSymlink
		if e.Target, err = os.Readlink(p); err != nil {
			return Entry{}, err
		}
	case t.IsRegular():
		e.Type, e.Mode = TypeFile, info.Mode().Perm()
		f, err := os.Open(p)
		if err != nil {
			return Entry{}, err
		}
		e.Blocks, e.Size, err = cut.Cut(f)
		f.Close()
		if err != nil {
			return Entry{}, err
		}
	default:
		return Entry{}, fmt.Errorf("%w: %s is a %s", ErrUnsupportedFile, p, describeType(t))
	}
	return e, nil
}

func describeType(t fs.FileMode) string {
	switch {
	case t&fs.ModeNamedPipe != 0:
		return "FIFO"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
