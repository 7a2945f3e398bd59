// Package mountinfo reads mount tables (/proc/self/mountinfo, or
// /proc/PID/mountinfo for another mount namespace): whether a directory is
// a mount point or has one under it, where a device is mounted.
package mountinfo

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// IsMountPoint reports whether path is a mount point (false when it does
// not exist).
func IsMountPoint(path string) (bool, error) {
	abs, err := resolve(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	found, err := findIn("/proc/self/mountinfo", func(mp, _ string) bool { return mp == abs })
	return found != "", err
}

// Under returns a mount point at or under dir, "" when there is none.
func Under(dir string) (string, error) {
	abs, err := resolve(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return findIn("/proc/self/mountinfo", func(mp, _ string) bool { return mp == abs || strings.HasPrefix(mp, abs+"/") })
}

// OfDevice returns a mount point of the block device major:minor, ""
// when it is not mounted.
func OfDevice(major, minor uint32) (string, error) {
	return OfDeviceIn("/proc/self/mountinfo", major, minor)
}

// OfDeviceIn is OfDevice in the mount table file: /proc/PID/mountinfo
// for the mount namespace of process PID.
func OfDeviceIn(file string, major, minor uint32) (string, error) {
	dev := strconv.FormatUint(uint64(major), 10) + ":" + strconv.FormatUint(uint64(minor), 10)
	return findIn(file, func(_, d string) bool { return d == dev })
}

// resolve makes path absolute with its symbolic links followed, as the
// kernel shows mount points (the absolute path and the error when it
// cannot be followed).
func resolve(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	r, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return abs, err
	}
	return r, nil
}

// findIn returns the first mount point of the mount table file that
// match accepts, given with its device ("major:minor").
func findIn(file string, match func(mountPoint, device string) bool) (string, error) {
	var found string
	err := scan(file, func(mp, dev string) bool {
		if match(mp, dev) {
			found = mp
			return false
		}
		return true
	})
	return found, err
}

// List returns the mount points at or under dir in the mount table file
// (/proc/self/mountinfo, or /proc/PID/mountinfo for another process's
// mount namespace), deepest last as the table lists them: unmount them
// in reverse.
func List(file, dir string) ([]string, error) {
	var out []string
	err := scan(file, func(mp, _ string) bool {
		if mp == dir || strings.HasPrefix(mp, strings.TrimSuffix(dir, "/")+"/") {
			out = append(out, mp)
		}
		return true
	})
	return out, err
}

// scan calls each with every mount point of the table file and its device
// until it returns false.
func scan(file string, each func(mountPoint, device string) bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && !each(Unescape(fields[4]), fields[2]) {
			return nil
		}
	}
	return sc.Err()
}

// Unescape decodes the octal escapes (\040 for a space, \134 for a
// backslash) of mountinfo paths.
func Unescape(s string) string {
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

// RemoveAll removes dir and what it holds, unless something is mounted at
// or under it: os.RemoveAll would delete through the mount (a workload's
// disk or root), so that is refused with the mount point named.
func RemoveAll(dir string) error {
	mp, err := Under(dir)
	if err != nil {
		return fmt.Errorf("%s cannot be checked for mounts: %w", dir, err)
	}
	if mp != "" {
		return fmt.Errorf("%s still has a mount (%s)", dir, mp)
	}
	return os.RemoveAll(dir)
}
