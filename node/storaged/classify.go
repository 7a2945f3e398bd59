package storaged

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/grid4/grid4/node/hostinfo"
)

// SeekThreshold is the median random-read latency under which a disk that
// says it rotates is taken for an SSD: no spinning disk seeks across its
// surface that fast (5 to 15 ms is usual), while a hypervisor's virtual
// disk backed by flash or a cache, which Linux often shows as rotational,
// answers in well under a millisecond.
const SeekThreshold = 2 * time.Millisecond

// seekReads is how many random 4 KiB reads the benchmark makes.
const seekReads = 32

// Seeker measures the median latency of random reads over a block device
// (or a file standing for one in a fixture tree). SeekBench is the real
// one; tests of the HDD rule use another, since no rotating disk exists on
// a test machine.
type Seeker func(device string) (time.Duration, error)

// Classification says how a disk's kind was decided.
type Classification struct {
	// Kind is SSD or HDD.
	Kind hostinfo.DiskKind `json:"kind"`
	// Rule names the rule that decided it: "configured", "rotational=0",
	// "seek benchmark" or "assumed".
	Rule string `json:"rule"`
	// Detail says more (the measured latency, why the benchmark could not
	// run).
	Detail string `json:"detail,omitempty"`
}

// classify decides the kind of disk name (a /sys/block name; "" when the
// data directory's disk could not be identified). The rules, first match
// wins:
//
//  1. the farmer's type for that disk (Config.Types);
//  2. queue/rotational = 0: SSD;
//  3. queue/rotational = 1: the seek benchmark on /dev/<name>; a median
//     under SeekThreshold is an SSD (the flag of virtual disks says
//     nothing), otherwise an HDD; a device that cannot be read for the
//     benchmark stays an HDD, as the flag says;
//  4. a disk that cannot be identified (a fixture root without it, a data
//     directory on tmpfs or overlay): SSD, assumed, since the node's data
//     directory must be on its system SSD.
func classify(name string, disks hostinfo.DiskList, cfg Config, poolDir string) Classification {
	if k, ok := cfg.Types[name]; ok && name != "" {
		return Classification{Kind: k, Rule: "configured"}
	}
	i := slices.IndexFunc(disks, func(d hostinfo.Disk) bool { return d.Name == name })
	if name == "" || i < 0 || disks[i].Kind == "" {
		why := "the data directory's disk is not in " + filepath.Join(cfg.HostRoot, "sys/block")
		if i >= 0 {
			why = "disk " + name + ": " + disks[i].Skip + disks[i].Problem
		}
		return Classification{Kind: hostinfo.SSD, Rule: "assumed", Detail: why}
	}
	if disks[i].Kind == hostinfo.SSD {
		return Classification{Kind: hostinfo.SSD, Rule: "rotational=0"}
	}
	seek := cfg.Seeker
	if seek == nil {
		seek = SeekBench
	}
	dev := filepath.Join(cfg.HostRoot, "dev", name)
	lat, err := seek(dev)
	on := dev
	if err != nil && poolDir != "" {
		on = "a file in the pool (" + err.Error() + ")"
		lat, err = seekFile(poolDir, seek)
	}
	if err != nil {
		return Classification{Kind: hostinfo.HDD, Rule: "rotational=1", Detail: "seek benchmark: " + err.Error()}
	}
	kind := hostinfo.HDD
	if lat < SeekThreshold {
		kind = hostinfo.SSD
	}
	return Classification{Kind: kind, Rule: "seek benchmark", Detail: fmt.Sprintf("rotational=1, median random read on %s %v (threshold %v)", on, lat.Round(time.Microsecond), SeekThreshold)}
}

// SeekBench reads seekReads random 4 KiB blocks spread over device,
// bypassing the page cache (O_DIRECT) where the file system allows it,
// and returns the median latency. It only reads.
func SeekBench(device string) (time.Duration, error) {
	f, err := os.OpenFile(device, os.O_RDONLY|syscall.O_DIRECT, 0)
	if errors.Is(err, syscall.EINVAL) {
		// tmpfs and some file systems refuse O_DIRECT: a fixture file.
		f, err = os.Open(device)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		return 0, err
	}
	const block = 4096
	if size < block {
		return 0, fmt.Errorf("%s: %d bytes, too small to measure", device, size)
	}
	// O_DIRECT needs an aligned buffer: an anonymous mapping is
	// page-aligned.
	buf, err := syscall.Mmap(-1, 0, block, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return 0, err
	}
	defer syscall.Munmap(buf)
	lat := make([]time.Duration, 0, seekReads)
	blocks := size / block
	for range seekReads {
		off := rand.Int64N(blocks) * block
		start := time.Now()
		if _, err := f.ReadAt(buf, off); err != nil {
			return 0, fmt.Errorf("read %s at %d: %w", device, off, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return lat[len(lat)/2], nil
}

// seekFile runs seek on a 32 MiB file written (and removed) in dir.
func seekFile(dir string, seek Seeker) (time.Duration, error) {
	f, err := os.CreateTemp(dir, ".seek-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(rand.Uint32())
	}
	for range 32 {
		if _, err := f.Write(chunk); err != nil {
			return 0, err
		}
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return seek(f.Name())
}

// diskOf returns the /sys/block name of the disk holding path's file
// system, read under root: the device number of path, its
// /sys/dev/block/MAJ:MIN entry, and that entry's parent disk when it is a
// partition. "" when it cannot be found.
func diskOf(root, path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ""
	}
	major, minor := (st.Dev>>8)&0xfff|(st.Dev>>32)&^0xfff, st.Dev&0xff|(st.Dev>>12)&^0xff
	entry := filepath.Join(root, "sys/dev/block", fmt.Sprintf("%d:%d", major, minor))
	target, err := filepath.EvalSymlinks(entry)
	if err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(target, "partition")); err == nil {
		return filepath.Base(filepath.Dir(target))
	}
	return filepath.Base(target)
}
