// Package zmachine is the type manager of ZMachineLight workloads: virtual
// machines booted from an flist, on the deployment's NetworkLight
// networks, with its zmounts as disks and its volumes shared over
// virtiofs.
//
// Provisioning needs, in this order: a Hypervisor that can run here (by
// default cloud-hypervisor and virtiofsd with /dev/kvm), a machine kernel,
// an FlistMounter (the node's flist module) and iproute2. A host missing
// any of them fails the workload saying which, e.g.
// "zmachine-light: no hypervisor: /dev/kvm not present".
//
// The guest boots with its flist as root file system (virtiofs tag
// "root"), the first interface configured by the kernel (ip=), and the
// rest of its configuration on the kernel command line, base64 of JSON:
// grid4.entrypoint (string), grid4.env (object) and grid4.mounts
// ([{"tag","mountpoint","kind"}], kind "virtiofs" or "disk" with the
// disk's order as tag). A public IPv4 workload named by the machine is
// reserved and set up in its own namespace, but not yet attached to the
// machine.
package zmachine

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
)

// FlistMounter makes an flist's file system available in a directory.
type FlistMounter interface {
	Mount(ctx context.Context, flist, target string) error
	Unmount(ctx context.Context, target string) error
}

// Storage finds the storage workloads a machine mounts, by their workload
// ID (provisiond.Task.Sibling): the path of a zmount's image (disk true), or
// of a volume's or QSFS's directory.
type Storage interface {
	Locate(workloadID string) (path string, disk bool, err error)
}

// Config configures a Manager.
type Config struct {
	// Dir holds the machines' runtime directories. Required.
	Dir string
	// LogDir receives the consoles: <LogDir>/<workload ID>.log (what ZLogs
	// streams). Required.
	LogDir string
	// Hypervisor runs the machines (CloudHypervisor{} when nil).
	Hypervisor Hypervisor
	// Kernel (and optional Initrd) is what machines boot.
	Kernel, Initrd string
	// Flists mounts root file systems (nil: machines fail).
	Flists FlistMounter
	// Storage locates disks and volumes (nil: machines with mounts fail).
	Storage Storage
	// IP runs ip for the TAP devices (nil: the host's).
	IP *iproute.IP
	// NetworkSalt is the netlight manager's Config.Salt (to find the
	// networks' bridges).
	NetworkSalt string
}

// Manager runs ZMachineLight workloads.
type Manager struct {
	c  Config
	hv Hypervisor
	ip iproute.IP
}

// New returns a manager for c.
func New(c Config) (*Manager, error) {
	if c.Dir == "" || c.LogDir == "" {
		return nil, errors.New("zmachine: Config.Dir and LogDir are required")
	}
	m := &Manager{c: c, hv: c.Hypervisor}
	if m.hv == nil {
		m.hv = CloudHypervisor{}
	}
	if c.IP != nil {
		m.ip = *c.IP
	}
	return m, nil
}

// Result is what a ZMachineLight workload reports.
type Result struct {
	// Console is the machine's log on the node.
	Console string `json:"console"`
	// IPs are the machine's private addresses.
	IPs []string `json:"ips"`
	// Taps are its TAP devices.
	Taps []string `json:"taps"`
}

func (m *Manager) dir(t provisiond.Task) string { return filepath.Join(m.c.Dir, t.ID()) }

// Console is the log file of t's machine.
func (m *Manager) Console(t provisiond.Task) string {
	return filepath.Join(m.c.LogDir, t.ID()+".log")
}

// check lists what the host lacks, in the order a user can fix it.
func (m *Manager) check() error {
	if err := m.hv.Check(); err != nil {
		return err
	}
	if m.c.Kernel == "" {
		return errors.New("no machine kernel configured on this node")
	}
	if _, err := os.Stat(m.c.Kernel); err != nil {
		return fmt.Errorf("machine kernel %s: %w", m.c.Kernel, err)
	}
	if m.c.Flists == nil {
		return errors.New("no flist mounter on this node")
	}
	if err := m.ip.Check(); err != nil {
		return fmt.Errorf("cannot manage networks on this node: %w", err)
	}
	return nil
}

// Provision boots the machine (or finds it running).
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.ZMachineLightData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("zmachine-light: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("zmachine-light: %w", err)
	}
	vm, res, err := m.prepare(ctx, t, &d)
	if err != nil {
		return nil, fmt.Errorf("zmachine-light: %w", err)
	}
	if err := m.hv.Start(ctx, vm); err != nil {
		return nil, fmt.Errorf("zmachine-light: %w", err)
	}
	return res, nil
}

// prepare mounts the root file system, makes the TAP devices and builds
// the machine's description.
func (m *Manager) prepare(ctx context.Context, t provisiond.Task, d *gridtypes.ZMachineLightData) (VM, Result, error) {
	dir := m.dir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return VM{}, Result{}, err
	}
	if err := os.MkdirAll(m.c.LogDir, 0o700); err != nil {
		return VM{}, Result{}, err
	}
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return VM{}, Result{}, err
	}
	if err := m.c.Flists.Mount(ctx, d.Flist, root); err != nil {
		return VM{}, Result{}, fmt.Errorf("flist %s: %w", d.Flist, err)
	}
	vm := VM{
		ID: t.ID(), Dir: dir, CPU: d.ComputeCapacity.CPU, Memory: d.ComputeCapacity.Memory,
		Kernel: m.c.Kernel, Initrd: m.c.Initrd, Console: m.Console(t),
		Shares: []Share{{Tag: "root", Path: root}},
	}
	res := Result{Console: vm.Console}
	type guestMount struct {
		Tag        string `json:"tag"`
		Mountpoint string `json:"mountpoint"`
		Kind       string `json:"kind"`
	}
	var mounts []guestMount
	for _, mnt := range d.Mounts {
		if m.c.Storage == nil {
			return VM{}, Result{}, errors.New("no storage locator on this node for mounts")
		}
		path, disk, err := m.c.Storage.Locate(t.Sibling(mnt.Name))
		if err != nil {
			return VM{}, Result{}, fmt.Errorf("mount %s: %w", mnt.Name, err)
		}
		if disk {
			vm.Disks = append(vm.Disks, path)
			mounts = append(mounts, guestMount{Tag: fmt.Sprint(len(vm.Disks) - 1), Mountpoint: mnt.Mountpoint, Kind: "disk"})
		} else {
			vm.Shares = append(vm.Shares, Share{Tag: mnt.Name, Path: path})
			mounts = append(mounts, guestMount{Tag: mnt.Name, Mountpoint: mnt.Mountpoint, Kind: "virtiofs"})
		}
	}
	var (
		ipParam string
		err     error
	)
	for i, nic := range d.Network.Interfaces {
		bridge := netlight.NamesOf(m.c.NetworkSalt, t.Sibling(nic.Network)).Bridge
		if !iproute.LinkExists(bridge) {
			return VM{}, Result{}, fmt.Errorf("network %s is not set up on this node (no bridge %s)", nic.Network, bridge)
		}
		tap := TapName(t.ID(), i)
		if !iproute.LinkExists(tap) {
			if err := m.ip.Do(ctx, "tuntap", "add", "dev", tap, "mode", "tap"); err != nil {
				return VM{}, Result{}, err
			}
		}
		if err := m.ip.Do(ctx, "link", "set", "dev", tap, "master", bridge, "up"); err != nil {
			return VM{}, Result{}, err
		}
		vm.NICs = append(vm.NICs, NIC{Tap: tap, MAC: MAC(t.ID(), i)})
		res.Taps = append(res.Taps, tap)
		res.IPs = append(res.IPs, nic.IP)
		if i == 0 {
			if ipParam, err = m.kernelIP(ctx, nic.IP, t.Sibling(nic.Network)); err != nil {
				return VM{}, Result{}, fmt.Errorf("network %s: %w", nic.Network, err)
			}
		}
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.StdEncoding.EncodeToString(b)
	}
	entry := d.Entrypoint
	if entry == "" {
		entry = "/sbin/zinit init"
	}
	vm.Cmdline = strings.Join([]string{
		"console=ttyS0", "panic=1", "rootfstype=virtiofs", "root=root", "rw", ipParam,
		"grid4.entrypoint=" + enc(entry), "grid4.env=" + enc(d.Env), "grid4.mounts=" + enc(mounts),
	}, " ")
	return vm, res, nil
}

// kernelIP is the ip= parameter configuring the first interface,
// ip=<client>::<gateway>:<netmask>::eth0:off, with the gateway and prefix
// read from the network's router (lan0 in its namespace).
func (m *Manager) kernelIP(ctx context.Context, ip, networkID string) (string, error) {
	ns := netlight.NamesOf(m.c.NetworkSalt, networkID).Namespace
	out, err := m.ip.Output(ctx, "-n", ns, "-o", "-4", "addr", "show", "dev", netlight.LAN)
	if err != nil {
		return "", err
	}
	fields := strings.Fields(out)
	for i, f := range fields {
		if f != "inet" || i+1 >= len(fields) {
			continue
		}
		gw, err := netip.ParsePrefix(fields[i+1])
		if err != nil {
			break
		}
		mask := net.CIDRMask(gw.Bits(), 32)
		return fmt.Sprintf("ip=%s::%s:%s::eth0:off", ip, gw.Addr(), net.IP(mask)), nil
	}
	return "", fmt.Errorf("no gateway address in namespace %s", ns)
}

// TapName is the TAP device of interface i of a machine.
func TapName(workloadID string, i int) string {
	return "g4t" + iproute.ShortID(fmt.Sprintf("%s/%d", workloadID, i))
}

// MAC is a stable, locally administered MAC for interface i of a machine.
func MAC(workloadID string, i int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", workloadID, i)))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}

// Deprovision stops the machine and removes its TAPs, root mount and
// runtime directory.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	dir := m.dir(t)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	errs = append(errs, m.hv.Stop(ctx, t.ID(), dir))
	for i := range gridtypes.MaxInterfaces {
		if tap := TapName(t.ID(), i); iproute.LinkExists(tap) {
			errs = append(errs, m.ip.Do(ctx, "link", "del", "dev", tap))
		}
	}
	if m.c.Flists != nil {
		errs = append(errs, m.c.Flists.Unmount(ctx, filepath.Join(dir, "root")))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	// Remove, not RemoveAll, for the root mount point: if it were still
	// mounted, RemoveAll would delete through it.
	os.Remove(filepath.Join(dir, "root"))
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	return nil
}

// Pause suspends the machine.
func (m *Manager) Pause(ctx context.Context, t provisiond.Task) error {
	if err := m.hv.Pause(ctx, t.ID(), m.dir(t)); err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	return nil
}

// Resume continues the machine.
func (m *Manager) Resume(ctx context.Context, t provisiond.Task) error {
	if err := m.hv.Resume(ctx, t.ID(), m.dir(t)); err != nil {
		return fmt.Errorf("zmachine-light: %w", err)
	}
	return nil
}
