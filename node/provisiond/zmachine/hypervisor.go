package zmachine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/node/internal/process"
)

// ErrNoHypervisor is wrapped when the host cannot run virtual machines.
var ErrNoHypervisor = errors.New("no hypervisor")

// VM is what a hypervisor boots.
type VM struct {
	// ID names the machine on the node (provision.Task.ID).
	ID string
	// Dir is the machine's runtime directory (sockets, pid files).
	Dir string
	// CPU and Memory (bytes) size the machine.
	CPU    uint8
	Memory uint64
	// Kernel and Initrd ("" for none) boot it with Cmdline.
	Kernel, Initrd, Cmdline string
	// Shares are host directories given to the machine over virtiofs;
	// the first is its root file system (tag "root").
	Shares []Share
	// Disks are raw disk images (zmounts).
	Disks []string
	// NICs are its network cards.
	NICs []NIC
	// Console receives the machine's serial console (its log).
	Console string
}

// Share is a host directory shared with the machine.
type Share struct {
	// Tag is the virtiofs tag the guest mounts by.
	Tag string
	// Path is the host directory.
	Path string
}

// NIC is a TAP device and the machine's MAC on it.
type NIC struct {
	// Tap is the host's TAP device.
	Tap string
	// MAC is the guest's address on it.
	MAC string
}

// Hypervisor runs virtual machines. Every method is idempotent.
type Hypervisor interface {
	// Check says why the host cannot run machines (wrapping
	// ErrNoHypervisor), or nil.
	Check() error
	// Start boots vm unless it already runs.
	Start(ctx context.Context, vm VM) error
	// Stop shuts the machine down and removes what Start made.
	Stop(ctx context.Context, id, dir string) error
	// Pause and Resume suspend and continue a running machine.
	Pause(ctx context.Context, id, dir string) error
	Resume(ctx context.Context, id, dir string) error
}

// CloudHypervisor runs machines with cloud-hypervisor, sharing
// directories with virtiofsd. Each machine is a cloud-hypervisor process
// with an API socket in its directory; both processes are found again
// after the engine restarts through their pid files.
type CloudHypervisor struct {
	// KVM is the KVM device ("/dev/kvm").
	KVM string
	// Binary is cloud-hypervisor ("cloud-hypervisor").
	Binary string
	// VirtioFSD is virtiofsd ("virtiofsd").
	VirtioFSD string
}

func (c CloudHypervisor) kvm() string { return orDefault(c.KVM, "/dev/kvm") }
func (c CloudHypervisor) bin() string { return orDefault(c.Binary, "cloud-hypervisor") }
func (c CloudHypervisor) fsd() string { return orDefault(c.VirtioFSD, "virtiofsd") }

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Check needs the KVM device, cloud-hypervisor and virtiofsd.
func (c CloudHypervisor) Check() error {
	if _, err := os.Stat(c.kvm()); err != nil {
		return fmt.Errorf("%w: %s not present", ErrNoHypervisor, c.kvm())
	}
	if _, err := exec.LookPath(c.bin()); err != nil {
		return fmt.Errorf("%w: %s not found in PATH", ErrNoHypervisor, c.bin())
	}
	if _, err := exec.LookPath(c.fsd()); err != nil {
		return fmt.Errorf("%w: %s not found in PATH (needed to give machines their file systems)", ErrNoHypervisor, c.fsd())
	}
	return nil
}

func apiSocket(dir string) string { return filepath.Join(dir, "api.sock") }

// Args is cloud-hypervisor's command line for vm.
func (c CloudHypervisor) Args(vm VM) []string {
	args := []string{
		"--api-socket", "path=" + apiSocket(vm.Dir),
		"--kernel", vm.Kernel,
		"--cmdline", vm.Cmdline,
		"--cpus", "boot=" + strconv.Itoa(int(vm.CPU)),
		// virtiofs needs the guest memory shared with virtiofsd.
		"--memory", "size=" + strconv.FormatUint(vm.Memory>>20, 10) + "M,shared=on",
		"--serial", "file=" + vm.Console,
		"--console", "off",
	}
	if vm.Initrd != "" {
		args = append(args, "--initramfs", vm.Initrd)
	}
	for _, d := range vm.Disks {
		args = append(args, "--disk", "path="+d)
	}
	for _, s := range vm.Shares {
		args = append(args, "--fs", "tag="+s.Tag+",socket="+filepath.Join(vm.Dir, s.Tag+".sock"))
	}
	for _, n := range vm.NICs {
		args = append(args, "--net", "tap="+n.Tap+",mac="+n.MAC)
	}
	return args
}

// Start starts a virtiofsd per share, then cloud-hypervisor.
func (c CloudHypervisor) Start(ctx context.Context, vm VM) error {
	if err := c.Check(); err != nil {
		return err
	}
	if _, ok := process.Running(filepath.Join(vm.Dir, "vmm.pid"), apiSocket(vm.Dir)); ok {
		return nil
	}
	log := filepath.Join(vm.Dir, "processes.log")
	for _, s := range vm.Shares {
		sock := filepath.Join(vm.Dir, s.Tag+".sock")
		pid := filepath.Join(vm.Dir, s.Tag+".virtiofsd.pid")
		if _, ok := process.Running(pid, sock); ok {
			continue
		}
		os.Remove(sock)
		if _, err := process.Start(c.fsd(), []string{"--socket-path=" + sock, "--shared-dir=" + s.Path, "--cache=auto"}, pid, log, sock); err != nil {
			return fmt.Errorf("virtiofsd for %s: %w", s.Tag, err)
		}
		if err := process.WaitForFile(ctx, sock); err != nil {
			return fmt.Errorf("virtiofsd for %s: %w", s.Tag, err)
		}
	}
	os.Remove(apiSocket(vm.Dir))
	if _, err := process.Start(c.bin(), c.Args(vm), filepath.Join(vm.Dir, "vmm.pid"), log, apiSocket(vm.Dir)); err != nil {
		return fmt.Errorf("%s: %w", c.bin(), err)
	}
	if err := process.WaitForFile(ctx, apiSocket(vm.Dir)); err != nil {
		return fmt.Errorf("%s did not come up (see %s): %w", c.bin(), log, err)
	}
	return nil
}

// Stop asks the machine to power off, then ends the processes.
func (c CloudHypervisor) Stop(ctx context.Context, id, dir string) error {
	_ = c.api(ctx, dir, "vm.shutdown")
	var errs []error
	errs = append(errs, process.Stop(ctx, filepath.Join(dir, "vmm.pid"), apiSocket(dir), 10*time.Second))
	matches, _ := filepath.Glob(filepath.Join(dir, "*.virtiofsd.pid"))
	for _, pid := range matches {
		tag := strings.TrimSuffix(filepath.Base(pid), ".virtiofsd.pid")
		errs = append(errs, process.Stop(ctx, pid, filepath.Join(dir, tag+".sock"), 5*time.Second))
	}
	return errors.Join(errs...)
}

// Pause suspends the machine's vCPUs.
func (c CloudHypervisor) Pause(ctx context.Context, id, dir string) error {
	return c.api(ctx, dir, "vm.pause")
}

// Resume continues a paused machine.
func (c CloudHypervisor) Resume(ctx context.Context, id, dir string) error {
	return c.api(ctx, dir, "vm.resume")
}

// api calls an action of cloud-hypervisor's REST API on its unix socket.
func (c CloudHypervisor) api(ctx context.Context, dir, action string) error {
	sock := apiSocket(dir)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://localhost/api/v1/"+action, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", action, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: cloud-hypervisor answered %s", action, resp.Status)
	}
	return nil
}
