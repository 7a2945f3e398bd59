// Package vmd is the node module that runs virtual machines: a workload's
// root file system (an flist mounted by flistd, with its writable layer)
// shared with a machine over virtiofs, booted with the node's kernel (or
// one the flist brings), its shares and disk images attached, on its
// network-light networks through TAP devices, its serial console appended
// to a file that zlogs follows.
//
// # Backends
//
// A machine runs under the first hypervisor that works on this host and
// that the farmer allows (Config.Backends): cloud-hypervisor with /dev/kvm,
// QEMU with KVM, QEMU without KVM (TCG: every Linux host, slowly). Info
// says which one the node uses and why the others cannot.
//
// # A machine
//
// vmd builds each machine an initramfs holding the guest init (cmd/g4init,
// package guest), its configuration (/grid4.json) and the kernel modules
// it needs, so nothing is required of the image: the init mounts the root
// and the rest, configures the network by MAC, runs the entrypoint and
// powers the machine off when it exits.
//
// Each machine has a directory Dir/machines/<short> (<short>: 10 hex
// characters derived from Config.Salt and the workload ID) holding the
// Spec it was started with (spec.json, written before anything is made),
// the backend it runs under, its initramfs, the pid files and sockets of
// its processes (the hypervisor, one virtiofsd per share) and the status
// line its init leaves when it powers off. Its TAP devices are
// g4v<short><n>, ports of the networks' bridges.
//
// # Lifetime
//
// The processes run detached, in sessions of their own, found again by
// their pid files: machines go on when vmd or the whole node daemon
// restarts, and a new Service on the same Dir finds them. After a reboot
// the provisioning engine calls Start again with the same Spec, which
// recreates the machine from its record.
package vmd

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/internal/keylock"
)

// Sentinel errors. They are bus codes: callers branch with errors.Is
// whether the error was made here or came back over the bus.
const (
	// ErrInvalid: the Spec or an argument is not acceptable.
	ErrInvalid bus.Code = "invalid"
	// ErrNotFound: no machine with that ID.
	ErrNotFound bus.Code = "not_found"
	// ErrNotRunning: the machine is stopped (Pause, Resume, Update).
	ErrNotRunning bus.Code = "not_running"
	// ErrNoNetwork: a bridge of the Spec does not exist on this node.
	ErrNoNetwork bus.Code = "no_network"
	// ErrNoHypervisor: no allowed backend can run here (the message says
	// why each cannot), or a tool it needs is missing.
	ErrNoHypervisor bus.Code = "no_hypervisor"
	// ErrNoKernel: the kernel to boot is missing or lacks a module a
	// machine needs.
	ErrNoKernel bus.Code = "no_kernel"
	// ErrUnsupported: the machine's backend cannot do that to a running
	// machine (Update); Stop and Start with the new Spec instead.
	ErrUnsupported bus.Code = "unsupported"
	// ErrHypervisor: the hypervisor refused or failed; the message is its
	// own.
	ErrHypervisor bus.Code = "hypervisor_error"
)

// Backend names, for Config.Backends and State.Backend.
const (
	// CloudHypervisor is cloud-hypervisor with /dev/kvm.
	CloudHypervisor = "cloud-hypervisor"
	// QEMUKVM is QEMU with KVM.
	QEMUKVM = "qemu-kvm"
	// QEMUTCG is QEMU without KVM: it emulates the CPU (TCG), on any
	// host, some ten times slower.
	QEMUTCG = "qemu-tcg"
)

// Backends lists every backend, in the order vmd prefers them.
var Backends = []string{CloudHypervisor, QEMUKVM, QEMUTCG}

// Defaults of Config and Spec.
const (
	// DefaultKernel is where scripts/machine-kernel.sh unpacks the
	// machine kernel.
	DefaultKernel = "/var/cache/grid4/kernel/current"
	// DefaultStopGrace is how long Stop lets a machine power off.
	DefaultStopGrace = 10 * time.Second
	// DefaultMemory is a machine's memory when the Spec gives none.
	DefaultMemory = 256 << 20
	// MinMemory is the least a machine may have.
	MinMemory = 64 << 20
	// TapPrefix starts the machines' TAP devices (g4v<short><n>: 14
	// bytes; link names are at most 15).
	TapPrefix = "g4v"
	// MaxNICs bounds a machine's network cards (one digit in the TAP's
	// name).
	MaxNICs = 10
)

// Config configures a Service.
type Config struct {
	// Dir keeps the machines' records, initramfs, sockets and pid files.
	// Required.
	Dir string
	// Kernel is the directory of the kernel machines boot when their
	// Spec brings none (DefaultKernel): boot/vmlinuz-<version> and
	// lib/modules/<version>/, as scripts/machine-kernel.sh makes it.
	Kernel string
	// Init is the guest init, a static binary (cmd/g4init); "" finds
	// g4init next to the running executable, then in PATH.
	Init string
	// Backends is the farmer's allow-list, in order of preference (nil:
	// Backends, all of them). A farmer forbids the slow QEMUTCG by
	// leaving it out.
	Backends []string
	// Salt is mixed into every name (machine directories, TAP devices):
	// several nodes (or tests) sharing a host give each its own. A node
	// passes netlightd's salt.
	Salt string
	// StopGrace is how long Stop lets a machine power off before killing
	// it (DefaultStopGrace); the guest gives its entrypoint half of it
	// between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// QEMU is qemu-system-x86_64 (a name in PATH or a path).
	QEMU string
	// CloudHypervisor is cloud-hypervisor (a name in PATH or a path).
	CloudHypervisor string
	// VirtioFSD is virtiofsd; "" is Debian's /usr/lib/qemu/virtiofsd,
	// else virtiofsd in PATH.
	VirtioFSD string
	// KVM is the KVM device (/dev/kvm).
	KVM string
	// IP runs ip for the TAP devices (nil: the host's).
	IP *iproute.IP
	// Logger receives the service's records.
	Logger *slog.Logger
}

// Spec is a machine as the provisioning engine describes it.
type Spec struct {
	// ID is the workload's ID, unique on the node.
	ID string `json:"id"`
	// Root is the directory shared as the machine's root file system
	// (flistd's writable overlay).
	Root string `json:"root"`
	// KernelDir is a kernel the image brings (boot/vmlinuz-* and
	// lib/modules/<version>/, e.g. inside the flist); "" boots
	// Config.Kernel.
	KernelDir string `json:"kernel_dir,omitempty"`
	// Args is the entrypoint's command line: an absolute path or a name
	// looked up in the guest's PATH, and its arguments.
	Args []string `json:"args"`
	// Env are its environment variables, KEY=VALUE; PATH has a default.
	Env []string `json:"env,omitempty"`
	// WorkingDir is where it starts ("/").
	WorkingDir string `json:"working_dir,omitempty"`
	// Hostname is the machine's host name ("" : the short name).
	Hostname string `json:"hostname,omitempty"`
	// SSHKeys are appended to the guest's /root/.ssh/authorized_keys.
	SSHKeys []string `json:"ssh_keys,omitempty"`
	// Mounts are the directories and disk images given to the machine.
	Mounts []Mount `json:"mounts,omitempty"`
	// NICs are its network cards.
	NICs []NIC `json:"nics,omitempty"`
	// CPU is its number of virtual CPUs (0: 1).
	CPU uint8 `json:"cpu,omitempty"`
	// Memory is its memory in bytes (0: DefaultMemory; at least
	// MinMemory).
	Memory uint64 `json:"memory,omitempty"`
	// Console receives the machine's serial console, appended (created
	// if missing).
	Console string `json:"console"`
}

// Mount gives the machine a host directory or a disk image.
type Mount struct {
	// Source is a host directory (shared over virtiofs) or a disk image
	// file (a virtio disk; formatted ext4 on the host first when blank).
	Source string `json:"source"`
	// Target is where the guest mounts it (absolute, not /).
	Target string `json:"target"`
	// ReadOnly gives it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// NIC is a network card: on a network-light network (Bridge), or
// straight on a host interface (Parent), for a public address.
type NIC struct {
	// Bridge is the network's bridge on the host (netlightd's g4b<id>).
	Bridge string `json:"bridge,omitempty"`
	// Parent is a host interface the card sits on through a macvtap in
	// bridge mode (netlightd's public interface): the guest is on that
	// network with its own MAC. Exactly one of Bridge and Parent is set.
	Parent string `json:"parent,omitempty"`
	// IP is the machine's address with the network's prefix length
	// (invalid: the guest only brings the card up).
	IP netip.Prefix `json:"ip,omitzero"`
	// Gateway is the default route's next hop (invalid: none).
	Gateway netip.Addr `json:"gateway,omitzero"`
	// MAC is the card's address ("": derived from the salt, the ID and
	// the card's position).
	MAC string `json:"mac,omitempty"`
}

// Status is what a machine is doing.
type Status string

// The statuses of a machine.
const (
	// Running: its hypervisor runs it.
	Running Status = "running"
	// Paused: its virtual CPUs are stopped (Pause).
	Paused Status = "paused"
	// Stopped: it powered off (its entrypoint ended, see ExitReason),
	// its hypervisor ended, or the node rebooted: Start recreates it.
	Stopped Status = "stopped"
)

// State is a machine's state.
type State struct {
	// ID is the workload's ID.
	ID string `json:"id"`
	// Status is what it is doing.
	Status Status `json:"status"`
	// Backend is the hypervisor it runs (or ran) under.
	Backend string `json:"backend"`
	// Pid is its hypervisor's process (0 when stopped).
	Pid int `json:"pid,omitempty"`
	// Started is when it was started (zero when unknown).
	Started time.Time `json:"started,omitzero"`
	// ExitReason says why a stopped machine stopped, e.g. "entrypoint
	// exited with status 0" or "failed: root file system: …", from its
	// init; empty while it runs.
	ExitReason string `json:"exit_reason,omitempty"`
	// Console is its console file.
	Console string `json:"console"`
}

// Service runs machines; its methods are safe for concurrent use (one
// operation at a time per machine).
type Service struct {
	c   Config
	ip  iproute.IP
	log *slog.Logger
	hvs map[string]hypervisor

	locks keylock.Locks
}

// New checks c and returns a service. It does not need a hypervisor to be
// installed: Info and Start say what is missing.
func New(c Config) (*Service, error) {
	if c.Dir == "" {
		return nil, errors.New("vmd: Config.Dir is required")
	}
	if c.Backends == nil {
		c.Backends = Backends
	}
	for _, b := range c.Backends {
		if !slices.Contains(Backends, b) {
			return nil, fmt.Errorf("vmd: unknown backend %q (known: %v)", b, Backends)
		}
	}
	if c.Kernel == "" {
		c.Kernel = DefaultKernel
	}
	if c.StopGrace == 0 {
		c.StopGrace = DefaultStopGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("vmd: %w", err)
	}
	c.Dir = dir
	if err := os.MkdirAll(machinesDir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("vmd: %w", err)
	}
	s := &Service{c: c, log: c.Logger, hvs: hypervisors(c)}
	if c.IP != nil {
		s.ip = *c.IP
	}
	return s, nil
}

func machinesDir(dir string) string { return filepath.Join(dir, "machines") }

// lock serialises the operations on one machine.
func (s *Service) lock(id string) func() { return s.locks.Lock(id) }

// BackendInfo is one backend on this host.
type BackendInfo struct {
	// Name is the backend's.
	Name string `json:"name"`
	// Allowed says the farmer allows it (Config.Backends).
	Allowed bool `json:"allowed"`
	// Unavailable says why it cannot run here ("" when it can).
	Unavailable string `json:"unavailable,omitempty"`
}

// Info says which backend new machines get and why the others are not
// used.
type Info struct {
	// Backend is the backend new machines get ("" when none can run).
	Backend string `json:"backend"`
	// Backends are all of them, in vmd's order of preference.
	Backends []BackendInfo `json:"backends"`
}

// Info reports the backends.
func (s *Service) Info() Info {
	var out Info
	for _, name := range Backends {
		bi := BackendInfo{Name: name, Allowed: slices.Contains(s.c.Backends, name)}
		if err := s.hvs[name].check(); err != nil {
			bi.Unavailable = err.Error()
		}
		out.Backends = append(out.Backends, bi)
	}
	for _, name := range s.c.Backends {
		for _, bi := range out.Backends {
			if bi.Name == name && bi.Unavailable == "" && out.Backend == "" {
				out.Backend = name
			}
		}
	}
	return out
}

// backend is the hypervisor new machines get, or ErrNoHypervisor saying
// why each allowed one cannot run.
func (s *Service) backend() (hypervisor, error) {
	var why []string
	for _, name := range s.c.Backends {
		hv := s.hvs[name]
		err := hv.check()
		if err == nil {
			return hv, nil
		}
		why = append(why, err.Error())
	}
	if len(why) == 0 {
		return nil, fmt.Errorf("vmd: %w: the farmer allows no backend", ErrNoHypervisor)
	}
	return nil, fmt.Errorf("vmd: %w: %s", ErrNoHypervisor, strings.Join(why, "; "))
}
