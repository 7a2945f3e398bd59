package zmachine

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
)

// machine is what a backend runs, whatever the kind.
type machine struct {
	// ID is the workload's ID (provisiond.Task.ID).
	ID string
	// Root is the mounted, writable root file system.
	Root string
	// Args, Env (KEY=VALUE) and WorkingDir are what runs in it.
	Args       []string
	Env        []string
	WorkingDir string
	// SSHKeys are the keys allowed to log in (SSH_KEY).
	SSHKeys []string
	// Mounts are its disks and shared directories.
	Mounts []mount
	// NICs are its network cards, the first with the default route.
	NICs []nic
	// CPU and Memory (bytes) size it.
	CPU    uint8
	Memory uint64
	// Console receives its output.
	Console string
}

// mount is a storage workload attached to the machine.
type mount struct {
	// Source is a disk image (Disk) or a directory on the host.
	Source string
	Disk   bool
	// Target is where the machine sees it.
	Target string
}

// nic is a network card on a NetworkLight network (Bridge) or on the
// node's public network (Parent).
type nic struct {
	// Bridge is the network's bridge on the host.
	Bridge string
	// Parent is the node's public interface.
	Parent string
	// IP is the machine's address with the network's prefix length.
	IP netip.Prefix
	// Gateway is the network's router.
	Gateway netip.Addr
	// MAC is the card's address.
	MAC string
}

// zinit is what plain flists of Grid 3 start with.
const zinit = "/sbin/zinit"

// describe turns the workload, its flist's image and its siblings'
// results (the networks) into the machine to run; its public address, if
// any, is handed over to it on the way (attachPublic).
func (m *Manager) describe(ctx context.Context, t provisiond.Task, d *gridtypes.ZMachineLightData, mi flistd.MountInfo) (machine, error) {
	mc := machine{
		ID: t.ID(), Root: m.root(t), CPU: d.ComputeCapacity.CPU, Memory: d.ComputeCapacity.Memory,
		Console: m.Console(t),
	}
	var err error
	if mc.Args, err = m.command(d, mi); err != nil {
		return machine{}, err
	}
	mc.Env, mc.WorkingDir = environment(d, mi)
	if keys := d.Env["SSH_KEY"]; keys != "" {
		for _, k := range strings.Split(keys, "\n") {
			if k = strings.TrimSpace(k); k != "" {
				mc.SSHKeys = append(mc.SSHKeys, k)
			}
		}
	}
	for _, mnt := range d.Mounts {
		if m.c.Storage == nil {
			return machine{}, errors.New("no storage locator on this node for mounts")
		}
		path, disk, err := m.c.Storage.Locate(t.Sibling(mnt.Name))
		if err != nil {
			return machine{}, fmt.Errorf("mount %s: %w", mnt.Name, err)
		}
		mc.Mounts = append(mc.Mounts, mount{Source: path, Disk: disk, Target: mnt.Mountpoint})
	}
	if d.Network.PublicIP != "" {
		// First: the card with the default route.
		n, err := m.attachPublic(ctx, t, d.Network.PublicIP)
		if err != nil {
			return machine{}, fmt.Errorf("public_ip %s: %w", d.Network.PublicIP, err)
		}
		mc.NICs = append(mc.NICs, n)
	}
	for i, in := range d.Network.Interfaces {
		n, err := networkOf(t, in, i)
		if err != nil {
			return machine{}, fmt.Errorf("network %s: %w", in.Network, err)
		}
		mc.NICs = append(mc.NICs, n)
	}
	return mc, nil
}

// publicFile records the workload ID of the public address a machine
// holds, so that it is given back (detachPublic) whatever the machine's
// next version says.
func publicFile(dir string) string { return filepath.Join(dir, "public") }

// publicID is the workload ID of the public address version d of the
// machine asks for ("" for none).
func publicID(t provisiond.Task, d *gridtypes.ZMachineLightData) string {
	if d.Network.PublicIP == "" {
		return ""
	}
	return t.Sibling(d.Network.PublicIP)
}

// heldPublic is the workload ID of the public address the machine holds
// ("" for none).
func (m *Manager) heldPublic(t provisiond.Task) string {
	b, _ := os.ReadFile(publicFile(m.dir(t)))
	return strings.TrimSpace(string(b))
}

// attachPublic hands the address of PublicIPv4 sibling name over to the
// machine: a card on the node's public interface with the address's
// own MAC. (Update gives back one the machine held and no longer names.)
func (m *Manager) attachPublic(ctx context.Context, t provisiond.Task, name string) (nic, error) {
	if res, ok := t.Siblings[name]; !ok || res.State != gridtypes.StateOk {
		return nic{}, errors.New("the public address is not set up on this node")
	}
	if m.c.Public == nil {
		return nic{}, errors.New("no public address service on this node")
	}
	id := t.Sibling(name)
	// Recorded first: a crash after the handover still gives it back.
	if err := atomicfile.WriteFile(publicFile(m.dir(t)), []byte(id), 0o600); err != nil {
		return nic{}, fmt.Errorf("recording the public address: %w", err)
	}
	a, err := m.c.Public.AttachPublicIP(ctx, netlightd.HolderSpec{ID: id, Holder: t.ID()})
	if err != nil {
		return nic{}, err
	}
	return nic{Parent: a.Parent, IP: a.IP, Gateway: a.Gateway, MAC: a.MAC}, nil
}

// detachPublic gives the public address the machine held back to its
// PublicIPv4 workload (which sets it up on its own again).
func (m *Manager) detachPublic(ctx context.Context, t provisiond.Task) error {
	id := m.heldPublic(t)
	if id == "" {
		return nil
	}
	if m.c.Public == nil {
		return errors.New("no public address service on this node to give the public address back to")
	}
	if err := m.c.Public.DetachPublicIP(ctx, netlightd.HolderSpec{ID: id, Holder: t.ID()}); err != nil {
		return fmt.Errorf("giving the public address back: %w", err)
	}
	if err := os.Remove(publicFile(m.dir(t))); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// command is what the machine runs: the workload's entrypoint, else the
// image's entrypoint and cmd, else zinit when the flist has it.
func (m *Manager) command(d *gridtypes.ZMachineLightData, mi flistd.MountInfo) ([]string, error) {
	if d.Entrypoint != "" {
		args, err := SplitCommand(d.Entrypoint)
		if err != nil {
			return nil, fmt.Errorf("entrypoint: %w", err)
		}
		return args, nil
	}
	if img := mi.Image; img != nil && len(img.Entrypoint)+len(img.Cmd) > 0 {
		return append(slices.Clone(img.Entrypoint), img.Cmd...), nil
	}
	if _, err := os.Stat(filepath.Join(mi.Target, zinit)); err == nil {
		return []string{zinit, "init"}, nil
	}
	return nil, errors.New("nothing to run: the workload has no entrypoint and its flist neither an image configuration nor " + zinit)
}

// environment is the image's environment with the workload's over it
// (sorted, for a stable description), and the working directory.
func environment(d *gridtypes.ZMachineLightData, mi flistd.MountInfo) ([]string, string) {
	var env []string
	wd := ""
	if img := mi.Image; img != nil {
		wd = img.WorkingDir
		for _, kv := range img.Env {
			k, _, _ := strings.Cut(kv, "=")
			if _, over := d.Env[k]; !over {
				env = append(env, kv)
			}
		}
	}
	keys := make([]string, 0, len(d.Env))
	for k := range d.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+d.Env[k])
	}
	return env, wd
}

// networkOf is the card of interface i, on the network its sibling
// NetworkLight workload made (its bridge and gateway, from its result).
func networkOf(t provisiond.Task, in gridtypes.MachineInterface, i int) (nic, error) {
	res, ok := t.Siblings[in.Network]
	if !ok || res.State != gridtypes.StateOk || len(res.Data) == 0 {
		return nic{}, errors.New("the network is not set up on this node")
	}
	var nw netlight.Result
	if err := json.Unmarshal(res.Data, &nw); err != nil {
		return nic{}, fmt.Errorf("the network's result: %w", err)
	}
	gw, err := netip.ParsePrefix(nw.Gateway)
	if err != nil {
		return nic{}, fmt.Errorf("the network's gateway %q: %w", nw.Gateway, err)
	}
	ip, err := netip.ParseAddr(in.IP)
	if err != nil {
		return nic{}, fmt.Errorf("ip: %w", err)
	}
	if !gw.Masked().Contains(ip) || ip == gw.Addr() {
		return nic{}, fmt.Errorf("ip %s is not a host address of the network's subnet %s", ip, gw.Masked())
	}
	return nic{Bridge: nw.Bridge, IP: netip.PrefixFrom(ip, gw.Bits()), Gateway: gw.Addr(), MAC: MAC(t.ID(), i)}, nil
}

// MAC is a stable, locally administered MAC for interface i of a machine.
func MAC(workloadID string, i int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", workloadID, i)))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}

// backend runs machines of one kind. Every method is idempotent.
type backend interface {
	// check says why this kind cannot run machines here, or nil.
	check(ctx context.Context) error
	// start runs mc unless it runs already.
	start(ctx context.Context, mc machine) error
	// stop ends the machine and removes what start made.
	stop(ctx context.Context, id string) error
	pause(ctx context.Context, id string) error
	resume(ctx context.Context, id string) error
	// running reports whether the machine runs (or is paused), and why not.
	running(ctx context.Context, id string) (bool, string, error)
}
