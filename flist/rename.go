package flist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// renameChecked renames old to new after checking that new does not
// exist: the fallback where an atomic no-replace rename is unavailable.
func renameChecked(oldPath, newPath string) error {
	if _, err := os.Lstat(newPath); err == nil {
		return fmt.Errorf("rename %s: %w", newPath, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return os.Rename(oldPath, newPath)
}
