//go:build !linux

package flist

// renameNoReplace renames old to new unless new exists (fs.ErrExist).
// Outside Linux it checks then renames, which leaves a small window.
func renameNoReplace(oldPath, newPath string) error {
	return renameChecked(oldPath, newPath)
}
