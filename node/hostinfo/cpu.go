package hostinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

const (
	cpuOnlinePath = "/sys/devices/system/cpu/online"
	cpuinfoPath   = "/proc/cpuinfo"
	meminfoPath   = "/proc/meminfo"
)

// maxCPUs bounds a parsed CPU list: the kernel's NR_CPUS tops out at 8192
// today, so a larger count means a malformed file, not a machine.
const maxCPUs = 1 << 16

// CPUs returns the CRU: the number of logical CPUs online, from
// /sys/devices/system/cpu/online, or the processors of /proc/cpuinfo when
// sysfs lacks that file.
func (p *Prober) CPUs() Fact[uint64] {
	line, err := p.readLine(cpuOnlinePath)
	if err == nil {
		n, perr := parseCPUList(line)
		if perr != nil {
			return unknown[uint64](cpuOnlinePath, "%s: %v", cpuOnlinePath, perr)
		}
		return known(n, cpuOnlinePath)
	}
	b, cerr := p.readFile(cpuinfoPath)
	if cerr != nil {
		return unknown[uint64](cpuOnlinePath, "%s; %s", p.describe(cpuOnlinePath, err), p.describe(cpuinfoPath, cerr))
	}
	n := countProcessors(b)
	if n == 0 {
		return unknown[uint64](cpuinfoPath, "%s lists no processor", cpuinfoPath)
	}
	return known(n, cpuinfoPath)
}

// parseCPUList counts the CPUs of a kernel CPU list such as "0-3,8,10-11".
func parseCPUList(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty CPU list")
	}
	var n uint64
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return 0, fmt.Errorf("bad CPU number %q", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return 0, fmt.Errorf("bad CPU number %q", hi)
			}
		}
		if b < a {
			return 0, fmt.Errorf("bad CPU range %q", part)
		}
		n += b - a + 1
		if n > maxCPUs {
			return 0, fmt.Errorf("more than %d CPUs", maxCPUs)
		}
	}
	return n, nil
}

// countProcessors counts the "processor : N" entries of /proc/cpuinfo, one
// per logical CPU on every architecture Linux formats it for.
func countProcessors(b []byte) uint64 {
	var n uint64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, _, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "processor" {
			n++
		}
	}
	return n
}

// Memory returns the MRU: MemTotal of /proc/meminfo, in bytes.
func (p *Prober) Memory() Fact[uint64] {
	b, err := p.readFile(meminfoPath)
	if err != nil {
		return unknown[uint64](meminfoPath, "%s", p.describe(meminfoPath, err))
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "MemTotal" {
			continue
		}
		// The kernel writes "MemTotal:  16314668 kB", kB meaning KiB.
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return unknown[uint64](meminfoPath, "%s: MemTotal %q is not \"<n> kB\"", meminfoPath, strings.TrimSpace(rest))
		}
		kib, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil || kib == 0 || kib > 1<<50 {
			return unknown[uint64](meminfoPath, "%s: MemTotal %q is not a size", meminfoPath, fields[0])
		}
		return known(kib*1024, meminfoPath)
	}
	return unknown[uint64](meminfoPath, "%s has no MemTotal", meminfoPath)
}
