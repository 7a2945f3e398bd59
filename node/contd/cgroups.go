package contd

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// cgroupRoot is where the host mounts its cgroup hierarchies.
const cgroupRoot = "/sys/fs/cgroup"

// cgroups reads the containers' cgroups, v1 (a hierarchy per controller,
// including the "hybrid" hosts with a v2 mount beside them) or v2 (one
// hierarchy).
type cgroups struct {
	root string
	v2   bool
	// swapLimit: the kernel accounts swap, so a memory+swap limit can be
	// set (always on v2, where the runtime turns it into swap.max).
	swapLimit bool
}

func hostCgroups() cgroups {
	c := cgroups{root: cgroupRoot}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err == nil {
		c.v2, c.swapLimit = true, true
		return c
	}
	_, err := os.Stat(filepath.Join(cgroupRoot, "memory", "memory.memsw.limit_in_bytes"))
	c.swapLimit = err == nil
	return c
}

// file is a control file of the cgroup at path, of controller on v1.
func (c cgroups) file(controller, path, name string) string {
	if c.v2 {
		return filepath.Join(c.root, path, name)
	}
	return filepath.Join(c.root, controller, path, name)
}

// exists reports whether the cgroup at path exists (in the memory
// hierarchy on v1).
func (c cgroups) exists(path string) bool {
	dir := filepath.Join(c.root, path)
	if !c.v2 {
		dir = filepath.Join(c.root, "memory", path)
	}
	_, err := os.Stat(dir)
	return err == nil
}

// readUint reads a file holding one number ("max" is 0: no limit).
func readUint(file string) (uint64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return 0, nil
	}
	return strconv.ParseUint(v, 10, 64)
}

// keyed reads key from a file of "key value" lines.
func keyed(file, key string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no %s", file, key)
}

// oomKills is how many processes of the cgroup the OOM killer ended (0
// when unknown).
func (c cgroups) oomKills(path string) uint64 {
	var n uint64
	if c.v2 {
		n, _ = keyed(c.file("", path, "memory.events"), "oom_kill")
	} else {
		n, _ = keyed(c.file("memory", path, "memory.oom_control"), "oom_kill")
	}
	return n
}

// Stats are a container's resource use, read from its cgroup.
type Stats struct {
	// CPUTime is the CPU time its processes used, in nanoseconds.
	CPUTime uint64 `json:"cpu_time"`
	// Memory is the memory it uses now (page cache included), in bytes.
	Memory uint64 `json:"memory"`
	// MemoryPeak is the most it used (0 where the kernel does not say).
	MemoryPeak uint64 `json:"memory_peak"`
	// MemoryLimit is its limit (0: none).
	MemoryLimit uint64 `json:"memory_limit"`
	// OOMKills counts its processes the kernel killed for going over the
	// limit.
	OOMKills uint64 `json:"oom_kills"`
	// Pids is how many processes it has.
	Pids uint64 `json:"pids"`
}

// stats reads the cgroup at path.
func (c cgroups) stats(path string) (Stats, error) {
	var (
		st  Stats
		err error
	)
	if c.v2 {
		var usec uint64
		usec, err = keyed(c.file("", path, "cpu.stat"), "usage_usec")
		st.CPUTime = usec * 1000
		if err == nil {
			st.Memory, err = readUint(c.file("", path, "memory.current"))
		}
		if err == nil {
			st.MemoryLimit, err = readUint(c.file("", path, "memory.max"))
		}
		st.MemoryPeak, _ = readUint(c.file("", path, "memory.peak")) // Linux 5.19
	} else {
		st.CPUTime, err = readUint(c.file("cpuacct", path, "cpuacct.usage"))
		if err == nil {
			st.Memory, err = readUint(c.file("memory", path, "memory.usage_in_bytes"))
		}
		if err == nil {
			st.MemoryPeak, err = readUint(c.file("memory", path, "memory.max_usage_in_bytes"))
		}
		if err == nil {
			st.MemoryLimit, err = readUint(c.file("memory", path, "memory.limit_in_bytes"))
			// v1 says "no limit" with the largest page-aligned number.
			if st.MemoryLimit >= 1<<62 {
				st.MemoryLimit = 0
			}
		}
	}
	if err != nil {
		return Stats{}, fmt.Errorf("contd: cgroup %s: %w", path, err)
	}
	st.OOMKills = c.oomKills(path)
	st.Pids, _ = readUint(c.file("pids", path, "pids.current"))
	return st, nil
}

// Stats returns the container's resource use; ErrNotRunning when it has
// no cgroup (stopped and removed, or the node rebooted).
func (s *Service) Stats(ctx context.Context, id string) (Stats, error) {
	defer s.lock(id)()
	c := s.container(id)
	if _, err := s.state(ctx, c); err != nil {
		return Stats{}, err
	}
	path := s.cgroup(c)
	if !s.cg.exists(path) {
		return Stats{}, fmt.Errorf("contd: %s: %w", id, ErrNotRunning)
	}
	return s.cg.stats(path)
}
