package zmachine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grid4/grid4/node/vmd"
)

// Machines is vmd as the manager uses it: vmd.Stub over the bus,
// *vmd.Service in process (through VMDService).
type Machines interface {
	Start(ctx context.Context, sp vmd.Spec) error
	Stop(ctx context.Context, id string) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Update(ctx context.Context, sp vmd.Spec) error
	State(ctx context.Context, id string) (vmd.State, error)
	Info(ctx context.Context) (vmd.Info, error)
}

// VMDService adapts an in-process *vmd.Service (whose Info needs no
// context) to Machines.
type VMDService struct{ *vmd.Service }

// Info calls Service.Info.
func (s VMDService) Info(context.Context) (vmd.Info, error) { return s.Service.Info(), nil }

// vms runs machines as virtual machines.
type vms struct{ m Machines }

// check is nil when vmd has a backend it may use here, else why not.
func (b vms) check(ctx context.Context) error {
	info, err := b.m.Info(ctx)
	if err != nil {
		return err
	}
	if info.Backend != "" {
		return nil
	}
	var why []string
	for _, bi := range info.Backends {
		switch {
		case !bi.Allowed:
			why = append(why, bi.Name+": not allowed by the farmer")
		case bi.Unavailable != "":
			why = append(why, bi.Unavailable)
		}
	}
	return fmt.Errorf("no hypervisor: %s", strings.Join(why, "; "))
}

func (b vms) start(ctx context.Context, mc machine) error {
	return b.m.Start(ctx, vmSpec(mc))
}

// resize gives the running machine mc's CPU and memory in place;
// vmd.ErrUnsupported when it differs in more or vmd cannot.
func (b vms) resize(ctx context.Context, mc machine) error {
	return b.m.Update(ctx, vmSpec(mc))
}

// vmSpec is mc as vmd runs it.
func vmSpec(mc machine) vmd.Spec {
	sp := vmd.Spec{
		ID: mc.ID, Root: mc.Root, KernelDir: imageKernel(mc.Root), Args: mc.Args, Env: mc.Env,
		WorkingDir: mc.WorkingDir, SSHKeys: mc.SSHKeys, CPU: mc.CPU, Memory: mc.Memory, Console: mc.Console,
	}
	for _, m := range mc.Mounts {
		sp.Mounts = append(sp.Mounts, vmd.Mount{Source: m.Source, Target: m.Target})
	}
	for _, n := range mc.NICs {
		sp.NICs = append(sp.NICs, vmd.NIC{Bridge: n.Bridge, Parent: n.Parent, IP: n.IP, Gateway: n.Gateway, MAC: n.MAC})
	}
	return sp
}

// imageKernel is root when the image brings one kernel (boot/vmlinuz-*
// with its modules under lib/modules/<version>), else "": the node's
// kernel boots it.
func imageKernel(root string) string {
	images, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(images) != 1 {
		return ""
	}
	version := strings.TrimPrefix(filepath.Base(images[0]), "vmlinuz-")
	if fi, err := os.Stat(filepath.Join(root, "lib", "modules", version)); err != nil || !fi.IsDir() {
		return ""
	}
	return root
}

func (b vms) stop(ctx context.Context, id string) error {
	if err := b.m.Stop(ctx, id); err != nil && !errors.Is(err, vmd.ErrNotFound) {
		return err
	}
	return nil
}

func (b vms) pause(ctx context.Context, id string) error  { return b.m.Pause(ctx, id) }
func (b vms) resume(ctx context.Context, id string) error { return b.m.Resume(ctx, id) }

func (b vms) running(ctx context.Context, id string) (bool, string, error) {
	st, err := b.m.State(ctx, id)
	if err != nil {
		return false, "", err
	}
	switch st.Status {
	case vmd.Running, vmd.Paused:
		return true, "", nil
	}
	why := "the virtual machine is " + string(st.Status)
	if st.ExitReason != "" {
		why += ": " + st.ExitReason
	}
	return false, why, nil
}

// hypervisor names what runs the machine (vmd's backend).
func (b vms) hypervisor(ctx context.Context, id string) string {
	st, err := b.m.State(ctx, id)
	if err != nil {
		return ""
	}
	return st.Backend
}
