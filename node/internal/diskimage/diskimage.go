// Package diskimage prepares raw disk images (zmounts) for the modules
// that use them: a blank image (no signature blkid knows: a new zmount)
// is formatted ext4; an image with a file system, say one a virtual
// machine or a container made, is left as it is, so what was written
// there is kept.
package diskimage

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/grid4/grid4/node/internal/command"
)

// Blank reports whether img holds no file system, partition table or
// other signature.
func Blank(ctx context.Context, img string) (bool, error) {
	if _, err := exec.LookPath("blkid"); err != nil {
		return false, fmt.Errorf("blkid %w", command.ErrNotFound)
	}
	// blkid says "nothing found" of a missing file too.
	if _, err := os.Stat(img); err != nil {
		return false, err
	}
	out, err := exec.CommandContext(ctx, "blkid", "-p", img).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 2 { // nothing found
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("blkid -p %s: %s", img, out)
	}
	return false, nil
}

// Prepare formats img ext4 when it is blank.
func Prepare(ctx context.Context, img string) error {
	blank, err := Blank(ctx, img)
	if err != nil || !blank {
		return err
	}
	_, err = command.Exec{}.Run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", img)
	return err
}
