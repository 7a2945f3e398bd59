package contd

import (
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultPath is PATH when the Spec's environment has none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ociVersion is the runtime specification's version the configuration
// claims: every field contd sets is in 1.0, and older runtimes refuse a
// newer version than theirs (crun 1.8 of Debian 12 refuses 1.3.0).
const ociVersion = "1.0.2"

// cpuPeriod is the CFS period the CPU quota is given in (100 ms).
const cpuPeriod = 100_000

// capabilities are the Linux capabilities a container's processes keep:
// the set Docker gives by default.
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// maskedPaths hide what tells about, or acts on, the host.
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
	"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
}

// readonlyPaths may be read but not written.
var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// maxOpenFiles is the open files limit of a container's processes, if
// contd may give that much.
const maxOpenFiles = 65536

// nofile is the open files limit containers get: maxOpenFiles, or contd's
// own hard limit when lower (raising it above needs CAP_SYS_RESOURCE).
func nofile() uint64 {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil || l.Max > maxOpenFiles {
		return maxOpenFiles
	}
	return l.Max
}

// runtimeSpec is the OCI runtime configuration of the container: sources
// are the Spec's mount sources as the host has them ready (a disk image's
// mount point in place of the image); netns is the network namespace to
// join ("" for a new one with only loopback).
func (s *Service) runtimeSpec(c container, sp Spec, sources []string, netns string) specs.Spec {
	env := slices.Clone(sp.Env)
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append([]string{defaultPath}, env...)
	}
	cwd := sp.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	caps := capabilities
	var sysctl map[string]string
	if sp.Public != nil {
		// Packet and XDP sockets can send by ways the public link's
		// guard does not see (linkguard): a container on the public
		// network has no raw sockets. ping keeps working through ICMP
		// datagram sockets.
		caps = slices.DeleteFunc(slices.Clone(capabilities), func(c string) bool { return c == "CAP_NET_RAW" })
		sysctl = map[string]string{"net.ipv4.ping_group_range": "0 2147483647"}
	}
	rs := specs.Spec{
		Version: ociVersion,
		Process: &specs.Process{
			Args: sp.Args, Env: env, Cwd: cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile(), Soft: nofile()}},
		},
		Root:     &specs.Root{Path: sp.Root},
		Hostname: strings.TrimPrefix(c.name, NamePrefix),
		Mounts:   baseMounts(),
		Linux: &specs.Linux{
			CgroupsPath: s.cgroup(c),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.NetworkNamespace, Path: netns},
			},
			Resources:     s.resources(sp),
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
			Sysctl:        sysctl,
		},
	}
	for i, m := range sp.Mounts {
		opts := []string{"rbind", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		}
		rs.Mounts = append(rs.Mounts, specs.Mount{Destination: m.Target, Type: "bind", Source: sources[i], Options: opts})
	}
	return rs
}

// resources are the container's cgroup limits.
func (s *Service) resources(sp Spec) *specs.LinuxResources {
	pids := s.c.Pids
	r := &specs.LinuxResources{
		// Devices: none but those every runtime allows (null, zero,
		// random, tty, pts, ...).
		Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
		Pids:    &specs.LinuxPids{Limit: &pids},
	}
	if sp.Memory > 0 {
		limit := int64(sp.Memory)
		r.Memory = &specs.LinuxMemory{Limit: &limit}
		if s.cg.swapLimit {
			// Memory and swap together: no swap beyond the limit.
			r.Memory.Swap = &limit
		}
	}
	if sp.CPU > 0 {
		quota, period, shares := int64(sp.CPU)*cpuPeriod, uint64(cpuPeriod), uint64(sp.CPU)*1024
		r.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period, Shares: &shares}
	}
	return r
}

// baseMounts are the file systems every container has: its own /proc,
// /dev (a tmpfs the runtime fills with the usual devices), /dev/pts,
// /dev/shm, /dev/mqueue, and read-only /sys and cgroups.
func baseMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}
