package hostinfo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/grid4/grid4/registrar/api"
)

// maxFileBytes bounds what a probe reads from one file. /proc/cpuinfo of a
// 512-thread machine is under 1 MiB; anything bigger is not a file the
// probes understand, and a fixture tree should not make a probe read
// without limit.
const maxFileBytes = 4 << 20

// Fact is one fact about the machine and whether it could be established.
type Fact[T any] struct {
	// Value is the fact; the zero value when Known is false.
	Value T `json:"value"`
	// Known is true when Value was read from the machine.
	Known bool `json:"known"`
	// Source names the file (relative to the root) or mechanism the value
	// came from, for humans.
	Source string `json:"source,omitempty"`
	// Reason says why the fact is unknown, or, when it is known without
	// having been read directly (secure boot on a machine without EFI), how
	// it was inferred.
	Reason string `json:"reason,omitempty"`
}

// known returns a fact read from source.
func known[T any](v T, source string) Fact[T] {
	return Fact[T]{Value: v, Known: true, Source: source}
}

// unknown returns a fact that could not be established, with the reason.
func unknown[T any](source, format string, args ...any) Fact[T] {
	return Fact[T]{Source: source, Reason: fmt.Sprintf(format, args...)}
}

// Config configures a Prober.
type Config struct {
	// Root is the directory the probes read /proc, /sys and the container
	// markers under: "/" (the default when empty) for the live machine, a
	// fixture tree in tests.
	Root string
	// Interface is the management interface's name. Empty means the
	// interface of the default route.
	Interface string
	// Addrs lists the management interface's addresses. Nil means the live
	// system's (SystemAddrs), whatever Root is.
	Addrs AddrSource
}

// Prober reads facts about one machine. It holds no state between probes,
// so it is safe for concurrent use and every call sees the machine as it is
// now.
type Prober struct {
	root  string
	iface string
	addrs AddrSource
}

// New returns a Prober for cfg. It fails when the root is not a directory
// or the interface name could not be one: the name is joined into paths
// under the root, so it must not be able to leave /sys/class/net.
func New(cfg Config) (*Prober, error) {
	root := cfg.Root
	if root == "" {
		root = "/"
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("hostinfo: root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("hostinfo: root %s is not a directory", root)
	}
	if cfg.Interface != "" && !validIfName(cfg.Interface) {
		return nil, fmt.Errorf("hostinfo: %q is not a network interface name", cfg.Interface)
	}
	addrs := cfg.Addrs
	if addrs == nil {
		addrs = SystemAddrs{}
	}
	return &Prober{root: root, iface: cfg.Interface, addrs: addrs}, nil
}

// Facts is everything a Prober learns about the machine.
type Facts struct {
	// CPUs is the CRU: the number of logical CPUs online.
	CPUs Fact[uint64] `json:"cpus"`
	// Memory is the MRU: total memory in bytes.
	Memory Fact[uint64] `json:"memory"`
	// Disks are the block devices found, counted or skipped.
	Disks Fact[DiskList] `json:"disks"`
	// GPUs are the PCI display controllers.
	GPUs Fact[[]GPU] `json:"gpus"`
	// SecureBoot tells whether the machine booted with UEFI secure boot.
	SecureBoot Fact[bool] `json:"secure_boot"`
	// Virtualization tells whether the node runs in a VM or a container.
	Virtualization Fact[Virtualization] `json:"virtualization"`
	// Serial is the machine's serial number (DMI).
	Serial Fact[string] `json:"serial"`
	// Interface is the management interface.
	Interface Fact[api.Interface] `json:"interface"`
}

// Resources returns the capacity in the registrar's terms. A part whose
// fact is unknown is 0; Missing says which.
func (f Facts) Resources() api.Resources {
	return api.Resources{
		CRU: f.CPUs.Value,
		MRU: f.Memory.Value,
		SRU: f.Disks.Value.SRU(),
		HRU: f.Disks.Value.HRU(),
	}
}

// Missing lists the facts that could not be established, one
// "name: reason" per fact, and the disks that could not be read; nil when
// everything is known.
func (f Facts) Missing() []string {
	var out []string
	add := func(name string, ok bool, reason string) {
		if !ok {
			out = append(out, name+": "+reason)
		}
	}
	add("cpus", f.CPUs.Known, f.CPUs.Reason)
	add("memory", f.Memory.Known, f.Memory.Reason)
	add("disks", f.Disks.Known, f.Disks.Reason)
	for _, d := range f.Disks.Value {
		add("disk "+d.Name, d.Problem == "", d.Problem)
	}
	add("gpus", f.GPUs.Known, f.GPUs.Reason)
	add("secure_boot", f.SecureBoot.Known, f.SecureBoot.Reason)
	add("virtualization", f.Virtualization.Known, f.Virtualization.Reason)
	add("serial", f.Serial.Known, f.Serial.Reason)
	add("interface", f.Interface.Known, f.Interface.Reason)
	return out
}

// Probe runs every probe. A fact that cannot be read is reported in Facts,
// not as an error: the only error is ctx's, when it ends before all probes
// ran (each probe reads a few local files, so ctx is checked between
// them).
func (p *Prober) Probe(ctx context.Context) (Facts, error) {
	var f Facts
	steps := []func(){
		func() { f.CPUs = p.CPUs() },
		func() { f.Memory = p.Memory() },
		func() { f.Disks = p.Disks() },
		func() { f.GPUs = p.GPUs() },
		func() { f.SecureBoot = p.SecureBoot() },
		func() { f.Virtualization = p.Virtualization() },
		func() { f.Serial = p.Serial() },
		func() { f.Interface = p.Interface() },
	}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return Facts{}, fmt.Errorf("hostinfo: probe: %w", err)
		}
		step()
	}
	return f, nil
}

// path returns rel (a slash-separated absolute path such as
// "/proc/meminfo") under the root.
func (p *Prober) path(rel string) string {
	return filepath.Join(p.root, filepath.FromSlash(rel))
}

// readFile reads rel under the root, at most maxFileBytes of it.
func (p *Prober) readFile(rel string) ([]byte, error) {
	f, err := os.Open(p.path(rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Pseudo-files of /proc and /sys report size 0, so read to EOF rather
	// than trusting Stat; the limit keeps a runaway file bounded.
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("read %s: larger than %d bytes", rel, maxFileBytes)
	}
	return b, nil
}

// readLine reads a one-value sysfs file and returns it without surrounding
// white space.
func (p *Prober) readLine(rel string) (string, error) {
	b, err := p.readFile(rel)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// exists reports whether rel exists under the root. Errors other than "does
// not exist" (permissions) count as existing: something is there.
func (p *Prober) exists(rel string) bool {
	_, err := os.Lstat(p.path(rel))
	return err == nil || !errors.Is(err, os.ErrNotExist)
}

// describe turns a read error into a short reason, without the root prefix
// that only says where the fixture tree lives.
func (p *Prober) describe(rel string, err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return rel + " does not exist"
	case errors.Is(err, os.ErrPermission):
		return rel + ": permission denied"
	}
	return strings.ReplaceAll(err.Error(), p.path(rel), rel)
}
