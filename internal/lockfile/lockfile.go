// Package lockfile gives a process exclusive use of something — a data
// directory, a devnet — through an flock(2) on a file: held until released
// or until the process ends, however it ends (the kernel drops the lock
// with the last descriptor), so a crash never leaves a stale lock.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrHeld is returned when another process holds the lock.
var ErrHeld = errors.New("held by another process")

// Take locks the file at path (made if missing, 0600) without waiting
// and returns the function that releases it. A lock another process
// holds is an error wrapping ErrHeld.
func Take(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w", path, ErrHeld)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
