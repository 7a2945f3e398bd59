// Package initramfs writes the archives a Linux kernel unpacks into its
// first root file system: cpio in the "newc" format (the only one the
// kernel reads), optionally gzip-compressed by the caller.
package initramfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// Mode bits of a cpio entry's type (the kernel's, from stat(2)).
const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeLink = 0o120000
	modeChar = 0o020000
)

// trailer ends every archive.
const trailer = "TRAILER!!!"

// Writer writes a newc cpio archive. Entries are written as they are
// added; Close writes the trailer. Parent directories are not made
// implicitly: add them first.
type Writer struct {
	w   io.Writer
	ino uint32
	err error
}

// NewWriter returns a writer of an archive to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Dir adds a directory.
func (c *Writer) Dir(name string, perm fs.FileMode) error {
	return c.entry(name, modeDir|uint32(perm.Perm()), nil, 0, 0)
}

// File adds a regular file holding data.
func (c *Writer) File(name string, perm fs.FileMode, data []byte) error {
	return c.entry(name, modeFile|uint32(perm.Perm()), data, 0, 0)
}

// Symlink adds a symbolic link name pointing at target.
func (c *Writer) Symlink(name, target string) error {
	return c.entry(name, modeLink|0o777, []byte(target), 0, 0)
}

// CharDevice adds a character device node (major:minor), e.g. the
// dev/console the kernel opens for the first process before any device
// file system is mounted.
func (c *Writer) CharDevice(name string, perm fs.FileMode, major, minor uint32) error {
	return c.entry(name, modeChar|uint32(perm.Perm()), nil, major, minor)
}

// Close writes the trailer. It does not close the underlying writer.
func (c *Writer) Close() error {
	if c.err != nil {
		return c.err
	}
	return c.header(trailer, 0, 0, 0, 0, 0)
}

// entry adds name with data; rmajor:rminor is the device a device node
// stands for (0:0 for the others).
func (c *Writer) entry(name string, mode uint32, data []byte, rmajor, rminor uint32) error {
	if c.err != nil {
		return c.err
	}
	clean, err := entryName(name)
	if err != nil {
		return err
	}
	c.ino++
	if err := c.header(clean, c.ino, mode, len(data), rmajor, rminor); err != nil {
		return err
	}
	c.write(data)
	c.write(make([]byte, pad(len(data))))
	return c.err
}

// entryName makes name relative, as the kernel expects ("init", not
// "/init"), refusing what would leave the archive's root.
func entryName(name string) (string, error) {
	clean := strings.TrimPrefix(path.Clean("/"+name), "/")
	if clean == "" || clean != strings.TrimPrefix(name, "/") || strings.ContainsRune(name, 0) || clean == trailer {
		return "", fmt.Errorf("initramfs: bad entry name %q", name)
	}
	return clean, nil
}

// header writes an entry's header and name. Links count 1 (2 for a
// directory); owner root; time 0, so that an archive depends only on its
// entries.
func (c *Writer) header(name string, ino, mode uint32, size int, rmajor, rminor uint32) error {
	if size < 0 || uint64(size) > 0xffffffff {
		return errors.New("initramfs: entry too large for cpio")
	}
	nlink := uint32(1)
	if mode&0o170000 == modeDir {
		nlink = 2
	}
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, rmajor, rminor, len(name)+1, 0)
	c.write([]byte(h + name + "\x00"))
	c.write(make([]byte, pad(len(h)+len(name)+1)))
	return c.err
}

func (c *Writer) write(b []byte) {
	if c.err != nil || len(b) == 0 {
		return
	}
	_, c.err = c.w.Write(b)
}

// pad is how many bytes bring n to a multiple of 4.
func pad(n int) int { return (4 - n%4) % 4 }
