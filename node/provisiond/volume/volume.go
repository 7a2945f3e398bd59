// Package volume is the type manager of Volume workloads: directories of
// a fixed size that machines mount.
//
// How the size is enforced depends on the host (Enforcement):
//
//   - LoopExt4: the volume is an ext4 file system in a sparse image file,
//     loop-mounted on the volume's directory. The kernel refuses writes
//     beyond the size (ENOSPC): a hard limit. Needs root, loop devices,
//     mount, losetup, mkfs.ext4, e2fsck and resize2fs.
//   - Accounting: the volume is a plain directory. Its use is measured by
//     walking it (Usage) and reported, but nothing stops a writer from
//     going past the size. Used where loop devices are not available.
//
// In both modes a volume is only made when the file system has room for
// its size on top of what the existing volumes were promised, and the
// engine's capacity accounting refuses deployments whose volumes add up to
// more than the node's storage. Project quotas (ext4/XFS prjquota) are not
// used: they need the data file system mounted with prjquota, which nodes
// are not (docs/provisioning.md).
package volume

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/internal/command"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/internal/diskspace"
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

// ErrNoSpace is wrapped when the file system cannot hold a volume.
var ErrNoSpace = diskspace.ErrNoSpace

// Config configures a Manager.
type Config struct {
	// Dir holds the volumes (directories) and their images. Required.
	Dir string
	// Mode forces an enforcement; "" picks LoopExt4 when the host can
	// (Probe) and Accounting otherwise.
	Mode Enforcement
	// Runner runs mount, umount, losetup, mkfs.ext4, e2fsck and resize2fs
	// (command.Exec{} when nil).
	Runner command.Runner
	// Free reports the free bytes of a file system (statfs when nil).
	Free func(path string) (uint64, error)
}

// Manager makes Volume workloads.
type Manager struct {
	dir  string
	mode Enforcement
	run  command.Runner
	free func(string) (uint64, error)
	mu   sync.Mutex
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
	if cfg.Dir == "" {
		return nil, errors.New("volume: Config.Dir is required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	m := &Manager{dir: cfg.Dir, mode: cfg.Mode, run: cfg.Runner, free: cfg.Free}
	if m.run == nil {
		m.run = command.Exec{}
	}
	if m.free == nil {
		m.free = diskspace.Free
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

// Path is the directory of t's volume.
func (m *Manager) Path(t provisiond.Task) string { return filepath.Join(m.dir, t.ID()) }

func (m *Manager) image(t provisiond.Task) string { return filepath.Join(m.dir, t.ID()+".img") }

// Provision makes the volume (idempotent: an existing one is kept, and
// grown if it is smaller than asked).
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.VolumeData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mode == Accounting {
		return m.provisionDir(t, d.Size)
	}
	return m.provisionLoop(ctx, t, d.Size)
}

// Update grows the volume (validation refuses shrinking).
func (m *Manager) Update(ctx context.Context, t provisiond.Task) (any, error) {
	return m.Provision(ctx, t)
}

func (m *Manager) provisionDir(t provisiond.Task, size uint64) (any, error) {
	path := m.Path(t)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if err := m.reserve(size); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	// The size lives next to the directory so Usage and the free-space
	// promise can be computed without the deployment.
	if err := writeSize(path+".size", size); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	used, err := walkUsage(path)
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	return Result{Path: path, Size: size, Used: used, Enforcement: Accounting}, nil
}

func (m *Manager) provisionLoop(ctx context.Context, t provisiond.Task, size uint64) (any, error) {
	path, img := m.Path(t), m.image(t)
	st, err := os.Stat(img)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := m.reserve(size); err != nil {
			return nil, err
		}
		if err := m.makeImage(ctx, img, size); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("volume: %w", err)
	case uint64(st.Size()) > size:
		return nil, fmt.Errorf("volume: %s is %d bytes; a volume cannot shrink to %d", img, st.Size(), size)
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	mounted, err := isMounted(path)
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	if !mounted {
		if _, err := m.run.Run(ctx, "mount", "-o", "loop,nodev,nosuid", img, path); err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
	}
	if st != nil && uint64(st.Size()) < size {
		if err := m.grow(ctx, img, uint64(st.Size()), size); err != nil {
			return nil, err
		}
	}
	used, err := fsUsage(path)
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	return Result{Path: path, Size: size, Used: used, Enforcement: LoopExt4}, nil
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

// grow enlarges a mounted volume: the image, the loop device's idea of its
// size, then the file system online. Where the kernel refuses an online
// resize (containers without CAP_SYS_RESOURCE), the volume is unmounted,
// checked, resized and mounted again.
func (m *Manager) grow(ctx context.Context, img string, from, to uint64) error {
	if err := m.reserve(to - from); err != nil {
		return err
	}
	if err := os.Truncate(img, int64(to)); err != nil {
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
	} else if oerr := m.growOffline(ctx, img); oerr != nil {
		return fmt.Errorf("volume: grow: online: %v; offline: %w", err, oerr)
	}
	return nil
}

// growOffline resizes the file system of an unmounted image.
func (m *Manager) growOffline(ctx context.Context, img string) error {
	path := strings.TrimSuffix(img, ".img")
	if _, err := m.run.Run(ctx, "umount", path); err != nil {
		return err
	}
	// resize2fs insists on a freshly checked file system; -p repairs only
	// what is safe without questions.
	_, ferr := m.run.Run(ctx, "e2fsck", "-f", "-p", img)
	var rerr error
	if ferr == nil {
		_, rerr = m.run.Run(ctx, "resize2fs", img)
	}
	if _, err := m.run.Run(ctx, "mount", "-o", "loop,nodev,nosuid", img, path); err != nil {
		return errors.Join(ferr, rerr, err)
	}
	return errors.Join(ferr, rerr)
}

// Deprovision unmounts and removes the volume with its data.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	path, img := m.Path(t), m.image(t)
	mounted, err := isMounted(path)
	if err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	if mounted {
		if _, err := m.run.Run(ctx, "umount", path); err != nil {
			// Busy (a process has a file open): detach now, the kernel
			// frees it when the last user goes.
			if _, lerr := m.run.Run(ctx, "umount", "-l", path); lerr != nil {
				return fmt.Errorf("volume: %w", err)
			}
		}
	}
	if m.mode == LoopExt4 || mounted {
		// The directory is an empty mount point now; Remove (not
		// RemoveAll) so a failed unmount never deletes through it.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("volume: %w", err)
		}
	} else if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	for _, p := range []string{img, img + ".tmp", path + ".size"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("volume: %w", err)
		}
	}
	return nil
}

// Usage returns the bytes used in t's volume and its size limit.
func (m *Manager) Usage(_ context.Context, t provisiond.Task) (used uint64, err error) {
	if m.mode == LoopExt4 {
		return fsUsage(m.Path(t))
	}
	return walkUsage(m.Path(t))
}

// reserve checks that the file system holds size more bytes on top of
// what existing volumes may still write (their sizes minus their use).
func (m *Manager) reserve(size uint64) error {
	if err := diskspace.Reserve(m.dir, size, m.free, m.promised, "volume"); err != nil {
		return fmt.Errorf("volume: %w", err)
	}
	return nil
}

// promised is what existing volumes may still write: an image's size minus
// its blocks, a directory volume's size minus its files' blocks.
func (m *Manager) promised() (uint64, error) {
	return diskspace.Promised(m.dir, func(e fs.DirEntry) uint64 {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".img"):
			return diskspace.Unwritten(e)
		case strings.HasSuffix(name, ".size"):
			size, err := readSize(filepath.Join(m.dir, name))
			if err != nil {
				return 0
			}
			used, _ := walkUsage(filepath.Join(m.dir, strings.TrimSuffix(name, ".size")))
			return size - min(used, size)
		}
		return 0
	})
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

func writeSize(path string, size uint64) error {
	return atomicfile.WriteFile(path, []byte(strconv.FormatUint(size, 10)+"\n"), 0o600)
}

func readSize(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// isMounted reports whether path is a mount point, from
// /proc/self/mountinfo.
func isMounted(path string) (bool, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false, err
	}
	abs, err = filepath.EvalSymlinks(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && unescapeMount(fields[4]) == abs {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMount decodes the octal escapes (\040 for space...) of
// mountinfo paths.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
