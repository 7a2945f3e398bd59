// Package zmount is the type manager of ZMount workloads: raw disks for
// machines, made as sparse files of the asked size in the node's data
// directory.
//
// A sparse file takes no disk blocks until written, so the manager keeps
// the promise of the size itself: a disk is only made (or grown) when the
// file system has room for it and for the unwritten part of every other
// disk in the directory.
package zmount

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/internal/diskspace"
)

// ErrNoSpace is wrapped when the file system cannot hold a disk.
var ErrNoSpace = diskspace.ErrNoSpace

// ext is the file name extension of disk images.
const ext = ".img"

// FreeSpace reports the bytes available to the node in the file system of
// path.
type FreeSpace func(path string) (uint64, error)

// Statfs is the real FreeSpace: the blocks available to unprivileged users
// times the block size.
func Statfs(path string) (uint64, error) { return diskspace.Free(path) }

// Manager makes ZMount disks in a directory.
type Manager struct {
	dir  string
	free FreeSpace
	// mu serializes the space check with the file creation, so two disks
	// cannot both take the last free gigabytes.
	mu sync.Mutex
}

// New returns a manager keeping disks in dir (created if needed). free nil
// means Statfs.
func New(dir string, free FreeSpace) (*Manager, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("zmount: %w", err)
	}
	if free == nil {
		free = Statfs
	}
	return &Manager{dir: dir, free: free}, nil
}

// Result is what a ZMount workload reports.
type Result struct {
	// Path is the disk image on the node.
	Path string `json:"path"`
	// Size is its size in bytes.
	Size uint64 `json:"size"`
}

// Path is where the disk of t lives.
func (m *Manager) Path(t provisiond.Task) string {
	return filepath.Join(m.dir, t.ID()+ext)
}

// Provision makes the disk: a sparse file of the asked size. An existing
// disk of that size is kept as it is (the call is idempotent); one of
// another size is resized (grown only).
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.ZMountData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("zmount: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	path := m.Path(t)
	st, err := os.Stat(path)
	switch {
	case err == nil:
		return m.resize(path, st, d.Size)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("zmount: %w", err)
	}
	if err := m.reserve(d.Size); err != nil {
		return nil, err
	}
	// Made under a temporary name and renamed: a crash leaves either no
	// disk or a complete one, never one of the wrong size.
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("zmount: %w", err)
	}
	err = f.Truncate(int64(d.Size))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("zmount: create %s: %w", path, err)
	}
	_ = atomicfile.SyncDir(m.dir)
	return Result{Path: path, Size: d.Size}, nil
}

// Update grows the disk to the new size (validation refuses shrinking).
func (m *Manager) Update(ctx context.Context, t provisiond.Task) (any, error) {
	return m.Provision(ctx, t)
}

func (m *Manager) resize(path string, st fs.FileInfo, size uint64) (any, error) {
	cur := uint64(st.Size())
	if cur == size {
		return Result{Path: path, Size: size}, nil
	}
	if size < cur {
		return nil, fmt.Errorf("zmount: %s is %d bytes; a disk cannot shrink to %d", path, cur, size)
	}
	if err := m.reserve(size - cur); err != nil {
		return nil, err
	}
	if err := os.Truncate(path, int64(size)); err != nil {
		return nil, fmt.Errorf("zmount: grow %s: %w", path, err)
	}
	return Result{Path: path, Size: size}, nil
}

// reserve checks that the file system holds size more bytes on top of the
// unwritten parts of the existing disks.
func (m *Manager) reserve(size uint64) error {
	if err := diskspace.Reserve(m.dir, size, m.free, m.promised, "disk"); err != nil {
		return fmt.Errorf("zmount: %w", err)
	}
	return nil
}

// promised is what existing disks may still write: their sizes minus the
// blocks they hold.
func (m *Manager) promised() (uint64, error) {
	return diskspace.Promised(m.dir, func(e fs.DirEntry) uint64 {
		if !strings.HasSuffix(e.Name(), ext) {
			return 0
		}
		return diskspace.Unwritten(e)
	})
}

// Deprovision removes the disk (and a half-made one).
func (m *Manager) Deprovision(_ context.Context, t provisiond.Task) error {
	path := m.Path(t)
	for _, p := range []string{path, path + ".tmp"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("zmount: %w", err)
		}
	}
	_ = atomicfile.SyncDir(m.dir)
	return nil
}
