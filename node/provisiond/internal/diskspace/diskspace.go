// Package diskspace is the space accounting of the storage type managers
// (zmount disks, volumes). Their images are sparse: made at their full
// size, they take blocks only as they are written. A new one is made only
// when the file system can still hold every existing one written in full
// plus the new one, so that no workload meets a full disk it was promised.
package diskspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ErrNoSpace is wrapped by Reserve's refusal.
var ErrNoSpace = errors.New("not enough free space")

// Free is the real free-space function: the blocks of the file system
// holding path that unprivileged users may take, times the block size.
func Free(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// Reserve checks that the file system of dir, with free(dir) bytes free,
// holds size more bytes on top of promised(), what existing images may
// still write. what names the new image in the refusal ("disk": "... for a
// 1024-byte disk: 10 bytes free, 0 promised to existing disks").
func Reserve(dir string, size uint64, free func(string) (uint64, error), promised func() (uint64, error), what string) error {
	f, err := free(dir)
	if err != nil {
		return err
	}
	p, err := promised()
	if err != nil {
		return err
	}
	if p+size > f {
		return fmt.Errorf("%w for a %d-byte %s: %d bytes free, %d promised to existing %ss", ErrNoSpace, size, what, f, p, what)
	}
	return nil
}

// Promised adds up promise(e) over the entries of dir: what each existing
// image may still write (0 for an entry that is no image).
func Promised(dir string, promise func(fs.DirEntry) uint64) (uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total uint64
	for _, e := range entries {
		total += promise(e)
	}
	return total, nil
}

// Unwritten is what the sparse file e may still take: its size minus the
// blocks it holds (0 when it has vanished meanwhile).
func Unwritten(e fs.DirEntry) uint64 {
	info, err := e.Info()
	if err != nil {
		return 0
	}
	size := uint64(info.Size())
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		used := uint64(st.Blocks) * 512
		if used >= size {
			return 0
		}
		size -= used
	}
	return size
}
