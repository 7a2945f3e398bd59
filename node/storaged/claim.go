package storaged

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/internal/command"
)

// claimPools prepares the pool of every disk the farmer claimed
// (Config.Claims). A claim that cannot be prepared is logged and left
// out: the node runs on its other pools, and allocations on the missing
// one fail their check (their workloads go to error at restore).
func (s *Service) claimPools(ctx context.Context) {
	for _, dev := range s.cfg.Claims {
		p, err := s.claim(ctx, dev)
		if err != nil {
			s.log.Error("claimed disk not used", "device", dev, "err", err)
			// A pool it gave before stays known, offline: its kind and
			// file system are kept for the start that finds it again.
			for i := range s.st.Pools {
				if s.st.Pools[i].Device == dev {
					s.st.Pools[i].Offline, s.st.Pools[i].Size = err.Error(), 0
				}
			}
			continue
		}
		s.keepPool(p)
	}
}

// claim prepares the pool of block device dev: an ext4 file system of its
// own made by storaged, mounted on <Dir>/pools/<disk>. storaged formats
// only a whole disk with no partitions, no file system or other signature
// (blkid finds none) and not mounted; a disk it formatted before (the
// file system's UUID is in the state file) is mounted again.
func (s *Service) claim(ctx context.Context, dev string) (Pool, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dev, &st); err != nil {
		return Pool{}, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFBLK {
		return Pool{}, fmt.Errorf("%s is not a block device", dev)
	}
	major, minor := uint32((st.Rdev>>8)&0xfff|(st.Rdev>>32)&^0xfff), uint32(st.Rdev&0xff|(st.Rdev>>12)&^0xff)
	sys, err := filepath.EvalSymlinks(filepath.Join(s.cfg.HostRoot, "sys/dev/block", fmt.Sprintf("%d:%d", major, minor)))
	if err != nil {
		return Pool{}, fmt.Errorf("%s: %w", dev, err)
	}
	name := filepath.Base(sys)
	if err := wholeDisk(sys); err != nil {
		return Pool{}, fmt.Errorf("%s (%s): %w", dev, name, err)
	}
	path := filepath.Join(s.cfg.Dir, "pools", name)
	mp, err := mountinfo.OfDevice(major, minor)
	if err != nil {
		return Pool{}, err
	}
	if mp != "" && mp != path {
		return Pool{}, fmt.Errorf("%s holds a file system mounted on %s: storaged never touches it", dev, mp)
	}
	prev, known := s.pool(name)
	if mp == "" {
		uuid, err := s.format(ctx, dev, prev.UUID)
		if err != nil {
			return Pool{}, err
		}
		prev.UUID = uuid
		if err := os.MkdirAll(path, 0o700); err != nil {
			return Pool{}, err
		}
		if _, err := (command.Exec{}).Run(ctx, "mount", "-o", "nodev,nosuid", dev, path); err != nil {
			return Pool{}, err
		}
	}
	total, _, err := statfs(path)
	if err != nil {
		return Pool{}, err
	}
	p := Pool{Name: name, Path: path, Size: total, Device: dev, UUID: prev.UUID, Class: prev.Class}
	if _, forced := s.cfg.Types[name]; !known || forced {
		p.Class = classify(name, s.disks, s.cfg, path)
	}
	return p, nil
}

// wholeDisk checks that the /sys/block entry sys is a disk without
// partitions.
func wholeDisk(sys string) error {
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		return errors.New("a partition: claim whole disks")
	}
	entries, err := os.ReadDir(sys)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(sys, e.Name(), "partition")); err == nil {
			return fmt.Errorf("has partitions (%s): storaged formats only empty disks (wipefs -a to claim it)", e.Name())
		}
	}
	return nil
}

// format makes dev's ext4 file system and returns its UUID; a file system
// whose UUID is ours (formatted by storaged before) is kept as it is.
func (s *Service) format(ctx context.Context, dev, ours string) (string, error) {
	run := command.Exec{}
	// blkid exits 2 when it finds no signature: the one case to format.
	typ, err := run.Run(ctx, "blkid", "-p", "-o", "value", "-s", "TYPE", dev)
	typ = strings.TrimSpace(typ)
	if err == nil || typ != "" {
		uuid, _ := run.Run(ctx, "blkid", "-p", "-o", "value", "-s", "UUID", dev)
		if uuid = strings.TrimSpace(uuid); ours != "" && uuid == ours && typ == "ext4" {
			return uuid, nil
		}
		return "", fmt.Errorf("%s holds a %q signature storaged did not make: it formats only empty disks (wipefs -a to claim it)", dev, typ)
	}
	if _, err := run.Run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-L", "storaged", dev); err != nil {
		return "", err
	}
	uuid, err := run.Run(ctx, "blkid", "-p", "-o", "value", "-s", "UUID", dev)
	if err != nil || strings.TrimSpace(uuid) == "" {
		return "", fmt.Errorf("%s: no UUID after mkfs.ext4: %v", dev, err)
	}
	s.log.Info("claimed disk formatted", "device", dev, "uuid", strings.TrimSpace(uuid))
	return strings.TrimSpace(uuid), nil
}

// keepPool records p, replacing the pool of the same name.
func (s *Service) keepPool(p Pool) {
	if i := slices.IndexFunc(s.st.Pools, func(q Pool) bool { return q.Name == p.Name }); i >= 0 {
		s.st.Pools[i] = p
	} else {
		s.st.Pools = append(s.st.Pools, p)
	}
	s.log.Info("pool ready", "pool", p.Name, "path", p.Path, "device", p.Device, "kind", p.Class.Kind, "rule", p.Class.Rule, "detail", p.Class.Detail, "size", p.Size)
}
