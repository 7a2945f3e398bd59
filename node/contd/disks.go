package contd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/grid4/grid4/node/internal/command"
	"github.com/grid4/grid4/node/internal/mountinfo"
)

// A disk image (a zmount) is a raw block device for a virtual machine. A
// container cannot use a block device itself, so contd mounts the image's
// file system on the host and binds that into the container: a blank
// image (no signature blkid knows) is formatted ext4 first; one with a
// file system, say made by a virtual machine, is mounted as it is.

// mountDisk loop-mounts img on target unless something is mounted there.
func mountDisk(ctx context.Context, img, target string) error {
	if ok, err := mountinfo.IsMountPoint(target); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	blank, err := blankImage(ctx, img)
	if err != nil {
		return err
	}
	run := command.Exec{}
	if blank {
		if _, err := run.Run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", img); err != nil {
			return err
		}
	}
	_, err = run.Run(ctx, "mount", "-o", "loop,nodev,nosuid", img, target)
	return err
}

// blankImage reports whether img holds no file system, partition table or
// other signature.
func blankImage(ctx context.Context, img string) (bool, error) {
	if _, err := exec.LookPath("blkid"); err != nil {
		return false, fmt.Errorf("blkid %w", command.ErrNotFound)
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

// unmountDisk unmounts target (the loop device goes with it) if mounted.
func unmountDisk(ctx context.Context, target string) error {
	ok, err := mountinfo.IsMountPoint(target)
	if err != nil || !ok {
		return err
	}
	_, err = command.Exec{}.Run(ctx, "umount", target)
	return err
}
