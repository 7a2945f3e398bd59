// Package atomicfile writes files so that a crash or a power cut leaves
// either the old file or the whole new one, never a part: the data goes to
// a temporary file in the same directory, which is fsynced and then
// renamed (or linked) into place, and the directory is fsynced so that the
// new name survives too. Every file grid4 must find intact after a crash
// (seed files, the upgrader's state, the hub's records, flist blocks,
// provisioning tables) is written through this package.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// ErrNotDurable is wrapped by the error of a write whose file is in place
// but whose directory could not be synced: it is there now, and may not be
// after a crash.
var ErrNotDurable = errors.New("the file is in place but may not survive a crash")

// SyncDir makes the entries of dir durable: a rename, link or removal in
// dir survives a crash once SyncDir has returned. On Windows, where a
// directory cannot be opened for sync and a rename is durable on its own,
// it does nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// WriteFile replaces path with data, mode perm, atomically and durably.
// The temporary file is named after path, starting with a dot (so that
// listings skipping dot files never show it): ".<name>.tmp-<random>".
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	tmp, err := WriteTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*", data, perm)
	if err != nil {
		return err
	}
	return Rename(tmp, path)
}

// Create writes data to path, mode perm, atomically and durably, unless
// something is there already: then it reports false and leaves it as it
// is. The new file is hard-linked into place (a link, unlike a rename,
// never replaces), so the first complete copy wins and readers never see a
// file change: the rule of content-addressed stores.
func Create(path string, data []byte, perm fs.FileMode) (bool, error) {
	return create(path, data, perm, true)
}

// CreateScratch is Create without the fsyncs, for files a crash may lose
// (a store being built before upload): a file is still never seen half
// written while the machine runs.
func CreateScratch(path string, data []byte, perm fs.FileMode) (bool, error) {
	return create(path, data, perm, false)
}

func create(path string, data []byte, perm fs.FileMode, durable bool) (bool, error) {
	dir := filepath.Dir(path)
	tmp, err := writeTemp(dir, ".tmp-*", data, perm, durable)
	if err != nil {
		return false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, err
	}
	if durable {
		if err := SyncDir(dir); err != nil {
			return true, fmt.Errorf("%w: %w", ErrNotDurable, err)
		}
	}
	return true, nil
}

// WriteTemp writes data, mode perm, to a new file in dir named from
// pattern as os.CreateTemp names it, fsyncs it and returns its path: the
// first half of WriteFile, for a caller that has something to do between
// the write and the rename (see Rename). On error nothing is left behind.
func WriteTemp(dir, pattern string, data []byte, perm fs.FileMode) (string, error) {
	return writeTemp(dir, pattern, data, perm, true)
}

func writeTemp(dir, pattern string, data []byte, perm fs.FileMode, durable bool) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), perm)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Rename renames the complete file tmp to path and syncs the directory of
// path: the second half of WriteFile. When the rename fails, tmp is
// removed; when the sync fails, the error wraps ErrNotDurable.
func Rename(tmp, path string) error {
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("%w: %w", ErrNotDurable, err)
	}
	return nil
}
