package hostinfo

import (
	"bufio"
	"bytes"
	"strings"
)

const (
	dmiPath        = "/sys/class/dmi/id"
	sysVendorPath  = dmiPath + "/sys_vendor"
	productPath    = dmiPath + "/product_name"
	serialPath     = dmiPath + "/product_serial"
	dockerenvPath  = "/.dockerenv"
	containerenv   = "/run/.containerenv"
	systemdCtrPath = "/run/systemd/container"
	initCgroupPath = "/proc/1/cgroup"
	initEnvPath    = "/proc/1/environ"
)

// EvidenceKind says what a piece of virtualization evidence points to.
type EvidenceKind string

const (
	// VM evidence: the node runs under a hypervisor.
	VM EvidenceKind = "vm"
	// Container evidence: the node runs in a container.
	Container EvidenceKind = "container"
)

// Evidence is one sign that the node is virtualized.
type Evidence struct {
	// Kind is what the evidence points to: VM or Container.
	Kind EvidenceKind `json:"kind"`
	// Source is the file it was found in ("/proc/cpuinfo").
	Source string `json:"source"`
	// Detail is what was found there ("hypervisor flag", "QEMU").
	Detail string `json:"detail"`
}

// Virtualization is whether the node runs in a VM or a container, and why
// the probe thinks so.
type Virtualization struct {
	// Virtualized is true when there is any evidence.
	Virtualized bool `json:"virtualized"`
	// Evidence is every sign found, in the order the sources are read;
	// empty (not nil) when there is none.
	Evidence []Evidence `json:"evidence"`
}

// VM reports whether any evidence points to a hypervisor.
func (v Virtualization) VM() bool { return v.has(VM) }

// Container reports whether any evidence points to a container.
func (v Virtualization) Container() bool { return v.has(Container) }

func (v Virtualization) has(k EvidenceKind) bool {
	for _, e := range v.Evidence {
		if e.Kind == k {
			return true
		}
	}
	return false
}

// Virtualization gathers the evidence of a hypervisor or a container (see
// the package documentation for the sources). Both can hold at once: a
// container on a VM shows the hypervisor flag too.
//
// No evidence is a known "not virtualized" only when /proc/cpuinfo could
// be read, since its hypervisor flag is the one sign every VM shows; a
// machine whose cpuinfo is unreadable and shows no other sign is unknown.
func (p *Prober) Virtualization() Fact[Virtualization] {
	v := Virtualization{Evidence: []Evidence{}}
	add := func(kind EvidenceKind, source, detail string) {
		v.Evidence = append(v.Evidence, Evidence{Kind: kind, Source: source, Detail: detail})
	}

	cpuinfo, cpuErr := p.readFile(cpuinfoPath)
	if cpuErr == nil && hasHypervisorFlag(cpuinfo) {
		add(VM, cpuinfoPath, "hypervisor flag")
	}

	vendor, _ := p.readLine(sysVendorPath)
	product, _ := p.readLine(productPath)
	if name := hypervisorByDMI(vendor, product); name != "" {
		add(VM, dmiPath, name+" (sys_vendor "+quoteOrNone(vendor)+", product_name "+quoteOrNone(product)+")")
	}

	for _, m := range []struct{ path, detail string }{
		{dockerenvPath, "Docker"},
		{containerenv, "Podman"},
	} {
		if p.exists(m.path) {
			add(Container, m.path, m.detail)
		}
	}
	if s, err := p.readLine(systemdCtrPath); err == nil && s != "" {
		add(Container, systemdCtrPath, s)
	}
	if b, err := p.readFile(initCgroupPath); err == nil {
		if rt := containerCgroup(b); rt != "" {
			add(Container, initCgroupPath, rt)
		}
	}
	// Reading init's environment needs root; without it this marker is
	// simply not available, which is no evidence either way.
	if b, err := p.readFile(initEnvPath); err == nil {
		if c := containerEnv(b); c != "" {
			add(Container, initEnvPath, "container="+c)
		}
	}

	v.Virtualized = len(v.Evidence) > 0
	if !v.Virtualized && cpuErr != nil {
		return unknown[Virtualization](cpuinfoPath, "no evidence found, but %s", p.describe(cpuinfoPath, cpuErr))
	}
	return known(v, "cpuinfo, DMI and container markers")
}

// hasHypervisorFlag reports whether a "flags" line of /proc/cpuinfo (x86)
// lists "hypervisor", the CPUID bit hypervisors set for their guests.
func hasHypervisorFlag(cpuinfo []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	sc.Buffer(nil, maxFileBytes)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for f := range strings.FieldsSeq(val) {
			if f == "hypervisor" {
				return true
			}
		}
	}
	return false
}

// hypervisorByDMI names the hypervisor or cloud whose DMI vendor or product
// name this is, or returns "". Matching is on substrings, case-insensitive,
// because vendors vary their spelling ("QEMU", "qemu", "Standard PC (Q35 +
// ICH9, 2009)" with vendor "QEMU").
func hypervisorByDMI(vendor, product string) string {
	v, p := strings.ToLower(vendor), strings.ToLower(product)
	switch {
	case strings.Contains(v, "qemu") || strings.Contains(p, "qemu"):
		return "QEMU"
	case p == "kvm" || strings.Contains(p, "kvm virtual"):
		return "KVM"
	case strings.Contains(v, "vmware") || strings.Contains(p, "vmware"):
		return "VMware"
	case strings.Contains(v, "innotek") || strings.Contains(p, "virtualbox"):
		return "VirtualBox"
	case strings.Contains(v, "xen") || strings.Contains(p, "hvm domu"):
		return "Xen"
	case strings.Contains(v, "microsoft") && p == "virtual machine":
		// Microsoft also sells hardware (Surface): only this product name
		// is Hyper-V.
		return "Microsoft Hyper-V"
	case strings.Contains(v, "amazon ec2") && !strings.HasSuffix(p, ".metal"):
		// *.metal instances are bare metal under the same vendor string.
		return "Amazon EC2"
	case v == "google" || strings.Contains(p, "google compute engine"):
		return "Google Compute Engine"
	case strings.Contains(v, "digitalocean") || p == "droplet":
		return "DigitalOcean"
	case strings.Contains(p, "openstack"):
		return "OpenStack"
	case strings.Contains(v, "parallels") || strings.Contains(p, "parallels"):
		return "Parallels"
	case strings.Contains(v, "bochs") || strings.Contains(p, "bochs"):
		return "Bochs"
	case strings.Contains(v, "bhyve") || strings.Contains(p, "bhyve"):
		return "bhyve"
	case strings.Contains(v, "hetzner") && p == "vserver":
		return "Hetzner vServer"
	case strings.Contains(v, "alibaba") && strings.Contains(p, "ecs"):
		return "Alibaba Cloud ECS"
	}
	return ""
}

// containerCgroup names the container runtime whose path appears in
// /proc/1/cgroup (cgroup v1, or v2 without a cgroup namespace), or "".
func containerCgroup(b []byte) string {
	s := string(b)
	for _, m := range []struct{ marker, name string }{
		{"/docker", "Docker"},
		{"/kubepods", "Kubernetes"},
		{"libpod", "Podman"},
		{"/lxc", "LXC"},
		{"/containerd", "containerd"},
		{"/machine.slice/machine-", "systemd-nspawn"},
	} {
		if strings.Contains(s, m.marker) {
			return m.name
		}
	}
	return ""
}

// containerEnv returns the value of container= in a NUL-separated
// environment (systemd-nspawn, LXC and Podman set it for init), or "".
func containerEnv(b []byte) string {
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("container=")); ok && len(v) > 0 {
			return string(v)
		}
	}
	return ""
}

func quoteOrNone(s string) string {
	if s == "" {
		return "none"
	}
	return `"` + s + `"`
}
