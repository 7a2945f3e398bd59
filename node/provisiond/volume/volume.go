// Package volume is the type manager of Volume workloads: directories of
// a fixed size that machines mount.
//
// storaged owns the space: each volume is an allocation of its size in
// one of storaged's pools (refused when the pools cannot hold it, what
// they promised to other workloads counted), a directory the manager
// fills. The manager owns what is inside, and how the size is enforced
// depends on the host (Enforcement):
//
//   - LoopExt4: the volume is an ext4 file system in a sparse image file
//     (fs.img in the allocation), loop-mounted on its data directory. The
//     kernel refuses writes beyond the size (ENOSPC): a hard limit. Needs
//     root, loop devices, mount, losetup, mkfs.ext4, e2fsck and resize2fs.
//   - Accounting: the data directory is a plain directory. Its use is
//     measured by walking it (Usage) and reported, but nothing stops a
//     writer from going past the size. Used where loop devices are not
//     available.
//
// A restart of the node loses the mounts: Restore mounts the image again
// (after e2fsck when the kernel refuses it) and fails, setting the
// workload to error, when the image or its allocation is gone.
package volume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/internal/command"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/storaged"
)

// Enforcement is how a volume's size is enforced.
type Enforcement string

// Enforcement modes.
const (
	// LoopExt4 is a hard limit: a loop-mounted ext4 image of the size.
	LoopExt4 Enforcement = "loop-ext4"
	// Accounting only measures and reports use; writes are not refused.
	Accounting Enforcement = "accounting"
)

// ErrNoSpace is matched by the refusal of a volume no pool can hold.
var ErrNoSpace = storaged.ErrNoSpace

// Storage is what the manager needs of storaged (storaged.Stub over the
// bus, *storaged.Service in-process).
type Storage interface {
	Allocate(ctx context.Context, r storaged.Request) (storaged.Allocation, error)
	Get(ctx context.Context, id string) (storaged.Allocation, error)
	Release(ctx context.Context, id string) error
}

// Config configures a Manager.
type Config struct {
	// Storage hands out the volumes' space. Required.
	Storage Storage
	// Mode forces an enforcement; "" picks LoopExt4 when the host can
	// (Probe) and Accounting otherwise.
	Mode Enforcement
	// Runner runs mount, umount, losetup, mkfs.ext4, e2fsck and resize2fs
	// (command.Exec{} when nil).
	Runner command.Runner
}

// Manager makes Volume workloads.
type Manager struct {
	storage Storage
	mode    Enforcement
	run     command.Runner
	mu      sync.Mutex
}

// Probe reports whether the host can enforce volume sizes with loop
// devices, and why not.
func Probe() (ok bool, reason string) {
	if os.Geteuid() != 0 {
		return false, "not running as root"
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return false, "no loop devices (/dev/loop-control)"
	}
	if missing, ok := command.Available("mount", "umount", "losetup", "mkfs.ext4", "e2fsck", "resize2fs"); !ok {
		return false, missing + " not found in PATH"
	}
	return true, ""
}

// New returns a manager for cfg.
func New(cfg Config) (*Manager, error) {
	if cfg.Storage == nil {
		return nil, errors.New("volume: Config.Storage is required")
	}
	m := &Manager{storage: cfg.Storage, mode: cfg.Mode, run: cfg.Runner}
	if m.run == nil {
		m.run = command.Exec{}
	}
	switch m.mode {
	case "":
		m.mode = Accounting
		if ok, _ := Probe(); ok {
			m.mode = LoopExt4
		}
	case LoopExt4, Accounting:
	default:
		return nil, fmt.Errorf("volume: unknown enforcement %q", cfg.Mode)
	}
	return m, nil
}

// Enforcement is the manager's mode.
func (m *Manager) Enforcement() Enforcement { return m.mode }

// Result is what a Volume workload reports.
type Result struct {
	// Path is the volume's directory on the node.
	Path string `json:"path"`
	// Size is the volume's size in bytes.
	Size uint64 `json:"size"`
	// Used is the bytes in use when the operation finished.
	Used uint64 `json:"used"`
	// Enforcement says whether Size is a hard limit (loop-ext4) or only
	// measured (accounting).
	Enforcement Enforcement `json:"enforcement"`
}

// DataDir is the volume's directory (what machines mount) inside its
// allocation a.
func DataDir(a storaged.Allocation) string { return filepath.Join(a.Path, "data") }

// image is the volume's ext4 image inside its allocation a.
func image(a storaged.Allocation) string { return filepath.Join(a.Path, "fs.img") }

// Provision makes the volume (idempotent: an existing one is kept, and
// grown if it is smaller than asked).
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.VolumeData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.storage.Allocate(ctx, storaged.Request{ID: t.ID(), Kind: storaged.Volume, Size: d.Size})
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	path := DataDir(a)
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	if m.mode == Accounting {
		used, err := walkUsage(path)
		if err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
		return Result{Path: path, Size: a.Size, Used: used, Enforcement: Accounting}, nil
	}
	if err := m.provisionLoop(ctx, a); err != nil {
		return nil, err
	}
	used, err := fsUsage(path)
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	return Result{Path: path, Size: a.Size, Used: used, Enforcement: LoopExt4}, nil
}

// Update grows the volume (validation refuses shrinking).
func (m *Manager) Update(ctx context.Context, t provisiond.Task) (any, error) {
	return m.Provision(ctx, t)
}

// provisionLoop makes, mounts and grows the image of allocation a.
func (m *Manager) provisionLoop(ctx context.Context, a storaged.Allocation) error {
	img := image(a)
	st, err := os.Stat(img)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := m.makeImage(ctx, img, a.Size); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("volume: %w", err)
	case uint64(st.Size()) > a.Size:
		return fmt.Errorf("volume: %s is %d bytes; a volume cannot shrink to %d", img, st.Size(), a.Size)
	}
	if err := m.mount(ctx, a); err != nil {
		return err
	}
	if st == nil {
		return nil
	}
	// The file system, not the image, says whether the volume has its
	// size: a grow that failed (or was cut short) after enlarging the
	// image is done again.
	fsSize, err := ext4Size(img)
	if err != nil {
		return err
	}
	if uint64(st.Size()) < a.Size || fsSize < a.Size {
		return m.grow(ctx, a, a.Size)
	}
	return nil
}

// ext4Size returns the size in bytes of the ext4 file system in img, read
// from its superblock.
func ext4Size(img string) (uint64, error) {
	f, err := os.Open(img)
	if err != nil {
		return 0, fmt.Errorf("volume: %w", err)
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, fmt.Errorf("volume: superblock of %s: %w", img, err)
	}
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return 0, fmt.Errorf("volume: %s holds no ext4 file system", img)
	}
	blocks := uint64(binary.LittleEndian.Uint32(sb[0x4:]))
	if binary.LittleEndian.Uint32(sb[0x60:])&0x80 != 0 { // INCOMPAT_64BIT
		blocks |= uint64(binary.LittleEndian.Uint32(sb[0x150:])) << 32
	}
	return blocks << (10 + binary.LittleEndian.Uint32(sb[0x18:])), nil
}

// mount mounts a's image on its data directory unless it is mounted.
func (m *Manager) mount(ctx context.Context, a storaged.Allocation) error {
	path := DataDir(a)
	mounted, err := mountinfo.IsMountPoint(path)
	if err != nil || mounted {
		return err
	}
	if _, err := m.run.Run(ctx, "mount", "-o", "loop,nodev,nosuid", image(a), path); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	return nil
}

// makeImage writes a formatted sparse image under a temporary name and
// renames it: a crash leaves no half-formatted image behind.
func (m *Manager) makeImage(ctx context.Context, img string, size uint64) error {
	tmp := img + ".tmp"
	os.Remove(tmp)
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	if err := os.Truncate(tmp, int64(size)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("volume: %w", err)
	}
	// -m 0: no blocks reserved for root, the owner gets the whole size.
	if _, err := m.run.Run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("volume: %w", err)
	}
	if err := atomicfile.Rename(tmp, img); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	return nil
}

// grow enlarges a mounted volume to size: the image, the loop device's
// idea of its size, then the file system online. Where the kernel refuses
// an online resize (containers without CAP_SYS_RESOURCE), the volume is
// unmounted, checked, resized and mounted again.
func (m *Manager) grow(ctx context.Context, a storaged.Allocation, size uint64) error {
	img := image(a)
	if err := os.Truncate(img, int64(size)); err != nil {
		return fmt.Errorf("volume: grow: %w", err)
	}
	out, err := m.run.Run(ctx, "losetup", "-j", img)
	if err != nil {
		return fmt.Errorf("volume: grow: %w", err)
	}
	dev, _, ok := strings.Cut(strings.TrimSpace(out), ":")
	if !ok || !strings.HasPrefix(dev, "/dev/") {
		return fmt.Errorf("volume: grow: no loop device for %s", img)
	}
	if _, err := m.run.Run(ctx, "losetup", "-c", dev); err != nil {
		return fmt.Errorf("volume: grow: %w", err)
	}
	if _, err := m.run.Run(ctx, "resize2fs", dev); err == nil {
		return nil
	} else if oerr := m.growOffline(ctx, a, dev); oerr != nil {
		return fmt.Errorf("volume: grow: online: %v; offline: %w", err, oerr)
	}
	return nil
}

// growOffline resizes the file system of an unmounted image. A volume
// that another mount namespace also has mounted (a machine's virtiofsd, a
// container) is left alone: unmounting it here would not free it, and
// checking or resizing its image would write under a live file system.
func (m *Manager) growOffline(ctx context.Context, a storaged.Allocation, dev string) error {
	img := image(a)
	if pid, err := mountedElsewhere(dev); err != nil {
		return err
	} else if pid != 0 {
		return fmt.Errorf("%w (process %d has it mounted): it grows once no machine mounts it", ErrInUse, pid)
	}
	if _, err := m.run.Run(ctx, "umount", DataDir(a)); err != nil {
		return err
	}
	// resize2fs insists on a freshly checked file system; -p repairs only
	// what is safe without questions.
	_, ferr := m.run.Run(ctx, "e2fsck", "-f", "-p", img)
	var rerr error
	if ferr == nil {
		_, rerr = m.run.Run(ctx, "resize2fs", img)
	}
	if err := m.mount(ctx, a); err != nil {
		return errors.Join(ferr, rerr, err)
	}
	return errors.Join(ferr, rerr)
}

// ErrInUse: a volume cannot grow while it is mounted elsewhere and the
// kernel refuses to resize it online.
var ErrInUse = errors.New("the volume is in use elsewhere and this node cannot resize a mounted file system")

// mountedElsewhere returns a process whose mount namespace, other than
// this process's, has the block device dev mounted; 0 when none has.
func mountedElsewhere(dev string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return 0, fmt.Errorf("volume: %w", err)
	}
	major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return 0, fmt.Errorf("volume: %w", err)
	}
	seen := map[string]bool{self: true}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("volume: %w", err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		// Processes come and go while we look: one that is gone has
		// nothing mounted.
		ns, err := os.Readlink("/proc/" + p.Name() + "/ns/mnt")
		if err != nil || seen[ns] {
			continue
		}
		mp, err := mountinfo.OfDeviceIn("/proc/"+p.Name()+"/mountinfo", major, minor)
		if err != nil {
			continue
		}
		if mp != "" {
			return pid, nil
		}
		seen[ns] = true
	}
	return 0, nil
}

// Restore implements provisiond.Restorer: the allocation must still be
// there; a loop volume's image is mounted again when a restart lost the
// mount. A mount the kernel refuses gets one e2fsck -p (what is safe to
// repair unattended) and one more try; a volume still refused, or whose
// image is gone, fails with the reason.
func (m *Manager) Restore(ctx context.Context, t provisiond.Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.storage.Get(ctx, t.ID())
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	path := DataDir(a)
	if m.mode == Accounting {
		if st, err := os.Stat(path); err != nil || !st.IsDir() {
			return fmt.Errorf("volume: the data directory %s is gone", path)
		}
		return nil
	}
	img := image(a)
	if _, err := os.Stat(img); err != nil {
		return fmt.Errorf("volume: image: %w", err)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	err = m.mount(ctx, a)
	if err == nil {
		return nil
	}
	if _, ferr := m.run.Run(ctx, "e2fsck", "-p", img); ferr != nil {
		return fmt.Errorf("%w; e2fsck: %v", err, ferr)
	}
	return m.mount(ctx, a)
}

// Deprovision unmounts the volume and gives its space back to storaged,
// which removes it with its data.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, err := m.storage.Get(ctx, t.ID())
	switch {
	case errors.Is(err, storaged.ErrNotFound):
		return nil
	case err != nil && !errors.Is(err, storaged.ErrBroken):
		return fmt.Errorf("volume: %w", err)
	}
	// A broken allocation (its directory gone) is released all the same;
	// storaged refuses to delete through anything still mounted in it.
	if a.Path != "" {
		if err := m.unmount(ctx, DataDir(a)); err != nil {
			return err
		}
	}
	if err := m.storage.Release(ctx, t.ID()); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	return nil
}

// unmount unmounts path if it is mounted.
func (m *Manager) unmount(ctx context.Context, path string) error {
	mounted, err := mountinfo.IsMountPoint(path)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	if !mounted {
		return nil
	}
	if _, err := m.run.Run(ctx, "umount", path); err != nil {
		// Busy (a process has a file open): detach now, the kernel frees
		// it when the last user goes.
		if _, lerr := m.run.Run(ctx, "umount", "-l", path); lerr != nil {
			return fmt.Errorf("volume: %w", err)
		}
	}
	return nil
}

// Usage returns the bytes used in t's volume.
func (m *Manager) Usage(ctx context.Context, t provisiond.Task) (used uint64, err error) {
	a, err := m.storage.Get(ctx, t.ID())
	if err != nil {
		return 0, fmt.Errorf("volume: %w", err)
	}
	if m.mode == LoopExt4 {
		return fsUsage(DataDir(a))
	}
	return walkUsage(DataDir(a))
}

// walkUsage adds up the blocks of the files under dir (hard links once).
func walkUsage(dir string) (uint64, error) {
	seen := map[[2]uint64]bool{}
	var total uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			total += uint64(info.Size())
			return nil
		}
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		total += uint64(st.Blocks) * 512
		return nil
	})
	return total, err
}

// fsUsage is the used space of the file system mounted at path.
func fsUsage(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return (st.Blocks - st.Bfree) * uint64(st.Bsize), nil
}
