// Package zmachine is the type manager of ZMachineLight workloads: a
// machine that runs an flist — a user's container image pushed to the hub,
// or any flist with a program to run — on the deployment's NetworkLight
// networks, with its zmounts, volumes and QSFS mounted.
//
// The manager owns no process. It asks flistd for the machine's root file
// system (the flist under a writable layer of the machine's own) and one
// of the node's backends to run it:
//
//   - vm: vmd boots a virtual machine (cloud-hypervisor or QEMU with KVM,
//     QEMU without KVM otherwise) with that root over virtiofs;
//   - container: contd runs it as a container, on hosts where the farmer
//     allows it (it shares the host's kernel: weaker isolation).
//
// Config.Backends lists the kinds the node may use, in order; the first
// that can run here runs a new machine, and the machine keeps that kind
// for its whole life (it is recorded in the machine's directory), so that
// a restart never moves a workload from a VM to a container.
//
// What the machine runs: the workload's entrypoint (a command line, split
// as a shell would split words, without expansions), else the image's
// entrypoint and cmd, else /sbin/zinit init when the flist has it. Its
// environment is the image's, then the workload's env over it. SSH keys
// are the workload's SSH_KEY variable (one key a line).
package zmachine

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
)

// Kind is a kind of backend: what a machine runs as.
type Kind string

// The kinds of backend.
const (
	// VM: a virtual machine (vmd).
	VM Kind = "vm"
	// Container: a container (contd).
	Container Kind = "container"
)

// DefaultBackends is what a node runs machines with unless its farmer says
// otherwise: virtual machines only.
var DefaultBackends = []Kind{VM}

// Flists mounts machines' root file systems: flistd.Stub over the bus.
type Flists interface {
	Mount(ctx context.Context, flistURL, target string) (flistd.MountInfo, error)
	Unmount(ctx context.Context, target string) error
}

// PublicIPs hands the public addresses of PublicIPv4 workloads over to
// machines and takes them back: netlightd.Stub over the bus.
type PublicIPs interface {
	AttachPublicIP(ctx context.Context, spec netlightd.HolderSpec) (netlightd.PublicAttachment, error)
	DetachPublicIP(ctx context.Context, spec netlightd.HolderSpec) error
}

// Storage finds the storage workloads a machine mounts, by their workload
// ID (provisiond.Task.Sibling): the path of a zmount's image (disk true), or
// of a volume's or QSFS's directory.
type Storage interface {
	Locate(workloadID string) (path string, disk bool, err error)
}

// Config configures a Manager.
type Config struct {
	// Dir holds a directory per machine: its backend kind and the mount
	// point of its root file system. Required.
	Dir string
	// LogDir receives the consoles: <LogDir>/<workload ID>.log (what ZLogs
	// streams). Required.
	LogDir string
	// Backends are the kinds of backend this node may use, in order of
	// preference (DefaultBackends when empty).
	Backends []Kind
	// Machines runs virtual machines (vmd.Stub; nil: none).
	Machines Machines
	// Containers runs containers (contd.Stub; nil: none).
	Containers Containers
	// Flists mounts root file systems (nil: machines fail).
	Flists Flists
	// Storage locates disks and volumes (nil: machines with mounts fail).
	Storage Storage
	// Public gives machines their public addresses (nil: machines with
	// a public_ip fail).
	Public PublicIPs
	// Logger receives the manager's records (nil: discarded).
	Logger *slog.Logger
}

// Manager runs ZMachineLight workloads.
type Manager struct {
	c   Config
	log *slog.Logger
}

// New returns a manager for c.
func New(c Config) (*Manager, error) {
	if c.Dir == "" || c.LogDir == "" {
		return nil, errors.New("zmachine: Config.Dir and LogDir are required")
	}
	if len(c.Backends) == 0 {
		c.Backends = DefaultBackends
	}
	for _, k := range c.Backends {
		if k != VM && k != Container {
			return nil, fmt.Errorf("zmachine: unknown backend kind %q (vm, container)", k)
		}
	}
	m := &Manager{c: c, log: c.Logger}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	return m, nil
}

// Result is what a ZMachineLight workload reports.
type Result struct {
	// Backend is what the machine runs as: "vm" or "container".
	Backend Kind `json:"backend"`
	// Hypervisor is what runs a "vm" machine: cloud-hypervisor,
	// qemu-kvm or qemu-tcg (emulated, slow).
	Hypervisor string `json:"hypervisor,omitempty"`
	// Console is the machine's log on the node (what zlogs streams).
	Console string `json:"console"`
	// IPs are the machine's private addresses.
	IPs []string `json:"ips"`
	// PublicIP is its public address with prefix length, on a card of
	// its own on the node's public network ("" for none).
	PublicIP string `json:"public_ip,omitempty"`
}

func (m *Manager) dir(t provisiond.Task) string  { return filepath.Join(m.c.Dir, t.ID()) }
func (m *Manager) root(t provisiond.Task) string { return filepath.Join(m.dir(t), "root") }
func kindFile(dir string) string                 { return filepath.Join(dir, "backend") }

// Console is the log file of t's machine.
func (m *Manager) Console(t provisiond.Task) string {
	return filepath.Join(m.c.LogDir, t.ID()+".log")
}

// Provision runs the machine (or finds it running).
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	res, err := m.run(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("zmachine-light: %w", err)
	}
	return res, nil
}

// run picks the machine's backend, mounts its root, describes it and
// starts it.
func (m *Manager) run(ctx context.Context, t provisiond.Task) (Result, error) {
	var d gridtypes.ZMachineLightData
	if err := t.Workload.DecodeData(&d); err != nil {
		return Result{}, err
	}
	if m.c.Flists == nil { // before a backend is recorded (mountAndDescribe says it too)
		return Result{}, errors.New("no flist mounter on this node")
	}
	for _, dir := range []string{m.dir(t), m.c.LogDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return Result{}, err
		}
	}
	kind, b, err := m.pick(ctx, t)
	if err != nil {
		return Result{}, err
	}
	mc, err := m.mountAndDescribe(ctx, t, &d)
	if err != nil {
		return Result{}, err
	}
	if err := b.start(ctx, mc); err != nil {
		return Result{}, err
	}
	return m.result(ctx, kind, b, mc), nil
}

// resizeInPlace applies t to the running machine without a restart, if
// its backend can (the flist is the one mounted, and the rest is the
// same); an error says why not.
func (m *Manager) resizeInPlace(ctx context.Context, t provisiond.Task, d *gridtypes.ZMachineLightData, kind Kind, r resizer) (Result, error) {
	// Another public address is another card: checked before describe,
	// which would hand the new one over while the old is in use.
	if want := publicID(t, d); m.heldPublic(t) != want {
		return Result{}, errors.New("the public address changed")
	}
	// Mounting the mounted flist again is a no-op; another flist is
	// refused (a new root needs a restart).
	mc, err := m.mountAndDescribe(ctx, t, d)
	if err != nil {
		return Result{}, err
	}
	if err := r.resize(ctx, mc); err != nil {
		return Result{}, err
	}
	return m.result(ctx, kind, r, mc), nil
}

// mountAndDescribe mounts the machine's flist on its root (a no-op when
// mounted already) and describes the machine to run.
func (m *Manager) mountAndDescribe(ctx context.Context, t provisiond.Task, d *gridtypes.ZMachineLightData) (machine, error) {
	if m.c.Flists == nil {
		return machine{}, errors.New("no flist mounter on this node")
	}
	mi, err := m.c.Flists.Mount(ctx, d.Flist, m.root(t))
	if err != nil {
		return machine{}, fmt.Errorf("flist %s: %w", d.Flist, err)
	}
	return m.describe(ctx, t, d, mi)
}

// result is what a running machine's workload reports.
func (m *Manager) result(ctx context.Context, kind Kind, b backend, mc machine) Result {
	res := Result{Backend: kind, Console: mc.Console}
	if hv, ok := b.(interface {
		hypervisor(context.Context, string) string
	}); ok {
		res.Hypervisor = hv.hypervisor(ctx, mc.ID)
	}
	for _, n := range mc.NICs {
		if n.Parent != "" {
			res.PublicIP = n.IP.String()
			continue
		}
		res.IPs = append(res.IPs, n.IP.Addr().String())
	}
	return res
}

// pick returns the machine's recorded backend, or the first of
// Config.Backends that can run here, recorded before anything runs so
// that a crash never leaves a machine of an unknown kind.
func (m *Manager) pick(ctx context.Context, t provisiond.Task) (Kind, backend, error) {
	if k, ok := m.recorded(t); ok {
		b, err := m.backend(k)
		return k, b, err
	}
	var why []string
	for _, k := range m.c.Backends {
		b, err := m.backend(k)
		if err != nil {
			why = append(why, err.Error())
			continue
		}
		if err := b.check(ctx); err != nil {
			why = append(why, fmt.Sprintf("%s: %v", k, err))
			continue
		}
		if err := atomicfile.WriteFile(kindFile(m.dir(t)), []byte(k), 0o600); err != nil {
			return "", nil, fmt.Errorf("recording the backend: %w", err)
		}
		return k, b, nil
	}
	return "", nil, fmt.Errorf("%w: %s", ErrNoBackend, strings.Join(why, "; "))
}

// ErrNoBackend is wrapped when no backend the node allows can run a
// machine here.
var ErrNoBackend = errors.New("no backend can run machines on this node")

// recorded is the backend kind the machine was started with.
func (m *Manager) recorded(t provisiond.Task) (Kind, bool) {
	b, err := os.ReadFile(kindFile(m.dir(t)))
	if err != nil {
		return "", false
	}
	return Kind(strings.TrimSpace(string(b))), true
}

// backend is the backend of kind k.
func (m *Manager) backend(k Kind) (backend, error) {
	switch k {
	case VM:
		if m.c.Machines == nil {
			return nil, errors.New("vm: no vmd on this node")
		}
		return vms{m.c.Machines}, nil
	case Container:
		if m.c.Containers == nil {
			return nil, errors.New("container: no contd on this node")
		}
		if !slices.Contains(m.c.Backends, Container) {
			return nil, errors.New("container: not allowed by the farmer")
		}
		return containers{m.c.Containers}, nil
	}
	return nil, fmt.Errorf("unknown backend kind %q", k)
}

// Deprovision stops the machine and removes its root mount and directory.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	dir := m.dir(t)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	if k, ok := m.recorded(t); ok {
		if b, err := m.backend(k); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, b.stop(ctx, t.ID()))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	// Only once the machine and its link are gone.
	errs = append(errs, m.detachPublic(ctx, t))
	if m.c.Flists != nil {
		errs = append(errs, m.c.Flists.Unmount(ctx, m.root(t)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	// Remove, not RemoveAll, for the root mount point: were it still
	// mounted, RemoveAll would delete through it.
	os.Remove(m.root(t))
	os.Remove(kindFile(dir))
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	return nil
}

// resizer is a backend that gives a running machine new CPU and memory
// figures in place (vms: vmd's hotplug).
type resizer interface {
	backend
	resize(ctx context.Context, mc machine) error
}

// Update applies a new version of the machine. A virtual machine whose
// new version differs in CPU and memory alone, and grows, gets them in
// place while it runs; otherwise the backend restarts it with the new
// description (CPU, memory, entrypoint, env, mounts…); its root file
// system and what it wrote there stay, unless the flist changed.
func (m *Manager) Update(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.ZMachineLightData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("zmachine-light: %w", err)
	}
	if k, ok := m.recorded(t); ok {
		b, err := m.backend(k)
		if err != nil {
			return nil, fmt.Errorf("zmachine-light: %w", err)
		}
		if r, ok := b.(resizer); ok && t.State == gridtypes.StateOk {
			res, err := m.resizeInPlace(ctx, t, &d, k, r)
			if err == nil {
				return res, nil
			}
			m.log.Info("machine restarted for its update", "id", t.ID(), "why", err)
		}
		if err := b.stop(ctx, t.ID()); err != nil {
			return nil, fmt.Errorf("zmachine-light: stopping for the update: %w", err)
		}
		// An address the new version no longer names goes back to its
		// workload; the one it names is attached by Provision (and kept
		// when it is the same).
		if m.heldPublic(t) != publicID(t, &d) {
			if err := m.detachPublic(ctx, t); err != nil {
				return nil, fmt.Errorf("zmachine-light: %w", err)
			}
		}
	}
	if m.c.Flists != nil {
		// flistd refuses another flist on a mounted target: a new flist
		// is a new root.
		if err := m.c.Flists.Unmount(ctx, m.root(t)); err != nil {
			return nil, fmt.Errorf("zmachine-light: %w", err)
		}
	}
	return m.Provision(ctx, t)
}

// Restore runs the machine again after a restart of the node: a no-op
// for a machine that still runs, a new start after a reboot; a machine
// that is not running afterwards is an error.
func (m *Manager) Restore(ctx context.Context, t provisiond.Task) error {
	res, err := m.run(ctx, t)
	if err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	b, err := m.backend(res.Backend)
	if err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	up, why, err := b.running(ctx, t.ID())
	if err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	if !up {
		return fmt.Errorf("zmachine-light: not running after the restart: %s", why)
	}
	if t.State == gridtypes.StatePaused {
		return m.Pause(ctx, t)
	}
	return nil
}

// Pause suspends the machine.
func (m *Manager) Pause(ctx context.Context, t provisiond.Task) error {
	return m.each(ctx, t, backend.pause)
}

// Resume continues the machine.
func (m *Manager) Resume(ctx context.Context, t provisiond.Task) error {
	return m.each(ctx, t, backend.resume)
}

func (m *Manager) each(ctx context.Context, t provisiond.Task, f func(backend, context.Context, string) error) error {
	k, ok := m.recorded(t)
	if !ok {
		return fmt.Errorf("zmachine-light: %s is not running on this node", t.ID())
	}
	b, err := m.backend(k)
	if err == nil {
		err = f(b, ctx, t.ID())
	}
	if err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	return nil
}
