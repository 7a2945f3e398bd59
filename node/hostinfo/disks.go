package hostinfo

import (
	"os"
	"path"
	"strconv"
	"strings"
)

const sysBlockPath = "/sys/block"

// maxDiskBytes bounds a believable disk size (the registrar's SRU and HRU
// limit): a larger size file is malformed.
const maxDiskBytes = 1 << 56

// DiskKind is the kind of a disk: what capacity it adds to.
type DiskKind string

const (
	// SSD is a non-rotational disk (NVMe, SATA SSD, most virtual disks
	// whose host says so): it adds to SRU.
	SSD DiskKind = "ssd"
	// HDD is a rotational disk: it adds to HRU.
	HDD DiskKind = "hdd"
)

// Disk is one entry of /sys/block.
type Disk struct {
	// Name is the kernel's name ("sda", "nvme0n1").
	Name string `json:"name"`
	// Kind is SSD or HDD; empty when the disk is skipped or unreadable.
	Kind DiskKind `json:"kind,omitempty"`
	// Size is the disk's size in bytes; 0 when skipped or unreadable.
	Size uint64 `json:"size"`
	// Skip is the rule that excludes the device from the capacity ("loop
	// device", "removable"); empty for a counted disk.
	Skip string `json:"skip,omitempty"`
	// Problem says why a disk that should count could not be read; such a
	// disk is not counted.
	Problem string `json:"problem,omitempty"`
}

// Counted reports whether the disk adds to SRU or HRU.
func (d Disk) Counted() bool { return d.Skip == "" && d.Problem == "" }

// DiskList is the block devices of a machine.
type DiskList []Disk

// SRU is the total size of the counted SSDs, in bytes.
func (l DiskList) SRU() uint64 { return l.total(SSD) }

// HRU is the total size of the counted HDDs, in bytes.
func (l DiskList) HRU() uint64 { return l.total(HDD) }

func (l DiskList) total(kind DiskKind) uint64 {
	var n uint64
	for _, d := range l {
		if d.Counted() && d.Kind == kind {
			n += d.Size
		}
	}
	return n
}

// Disks lists the block devices of /sys/block, each counted as SSD or HDD
// or skipped with its rule (see the package documentation). The fact is
// unknown only when /sys/block itself cannot be read.
func (p *Prober) Disks() Fact[DiskList] {
	entries, err := os.ReadDir(p.path(sysBlockPath))
	if err != nil {
		return unknown[DiskList](sysBlockPath, "%s", p.describe(sysBlockPath, err))
	}
	list := DiskList{}
	for _, e := range entries {
		list = append(list, p.disk(e.Name()))
	}
	return known(list, sysBlockPath)
}

// disk reads one entry of /sys/block.
func (p *Prober) disk(name string) Disk {
	d := Disk{Name: name}
	if d.Skip = skipByName(name); d.Skip != "" {
		return d
	}
	dir := path.Join(sysBlockPath, name)
	switch {
	case p.exists(path.Join(dir, "partition")):
		d.Skip = "partition"
		return d
	case !p.exists(path.Join(dir, "device")):
		// Real disks link to the device that provides them; block devices
		// the kernel makes up (loop, zram, device mapper, bcache, zvols...)
		// have no such link, whatever they are named.
		d.Skip = "virtual device (no device link)"
		return d
	}
	if flag, err := p.readLine(path.Join(dir, "removable")); err == nil && flag == "1" {
		d.Skip = "removable"
		return d
	}
	if flag, err := p.readLine(path.Join(dir, "hidden")); err == nil && flag == "1" {
		d.Skip = "hidden (multipath path of a namespace counted on its own)"
		return d
	}

	sizeFile := path.Join(dir, "size")
	s, err := p.readLine(sizeFile)
	if err != nil {
		d.Problem = p.describe(sizeFile, err)
		return d
	}
	sectors, err := strconv.ParseUint(s, 10, 64)
	if err != nil || sectors > maxDiskBytes/512 {
		d.Problem = sizeFile + ": " + strconv.Quote(s) + " is not a sector count"
		return d
	}
	if sectors == 0 {
		// A card reader or tray without a medium: nothing to offer.
		d.Skip = "empty (size 0)"
		return d
	}

	rotFile := path.Join(dir, "queue", "rotational")
	rot, err := p.readLine(rotFile)
	if err != nil {
		d.Problem = p.describe(rotFile, err)
		return d
	}
	switch rot {
	case "0":
		d.Kind = SSD
	case "1":
		d.Kind = HDD
	default:
		d.Problem = rotFile + ": " + strconv.Quote(rot) + " is neither 0 nor 1"
		return d
	}
	d.Size = sectors * 512
	return d
}

// skipByName returns the rule that excludes a block device by its name
// alone, or "" when the name says nothing.
func skipByName(name string) string {
	for _, r := range []struct{ prefix, rule string }{
		{"loop", "loop device"},
		{"zram", "compressed RAM disk"},
		{"ram", "RAM disk"},
		{"dm-", "device mapper"},
		{"nbd", "network block device"},
		{"sr", "optical drive"},
		{"fd", "floppy drive"},
	} {
		if strings.HasPrefix(name, r.prefix) {
			return r.rule
		}
	}
	// md0, md127, md_d0: software RAID over disks that are counted on their
	// own. A bare "md" prefix would also match names that are not arrays.
	if rest, ok := strings.CutPrefix(name, "md"); ok && rest != "" && (isDigit(rest[0]) || rest[0] == '_') {
		return "software RAID"
	}
	// mmcblk0boot0, mmcblk0rpmb: the eMMC's boot and replay-protected areas,
	// tiny and not for data; mmcblk0 itself is counted.
	if rest, ok := strings.CutPrefix(name, "mmcblk"); ok {
		rest = strings.TrimLeft(rest, "0123456789")
		if strings.HasPrefix(rest, "boot") || rest == "rpmb" {
			return "eMMC boot or RPMB area"
		}
	}
	return ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
