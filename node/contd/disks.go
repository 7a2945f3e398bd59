package contd

import (
	"context"
	"os"

	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/internal/command"
	"github.com/grid4/grid4/node/internal/diskimage"
)

// A disk image (a zmount) is a raw block device for a virtual machine. A
// container cannot use a block device itself, so contd mounts the image's
// file system on the host (diskimage.Prepare formats a blank one first)
// and binds that into the container.

// mountDisk loop-mounts img on target unless something is mounted there.
func mountDisk(ctx context.Context, img, target string) error {
	if ok, err := mountinfo.IsMountPoint(target); err != nil || ok {
		return err
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	if err := diskimage.Prepare(ctx, img); err != nil {
		return err
	}
	_, err := command.Exec{}.Run(ctx, "mount", "-o", "loop,nodev,nosuid", img, target)
	return err
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
