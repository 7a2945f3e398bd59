// Package contd is the node module that runs containers: a workload's
// root file system (an flist mounted by flistd, with its writable layer)
// run by an OCI runtime, runc (or crun, which has the same command line),
// under the workload's CPU, memory and pids limits, on its network-light
// network, with its output appended to a log file that zlogs follows.
//
// It is the ZMachineLight backend for hosts without a hypervisor, which a
// farmer enables explicitly: a container shares the host's kernel, so it
// isolates a workload less than a virtual machine does.
//
// # A container
//
// Each container has a directory Dir/containers/<short> (<short>: 10 hex
// characters derived from Config.Salt and the workload ID) holding the
// Spec it was started with (spec.json, written before anything is made,
// so a crash leaves nothing unknown), the OCI bundle's config.json (see
// runtimeSpec), the runtime's own log and the mount points of its disk
// images. Its parts on the host are named after <short>:
//
//   - the runtime's container g4c<short>, with its state under
//     Dir/runtime and its cgroup Config.CgroupParent/g4c<short>;
//   - with a network, a namespace g4c-<short> holding eth0 (the
//     workload's address, a default route through the network's
//     gateway), the other end of a veth g4c<short> whose host end is a
//     port of the network's bridge.
//
// # Lifetime
//
// The runtime starts the container detached, with the log file (opened
// for appending) as its standard output and error: no process of contd
// stands between the container and its log, so containers and their logs
// go on when contd or the whole node daemon restarts, and a new Service on
// the same Dir finds them again (everything is read from the directory
// and the runtime's state). After a reboot the containers are gone; the
// provisioning engine calls Start again with the same Spec, which
// recreates the container from its record.
package contd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/ctxsleep"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/internal/keylock"
	"github.com/grid4/grid4/node/internal/record"
)

// Sentinel errors. They are bus codes: callers branch with errors.Is
// whether the error was made here or came back over the bus.
const (
	// ErrInvalid: the Spec or an argument is not acceptable.
	ErrInvalid bus.Code = "invalid"
	// ErrNotFound: no container with that ID.
	ErrNotFound bus.Code = "not_found"
	// ErrNotRunning: the container is stopped (Pause, Resume, Stats of
	// a container that is not there).
	ErrNotRunning bus.Code = "not_running"
	// ErrNoNetwork: the Spec's bridge does not exist on this node.
	ErrNoNetwork bus.Code = "no_network"
	// ErrNoRuntime: the host cannot run containers (the runtime or ip
	// missing, not root); the message says what is missing.
	ErrNoRuntime bus.Code = "no_runtime"
	// ErrRuntime: the runtime refused or failed; the message is its own,
	// e.g. the program of Spec.Args not found in the root file system.
	ErrRuntime bus.Code = "runtime_error"
)

// Defaults of Config.
const (
	// DefaultRuntime runs the containers.
	DefaultRuntime = "runc"
	// DefaultCgroupParent is where the containers' cgroups go, from the
	// root of each hierarchy.
	DefaultCgroupParent = "/grid4/contd"
	// DefaultPids bounds the processes of one container.
	DefaultPids = 4096
	// DefaultStopGrace is how long Stop waits after SIGTERM.
	DefaultStopGrace = 10 * time.Second
)

// Name prefixes of a container's parts on the host.
const (
	// NamePrefix starts the runtime's container ID, its cgroup and the
	// host end of its veth (g4c<short>, 13 bytes: link names are at most
	// 15).
	NamePrefix = "g4c"
	// NamespacePrefix starts its network namespace (g4c-<short>).
	NamespacePrefix = "g4c-"
	// Eth is the container's interface, in its namespace.
	Eth = "eth0"
)

// Config configures a Service.
type Config struct {
	// Dir keeps the containers' records, bundles and the runtime's
	// state. Required.
	Dir string
	// Runtime is the OCI runtime: "runc" (DefaultRuntime) or "crun", a
	// name looked up in PATH or a path. Both take the same commands; crun
	// refuses cgroup v1 hosts with a cgroup v2 mount ("hybrid") until the
	// hugetlb controller is mounted as v1 (docs/contd.md).
	Runtime string
	// Salt is mixed into every name (containers, namespaces, links,
	// cgroups): several nodes (or tests) sharing a host give each its
	// own. A node passes netlightd's salt.
	Salt string
	// CgroupParent is the cgroup path under which each container gets its
	// own (DefaultCgroupParent), absolute from each hierarchy's root so
	// that containers do not sit in contd's own cgroup.
	CgroupParent string
	// Pids bounds the processes of a container (DefaultPids).
	Pids int64
	// StopGrace is how long Stop lets a container end after SIGTERM
	// before killing it (DefaultStopGrace).
	StopGrace time.Duration
	// IP runs ip (nil: the host's).
	IP *iproute.IP
	// Logger receives the service's records.
	Logger *slog.Logger
}

// Spec is a container as the provisioning engine describes it.
type Spec struct {
	// ID is the workload's ID, unique on the node.
	ID string `json:"id"`
	// Root is the root file system: a directory, already mounted and
	// writable (flistd's overlay).
	Root string `json:"root"`
	// Args is the command line of the container's first process.
	Args []string `json:"args"`
	// Env are its environment variables, KEY=VALUE; PATH has a default.
	Env []string `json:"env,omitempty"`
	// WorkingDir is where it starts ("/" when empty).
	WorkingDir string `json:"working_dir,omitempty"`
	// Mounts are the directories and disk images given to the container.
	Mounts []Mount `json:"mounts,omitempty"`
	// Network attaches the container to a network-light network; nil
	// leaves it with a loopback interface only.
	Network *Network `json:"network,omitempty"`
	// Public gives the container a public address on a macvlan of the
	// node's public interface (link PublicLink) with the default route;
	// Network's gateway then serves only what leaves from its address.
	Public *Public `json:"public,omitempty"`
	// CPU is the number of cores the container may use (0: no limit).
	CPU uint8 `json:"cpu,omitempty"`
	// Memory is its memory limit in bytes (0: no limit); swap is not
	// given on top of it.
	Memory uint64 `json:"memory,omitempty"`
	// Log receives the container's standard output and error, appended.
	Log string `json:"log"`
}

// Mount gives the container a host directory or a disk image.
type Mount struct {
	// Source is a host directory (bind-mounted) or a disk image file
	// (loop-mounted on the host, formatted ext4 first when blank, then
	// bind-mounted).
	Source string `json:"source"`
	// Target is where the container sees it (absolute).
	Target string `json:"target"`
	// ReadOnly mounts it read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Network places the container on a network-light network.
type Network struct {
	// Bridge is the network's bridge on the host (netlightd's g4b<id>).
	Bridge string `json:"bridge"`
	// IP is the container's address with the network's prefix length.
	IP netip.Prefix `json:"ip"`
	// Gateway is the network's router (the default route); the zero
	// address gives no default route.
	Gateway netip.Addr `json:"gateway"`
	// MAC is the address of eth0 ("" lets the kernel choose).
	MAC string `json:"mac,omitempty"`
}

// Public is a public address of the node's pool, handed to a container
// (netlightd.AttachPublicIP).
type Public struct {
	// Parent is the node's public interface.
	Parent string `json:"parent"`
	// IP is the address with its prefix length.
	IP netip.Prefix `json:"ip"`
	// Gateway is the default route.
	Gateway netip.Addr `json:"gateway"`
	// MAC is the address's MAC (the one the upstream router knows).
	MAC string `json:"mac"`
}

// PublicLink is the name of the public address's link in a container.
const PublicLink = "public"

// Status is what a container is doing, as the runtime says.
type Status string

// The statuses of a container.
const (
	// Running: its first process runs.
	Running Status = "running"
	// Paused: frozen (Pause).
	Paused Status = "paused"
	// Created: made by the runtime but not started (a Start interrupted
	// half way; Start again or Stop).
	Created Status = "created"
	// Stopped: its first process ended (it exited or was killed), or the
	// node rebooted: Start recreates it.
	Stopped Status = "stopped"
)

// State is a container's state.
type State struct {
	// ID is the workload's ID.
	ID string `json:"id"`
	// Status is what it is doing.
	Status Status `json:"status"`
	// Pid is its first process on the host (0 when stopped).
	Pid int `json:"pid,omitempty"`
	// Started is when the runtime made it (zero when unknown).
	Started time.Time `json:"started,omitzero"`
	// OOMKilled says that the kernel killed a process of the container
	// for going over its memory limit (possibly not the first one).
	OOMKilled bool `json:"oom_killed,omitempty"`
	// Log is the container's log file.
	Log string `json:"log"`
}

// Service runs containers; its methods are safe for concurrent use (one
// operation at a time per container).
type Service struct {
	c   Config
	rt  runtime
	ip  iproute.IP
	cg  cgroups
	log *slog.Logger

	locks keylock.Locks
}

// New checks c and returns a service. It does not need the runtime to be
// installed: Start says what is missing (Check).
func New(c Config) (*Service, error) {
	if c.Dir == "" {
		return nil, errors.New("contd: Config.Dir is required")
	}
	if c.Runtime == "" {
		c.Runtime = DefaultRuntime
	}
	if b := filepath.Base(c.Runtime); b != "runc" && b != "crun" {
		return nil, fmt.Errorf("contd: runtime %q is neither runc nor crun", c.Runtime)
	}
	if c.CgroupParent == "" {
		c.CgroupParent = DefaultCgroupParent
	}
	if !filepath.IsAbs(c.CgroupParent) {
		return nil, fmt.Errorf("contd: cgroup parent %q is not absolute", c.CgroupParent)
	}
	if c.Pids == 0 {
		c.Pids = DefaultPids
	}
	if c.StopGrace == 0 {
		c.StopGrace = DefaultStopGrace
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, fmt.Errorf("contd: %w", err)
	}
	c.Dir = dir
	for _, d := range []string{containersDir(dir), runtimeRoot(dir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("contd: %w", err)
		}
	}
	s := &Service{c: c, rt: runtime{bin: c.Runtime, root: runtimeRoot(dir)}, cg: hostCgroups(), log: c.Logger}
	if c.IP != nil {
		s.ip = *c.IP
	}
	return s, nil
}

func containersDir(dir string) string { return filepath.Join(dir, "containers") }
func runtimeRoot(dir string) string   { return filepath.Join(dir, "runtime") }

// Check says why this host cannot run containers (wrapping ErrNoRuntime),
// or nil.
func (s *Service) Check(context.Context) error {
	if _, err := exec.LookPath(s.c.Runtime); err != nil {
		return fmt.Errorf("contd: %w: %s not found (install the %s package)", ErrNoRuntime, s.c.Runtime, filepath.Base(s.c.Runtime))
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("contd: %w: containers need root", ErrNoRuntime)
	}
	if err := s.ip.Check(); err != nil {
		return fmt.Errorf("contd: %w: %w", ErrNoRuntime, err)
	}
	return nil
}

// container is where one container's parts are.
type container struct {
	id    string // the workload's
	name  string // the runtime's ID, cgroup leaf and host veth
	netns string
	dir   string
}

func (s *Service) container(id string) container {
	short := iproute.ShortID(s.c.Salt + id)
	return container{id: id, name: NamePrefix + short, netns: NamespacePrefix + short, dir: filepath.Join(containersDir(s.c.Dir), short)}
}

func (c container) runtimeLog() string { return filepath.Join(c.dir, "runtime.log") }
func (c container) disk(i int) string  { return filepath.Join(c.dir, "disks", fmt.Sprint(i)) }

// cgroup is the container's cgroup path.
func (s *Service) cgroup(c container) string { return filepath.Join(s.c.CgroupParent, c.name) }

// lock serialises the operations on one container.
func (s *Service) lock(id string) func() { return s.locks.Lock(id) }

// check validates the spec.
func (sp Spec) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("contd: %w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if sp.ID == "" {
		return bad("no container ID")
	}
	if !filepath.IsAbs(sp.Root) {
		return bad("root %q is not an absolute path", sp.Root)
	}
	if fi, err := os.Stat(sp.Root); err != nil || !fi.IsDir() {
		return bad("root %s is not a directory", sp.Root)
	}
	if len(sp.Args) == 0 || sp.Args[0] == "" {
		return bad("no command to run")
	}
	for _, e := range sp.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return bad("environment variable %q is not KEY=VALUE", e)
		}
	}
	if sp.WorkingDir != "" && !filepath.IsAbs(sp.WorkingDir) {
		return bad("working directory %q is not absolute", sp.WorkingDir)
	}
	for _, m := range sp.Mounts {
		if !filepath.IsAbs(m.Source) || !filepath.IsAbs(m.Target) || filepath.Clean(m.Target) == "/" {
			return bad("mount %s on %s: source and target must be absolute, the target not /", m.Source, m.Target)
		}
		fi, err := os.Stat(m.Source)
		if err != nil {
			return bad("mount source %s: %v", m.Source, err)
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return bad("mount source %s is neither a directory nor a disk image", m.Source)
		}
	}
	if n := sp.Network; n != nil {
		if n.Bridge == "" || !n.IP.IsValid() {
			return bad("a network needs a bridge and an address")
		}
		if n.Gateway.IsValid() && !n.IP.Masked().Contains(n.Gateway) {
			return bad("gateway %s is not in %s", n.Gateway, n.IP.Masked())
		}
	}
	if p := sp.Public; p != nil {
		if p.Parent == "" || !p.IP.IsValid() || !p.Gateway.IsValid() || p.MAC == "" {
			return bad("a public address needs a parent interface, an address, a gateway and a MAC")
		}
		if !p.IP.Masked().Contains(p.Gateway) {
			return bad("gateway %s is not in %s", p.Gateway, p.IP.Masked())
		}
	}
	if !filepath.IsAbs(sp.Log) {
		return bad("log %q is not an absolute path", sp.Log)
	}
	return nil
}

// Start runs the container sp describes. A container already running
// (or paused) with the same Spec is left alone; one that is stopped, or
// runs with another Spec, is removed and made again from sp.
func (s *Service) Start(ctx context.Context, sp Spec) error {
	if err := sp.check(); err != nil {
		return err
	}
	if err := s.Check(ctx); err != nil {
		return err
	}
	defer s.lock(sp.ID)()
	c := s.container(sp.ID)
	want, err := json.Marshal(sp)
	if err != nil {
		return fmt.Errorf("contd: %w", err)
	}
	st, err := s.rt.state(ctx, c.name)
	if err != nil {
		return err
	}
	if st.Status == Running || st.Status == Paused {
		if record.Holds(c.dir, want) {
			return nil
		}
		s.log.Info("container runs with another spec: making it again", "id", sp.ID)
	}
	if err := s.teardown(ctx, c); err != nil {
		return err
	}
	if err := record.Write(c.dir, want); err != nil {
		return fmt.Errorf("contd: %w", err)
	}
	if err := s.create(ctx, c, sp); err != nil {
		// Leave nothing half made; the record goes too, so that State
		// says not_found rather than a container that never ran.
		if terr := s.teardown(ctx, c); terr != nil {
			s.log.Warn("cleaning up after a failed start", "id", sp.ID, "err", terr)
		}
		return err
	}
	s.log.Info("container started", "id", sp.ID, "container", c.name)
	return nil
}

// create makes the container's network and disk mounts and runs it.
func (s *Service) create(ctx context.Context, c container, sp Spec) error {
	var netnsPath string
	if sp.Network != nil || sp.Public != nil {
		if err := s.plug(ctx, c, sp); err != nil {
			return err
		}
		netnsPath = filepath.Join("/run/netns", c.netns)
	}
	sources := make([]string, len(sp.Mounts))
	for i, m := range sp.Mounts {
		sources[i] = m.Source
		fi, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("contd: %w", err)
		}
		if fi.IsDir() {
			continue
		}
		if err := mountDisk(ctx, m.Source, c.disk(i)); err != nil {
			return fmt.Errorf("contd: disk %s: %w", m.Source, err)
		}
		sources[i] = c.disk(i)
	}
	rs := s.runtimeSpec(c, sp, sources, netnsPath)
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return fmt.Errorf("contd: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(c.dir, "config.json"), b, 0o600); err != nil {
		return fmt.Errorf("contd: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(sp.Log), 0o700); err != nil {
		return fmt.Errorf("contd: log: %w", err)
	}
	out, err := os.OpenFile(sp.Log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("contd: log: %w", err)
	}
	defer out.Close()
	return s.rt.run(ctx, c.name, c.dir, c.runtimeLog(), out)
}

// teardown removes whatever exists of the container: the runtime's
// container (killed), its network, its disk mounts and its directory.
// The log stays: it belongs to whoever reads it.
func (s *Service) teardown(ctx context.Context, c container) error {
	if err := s.rt.remove(ctx, c.name); err != nil {
		return err
	}
	if err := s.unplug(ctx, c); err != nil {
		return err
	}
	disks, _ := filepath.Glob(filepath.Join(c.dir, "disks", "*"))
	for _, d := range disks {
		if err := unmountDisk(ctx, d); err != nil {
			return fmt.Errorf("contd: %w", err)
		}
	}
	if err := mountinfo.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("contd: %w", err)
	}
	return nil
}

// Stop ends the container (SIGTERM, then SIGKILL after Config.StopGrace)
// and removes it with its network and disk mounts. Stopping an unknown
// container succeeds.
func (s *Service) Stop(ctx context.Context, id string) error {
	defer s.lock(id)()
	c := s.container(id)
	st, err := s.rt.state(ctx, c.name)
	if err != nil {
		return err
	}
	if st.Status == Paused {
		// A frozen process cannot act on SIGTERM.
		if err := s.rt.do(ctx, "resume", c.name); err != nil {
			s.log.Warn("resume before stop", "id", id, "err", err)
		}
		st.Status = Running
	}
	if st.Status == Running {
		s.terminate(ctx, c)
	}
	if err := s.teardown(ctx, c); err != nil {
		return err
	}
	s.log.Info("container stopped", "id", id, "container", c.name)
	return nil
}

// terminate sends SIGTERM and waits for the container to stop, at most
// Config.StopGrace (teardown kills what remains).
func (s *Service) terminate(ctx context.Context, c container) {
	if err := s.rt.do(ctx, "kill", c.name, "TERM"); err != nil {
		return
	}
	ctxsleep.Until(ctx, s.c.StopGrace, 50*time.Millisecond, func(ctx context.Context) bool {
		st, err := s.rt.state(ctx, c.name)
		return err != nil || st.Status != Running
	})
}

// Pause freezes the container's processes (the cgroup freezer). Pausing
// a paused container succeeds.
func (s *Service) Pause(ctx context.Context, id string) error {
	return s.freeze(ctx, id, Paused, "pause")
}

// Resume thaws a paused container. Resuming a running container
// succeeds.
func (s *Service) Resume(ctx context.Context, id string) error {
	return s.freeze(ctx, id, Running, "resume")
}

func (s *Service) freeze(ctx context.Context, id string, want Status, cmd string) error {
	defer s.lock(id)()
	c := s.container(id)
	st, err := s.state(ctx, c)
	if err != nil {
		return err
	}
	switch st.Status {
	case want:
		return nil
	case Running, Paused:
		return s.rt.do(ctx, cmd, c.name)
	}
	return fmt.Errorf("contd: %s: %w (%s)", id, ErrNotRunning, st.Status)
}

// State returns the container's state; ErrNotFound when contd has no
// such container.
func (s *Service) State(ctx context.Context, id string) (State, error) {
	defer s.lock(id)()
	return s.state(ctx, s.container(id))
}

func (s *Service) state(ctx context.Context, c container) (State, error) {
	sp, err := record.Read[Spec](c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, fmt.Errorf("contd: %w: no container %s", ErrNotFound, c.id)
	}
	if err != nil {
		return State{}, fmt.Errorf("contd: %w", err)
	}
	rst, err := s.rt.state(ctx, c.name)
	if err != nil {
		return State{}, err
	}
	st := State{ID: c.id, Status: rst.Status, Pid: rst.Pid, Started: rst.Created, Log: sp.Log}
	if st.Status == "" {
		st.Status = Stopped
	}
	if st.Status == Stopped {
		st.Pid = 0
	}
	st.OOMKilled = s.cg.oomKills(s.cgroup(c)) > 0
	return st, nil
}

// List returns the state of every container contd has.
func (s *Service) List(ctx context.Context) ([]State, error) {
	return record.States(ctx, containersDir(s.c.Dir), s.State, ErrNotFound)
}
