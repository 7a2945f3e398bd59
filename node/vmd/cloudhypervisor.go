package vmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
)

// cloudHypervisor runs machines with cloud-hypervisor and /dev/kvm. Each
// machine is a cloud-hypervisor process with an API socket. Its serial
// port is the console; the init's status line goes to its virtio console
// (hvc0), the only other character device it offers.
//
// The test machines have no KVM, so this backend's command line follows
// cloud-hypervisor's documentation but has not run here.
type cloudHypervisor struct {
	bin string
	kvm string
}

func (c cloudHypervisor) name() string { return CloudHypervisor }

func (c cloudHypervisor) check() error {
	if err := needKVM(c.name(), c.kvm); err != nil {
		return err
	}
	return needProgram(c.name(), c.bin, "cloud-hypervisor")
}

func (c cloudHypervisor) control(dir string) string { return filepath.Join(dir, "api.sock") }
func (c cloudHypervisor) statusDevice() string      { return "/dev/hvc0" }
func (c cloudHypervisor) extraModules() []string    { return []string{"virtio_console"} }

func (c cloudHypervisor) command(vm plan) (string, []string) {
	args := []string{
		"--api-socket", "path=" + c.control(vm.dir),
		"--kernel", vm.kernel,
		"--initramfs", vm.initrd,
		"--cmdline", vm.cmdline,
		"--cpus", "boot=" + strconv.Itoa(int(vm.cpu)),
		// virtiofs needs the guest memory shared with virtiofsd.
		"--memory", "size=" + strconv.FormatUint(vm.memory>>20, 10) + "M,shared=on",
		"--serial", "file=" + vm.console,
		"--console", "file=" + vm.status,
	}
	for _, d := range vm.disks {
		disk := "path=" + d.path + ",serial=" + d.serial
		if d.readOnly {
			disk += ",readonly=on"
		}
		args = append(args, "--disk", disk)
	}
	for _, s := range vm.shares {
		args = append(args, "--fs", "tag="+s.tag+",socket="+s.socket)
	}
	for _, n := range vm.nics {
		if n.fd != 0 {
			args = append(args, "--net", "fd="+strconv.Itoa(n.fd)+",mac="+n.mac)
			continue
		}
		args = append(args, "--net", "tap="+n.tap+",mac="+n.mac)
	}
	return c.bin, args
}

func (c cloudHypervisor) pause(ctx context.Context, dir string) error {
	return c.api(ctx, dir, http.MethodPut, "vm.pause", nil)
}

func (c cloudHypervisor) resume(ctx context.Context, dir string) error {
	return c.api(ctx, dir, http.MethodPut, "vm.resume", nil)
}

func (c cloudHypervisor) powerdown(ctx context.Context, dir string) error {
	return c.api(ctx, dir, http.MethodPut, "vm.power-button", nil)
}

func (c cloudHypervisor) paused(ctx context.Context, dir string) (bool, error) {
	var info struct {
		State string `json:"state"`
	}
	if err := c.api(ctx, dir, http.MethodGet, "vm.info", &info); err != nil {
		return false, err
	}
	return info.State == "Paused", nil
}

// api calls cloud-hypervisor's REST API on its unix socket.
func (c cloudHypervisor) api(ctx context.Context, dir, method, action string, out any) error {
	sock := c.control(dir)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost/api/v1/"+action, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("vmd: %w: %s: %w", ErrHypervisor, action, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("vmd: %w: %s: cloud-hypervisor answered %s: %s", ErrHypervisor, action, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("vmd: %w: %s: %w", ErrHypervisor, action, err)
		}
	}
	return nil
}
