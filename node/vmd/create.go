package vmd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/node/internal/diskimage"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/internal/linkguard"
	"github.com/grid4/grid4/node/vmd/guest"
	"github.com/grid4/grid4/node/vmd/kernel"
)

// debianVirtioFSD is where Debian's qemu-system-common installs virtiofsd.
const debianVirtioFSD = "/usr/lib/qemu/virtiofsd"

// virtioFSD is the virtiofsd to run.
func (s *Service) virtioFSD() (string, error) {
	if s.c.VirtioFSD != "" {
		return s.c.VirtioFSD, nil
	}
	if fileExists(debianVirtioFSD) {
		return debianVirtioFSD, nil
	}
	if p, err := exec.LookPath("virtiofsd"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("vmd: %w: virtiofsd not found (%s or in PATH; install the qemu-system-x86 or virtiofsd package)", ErrNoHypervisor, debianVirtioFSD)
}

// create makes the machine's initramfs, disks, TAP devices and shares,
// then starts its monitor.
func (s *Service) create(ctx context.Context, m machine, sp Spec, hv hypervisor) error {
	vm, cfg, err := s.plan(ctx, m, sp, hv)
	if err != nil {
		return err
	}
	kdir := sp.KernelDir
	if kdir == "" {
		kdir = s.c.Kernel
	}
	k, err := kernel.Open(kdir)
	if err != nil {
		return fmt.Errorf("vmd: %w: %w", ErrNoKernel, err)
	}
	mods, err := k.Modules(moduleNames(sp, hv, len(vm.disks))...)
	if err != nil {
		return fmt.Errorf("vmd: %w: %s: %w", ErrNoKernel, k.Dir, err)
	}
	vm.kernel = k.Image
	init, err := s.initBinary()
	if err != nil {
		return err
	}
	if err := writeInitramfs(vm.initrd, init, cfg, mods); err != nil {
		return fmt.Errorf("vmd: initramfs: %w", err)
	}
	taps, err := s.plug(ctx, m, sp, vm)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range taps {
			f.Close()
		}
	}()
	if err := os.MkdirAll(filepath.Dir(sp.Console), 0o700); err != nil {
		return fmt.Errorf("vmd: console: %w", err)
	}
	f, err := os.OpenFile(sp.Console, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("vmd: console: %w", err)
	}
	f.Close()
	if err := s.share(ctx, m, sp); err != nil {
		return err
	}
	bin, args := hv.command(vm)
	if _, err := process.StartFiles(bin, args, taps, m.pidFile(), m.processLog(), hv.control(m.dir)); err != nil {
		return fmt.Errorf("vmd: %w: %s: %w", ErrHypervisor, bin, err)
	}
	return waitUp(ctx, m.pidFile(), hv.control(m.dir), m.processLog(), bin)
}

// plan turns sp into what the monitor boots and what the guest's init
// does; blank disk images are formatted on the way.
func (s *Service) plan(ctx context.Context, m machine, sp Spec, hv hypervisor) (plan, guest.Config, error) {
	vm := plan{
		dir: m.dir, name: m.name(), cpu: max(sp.CPU, 1), memory: bootMemory(sp.Memory),
		initrd: m.initrd(), cmdline: cmdline, console: sp.Console, status: m.statusFile(),
		shares: []share{{tag: "root", socket: m.socket("root")}},
	}
	vm.maxCPU, vm.maxMemory = roomToGrow(vm.cpu, vm.memory)
	host := sp.Hostname
	if host == "" {
		host = m.short
	}
	cfg := guest.Config{
		RootTag: "root", Hostname: host, SSHKeys: sp.SSHKeys, Args: sp.Args, Env: sp.Env,
		WorkingDir: sp.WorkingDir, Status: hv.statusDevice(), StopGraceMS: int(s.c.StopGrace.Milliseconds() / 2),
	}
	for i, mt := range sp.Mounts {
		fi, err := os.Stat(mt.Source)
		if err != nil {
			return plan{}, guest.Config{}, fmt.Errorf("vmd: %w: %w", ErrInvalid, err)
		}
		gm := guest.Mount{Target: mt.Target, ReadOnly: mt.ReadOnly}
		if fi.IsDir() {
			gm.Kind, gm.Tag = guest.Virtiofs, "share"+strconv.Itoa(i)
			vm.shares = append(vm.shares, share{tag: gm.Tag, socket: m.socket(gm.Tag)})
		} else {
			if err := diskimage.Prepare(ctx, mt.Source); err != nil {
				return plan{}, guest.Config{}, fmt.Errorf("vmd: disk %s: %w", mt.Source, err)
			}
			gm.Kind, gm.Tag = guest.Disk, "g4disk"+strconv.Itoa(i)
			vm.disks = append(vm.disks, disk{path: mt.Source, serial: gm.Tag, readOnly: mt.ReadOnly})
		}
		cfg.Mounts = append(cfg.Mounts, gm)
	}
	fd := firstPassedFD
	for i, n := range sp.NICs {
		mac := n.MAC
		if mac == "" {
			mac = s.mac(sp.ID, i)
		}
		np := nicPlan{tap: m.tap(i), mac: mac}
		if n.Parent != "" {
			np.fd, fd = fd, fd+1
		}
		vm.nics = append(vm.nics, np)
		cfg.NICs = append(cfg.NICs, guest.NIC{MAC: mac, IP: n.IP, Gateway: n.Gateway})
	}
	if err := cfg.Check(); err != nil {
		return plan{}, guest.Config{}, fmt.Errorf("vmd: %w: %w", ErrInvalid, err)
	}
	return vm, cfg, nil
}

// firstPassedFD is the descriptor of the first file passed to the
// hypervisor (after stdin, stdout and stderr).
const firstPassedFD = 3

// plug makes a TAP device per NIC: a port of its bridge, or a macvtap on
// its parent interface. The macvtaps are returned open, in NIC order (the
// hypervisor gets them as firstPassedFD, …); the caller closes them.
func (s *Service) plug(ctx context.Context, m machine, sp Spec, vm plan) (files []*os.File, err error) {
	defer func() {
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			files = nil
		}
	}()
	for i, n := range sp.NICs {
		if n.Parent == "" {
			if err := s.plugTap(ctx, m.tap(i), n.Bridge); err != nil {
				return files, err
			}
			continue
		}
		f, err := s.plugMacvtap(ctx, m, m.tap(i), n.Parent, vm.nics[i].mac, n.IP.Addr())
		if err != nil {
			return files, err
		}
		files = append(files, f)
	}
	return files, nil
}

// plugTap makes TAP device tap, a port of bridge.
func (s *Service) plugTap(ctx context.Context, tap, bridge string) error {
	if !iproute.LinkExists(bridge) {
		return fmt.Errorf("vmd: %w: bridge %s does not exist", ErrNoNetwork, bridge)
	}
	for _, args := range [][]string{{"tuntap", "add", "dev", tap, "mode", "tap"}, {"link", "set", "dev", tap, "master", bridge, "up"}} {
		if err := s.ip.Do(ctx, args...); err != nil {
			return fmt.Errorf("vmd: %w", err)
		}
	}
	return nil
}

// plugMacvtap makes macvtap tap on parent with mac, guarded so that the
// machine sends only as addr and mac (linkguard), and opens it.
func (s *Service) plugMacvtap(ctx context.Context, m machine, tap, parent, mac string, addr netip.Addr) (*os.File, error) {
	if !iproute.LinkExists(parent) {
		return nil, fmt.Errorf("vmd: %w: interface %s does not exist", ErrNoNetwork, parent)
	}
	for _, args := range [][]string{
		{"link", "add", "link", parent, "name", tap, "address", mac, "type", "macvtap", "mode", "bridge"},
		{"link", "set", "dev", tap, "up"},
	} {
		if err := s.ip.Do(ctx, args...); err != nil {
			return nil, fmt.Errorf("vmd: %w", err)
		}
	}
	if err := linkguard.Guard("", tap, mac, addr); err != nil {
		return nil, fmt.Errorf("vmd: %w", err)
	}
	f, err := openMacvtap(tap, filepath.Join(m.dir, tap+".dev"))
	if err != nil {
		return nil, fmt.Errorf("vmd: %w", err)
	}
	return f, nil
}

// openMacvtap opens the character device of macvtap link name through a
// device node of its own at node (made and removed here: a node without
// udev has no /dev/tapN).
func openMacvtap(name, node string) (*os.File, error) {
	idx, err := os.ReadFile(filepath.Join("/sys/class/net", name, "ifindex"))
	if err != nil {
		return nil, fmt.Errorf("macvtap %s: %w", name, err)
	}
	dev, err := os.ReadFile(filepath.Join("/sys/class/net", name, "macvtap", "tap"+strings.TrimSpace(string(idx)), "dev"))
	if err != nil {
		return nil, fmt.Errorf("macvtap %s: %w", name, err)
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(strings.TrimSpace(string(dev)), "%d:%d", &major, &minor); err != nil {
		return nil, fmt.Errorf("macvtap %s: device %q: %w", name, dev, err)
	}
	os.Remove(node)
	if err := unix.Mknod(node, unix.S_IFCHR|0o600, int(unix.Mkdev(major, minor))); err != nil {
		return nil, fmt.Errorf("macvtap %s: %w", name, err)
	}
	defer os.Remove(node)
	f, err := os.OpenFile(node, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("macvtap %s: %w", name, err)
	}
	return f, nil
}

// share starts a virtiofsd per shared directory: the root, then the
// directory mounts. A read-only directory is shared through a read-only
// bind mount, so that the guest cannot write there whatever it mounts.
func (s *Service) share(ctx context.Context, m machine, sp Spec) error {
	fsd, err := s.virtioFSD()
	if err != nil {
		return err
	}
	dirs := map[string]string{"root": sp.Root}
	for i, mt := range sp.Mounts {
		if fi, err := os.Stat(mt.Source); err != nil || !fi.IsDir() {
			continue
		}
		src := mt.Source
		if mt.ReadOnly {
			src = m.readOnly(i)
			if err := bindReadOnly(mt.Source, src); err != nil {
				return fmt.Errorf("vmd: read-only share %s: %w", mt.Source, err)
			}
		}
		dirs["share"+strconv.Itoa(i)] = src
	}
	for tag, dir := range dirs {
		sock := m.socket(tag)
		args := []string{"--socket-path=" + sock, "-o", "source=" + dir, "-o", "cache=auto"}
		if _, err := process.Start(fsd, args, m.fsdPid(tag), m.processLog(), sock); err != nil {
			return fmt.Errorf("vmd: %w: virtiofsd for %s: %w", ErrHypervisor, dir, err)
		}
	}
	for tag := range dirs {
		if err := waitUp(ctx, m.fsdPid(tag), m.socket(tag), m.processLog(), "virtiofsd"); err != nil {
			return err
		}
	}
	return nil
}

// bindReadOnly bind-mounts src on target, read-only.
func bindReadOnly(src, target string) error {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

// unbind unmounts a bind mount of bindReadOnly, if mounted.
func unbind(target string) error {
	err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
	if err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// waitUp waits up to 10 seconds for a process started with marker (its
// socket) to create that socket, failing at once with the end of its log
// if it ends.
func waitUp(ctx context.Context, pidFile, sock, log, what string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(sock); err == nil {
			return nil
		}
		if _, ok := process.Running(pidFile, sock); !ok {
			return fmt.Errorf("vmd: %w: %s ended at once: %s", ErrHypervisor, what, lastLine(log))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("vmd: %w: %s did not come up: %w (see %s)", ErrHypervisor, what, ctx.Err(), log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
