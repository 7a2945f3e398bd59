package vmd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad specs are refused with every reason at once, and leave nothing.
func TestInvalidSpecs(t *testing.T) {
	s := newService(t, config(t))
	ctx := context.Background()
	good := Spec{ID: "1-1-x", Root: t.TempDir(), Args: []string{"/bin/sh"}, Console: filepath.Join(t.TempDir(), "c")}
	for _, tc := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no ID", func(sp *Spec) { sp.ID = "" }, "no machine ID"},
		{"relative root", func(sp *Spec) { sp.Root = "root" }, `root "root" is not an absolute path`},
		{"missing root", func(sp *Spec) { sp.Root = "/nonexistent/root" }, "root /nonexistent/root is not a directory"},
		{"no entrypoint", func(sp *Spec) { sp.Args = nil }, "no entrypoint"},
		{"bad env", func(sp *Spec) { sp.Env = []string{"NOVALUE"} }, `environment variable "NOVALUE" is not KEY=VALUE`},
		{"relative working dir", func(sp *Spec) { sp.WorkingDir = "tmp" }, `working directory "tmp" is not absolute`},
		{"mount on /", func(sp *Spec) { sp.Mounts = []Mount{{Source: t.TempDir(), Target: "/"}} }, "the target not /"},
		{"missing mount", func(sp *Spec) { sp.Mounts = []Mount{{Source: "/nonexistent/vol", Target: "/vol"}} }, "mount source /nonexistent/vol"},
		{"gateway elsewhere", func(sp *Spec) {
			sp.NICs = []NIC{{Bridge: "br", IP: mustPrefix("10.1.0.5/24"), Gateway: mustPrefix("10.2.0.1/32").Addr()}}
		}, "gateway 10.2.0.1 is not in 10.1.0.0/24"},
		{"bad MAC", func(sp *Spec) { sp.NICs = []NIC{{Bridge: "br", MAC: "zz:00:00:00:00:01"}} }, `MAC "zz:00:00:00:00:01"`},
		{"no bridge", func(sp *Spec) { sp.NICs = []NIC{{}} }, "a network card needs a bridge or a parent interface, not both"},
		{"bridge and parent", func(sp *Spec) { sp.NICs = []NIC{{Bridge: "br", Parent: "eth0", MAC: "02:00:00:00:00:01"}} }, "a network card needs a bridge or a parent interface, not both"},
		{"parent without MAC", func(sp *Spec) { sp.NICs = []NIC{{Parent: "eth0", IP: mustPrefix("10.1.0.5/24")}} }, "a network card on parent eth0 needs a MAC and an IPv4 address"},
		{"parent without address", func(sp *Spec) { sp.NICs = []NIC{{Parent: "eth0", MAC: "02:00:00:00:00:01"}} }, "a network card on parent eth0 needs a MAC and an IPv4 address"},
		{"tiny memory", func(sp *Spec) { sp.Memory = 1 << 20 }, "at least 64 MiB"},
		{"relative console", func(sp *Spec) { sp.Console = "log" }, `console "log" is not an absolute path`},
		{"multiline key", func(sp *Spec) { sp.SSHKeys = []string{"a\nb"} }, "SSH key"},
		{"two faults", func(sp *Spec) { sp.ID, sp.Args = "", nil }, "no machine ID; no entrypoint"},
	} {
		sp := good
		tc.edit(&sp)
		err := s.Start(ctx, sp)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, ErrInvalid, tc.want)
		}
	}
	if list, err := s.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List after refused specs = %+v, %v", list, err)
	}
	if _, err := s.State(ctx, "nothing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("State of nothing: %v", err)
	}
	if err := s.Resume(ctx, "nothing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resume of nothing: %v", err)
	}
	if err := s.Update(ctx, Spec{ID: "nothing", CPU: 1}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Update of nothing: %v", err)
	}
	if err := s.Stop(ctx, "nothing"); err != nil {
		t.Errorf("Stop of nothing: %v", err)
	}
	if _, err := New(Config{Dir: t.TempDir(), Backends: []string{"firecracker"}}); err == nil {
		t.Error("an unknown backend accepted")
	}
}

// What the host lacks is said clearly, and a failed Start leaves nothing:
// no kernel, a kernel without the modules, no QEMU, a dynamic init, a
// missing bridge.
func TestMissingParts(t *testing.T) {
	needHost(t)
	ctx := context.Background()
	sp := spec(t, "1-1-missing", "true")
	for _, tc := range []struct {
		name string
		edit func(*Config, *Spec)
		code error
		want string
	}{
		{"no kernel", func(c *Config, _ *Spec) { c.Kernel = t.TempDir() }, ErrNoKernel, "no boot/vmlinuz-*"},
		{"kernel without modules", func(_ *Config, sp *Spec) { sp.KernelDir = kernelWithoutModule(t, "virtiofs") }, ErrNoKernel, "kernel module virtiofs not found"},
		{"no qemu", func(c *Config, _ *Spec) { c.QEMU = "/nonexistent/qemu-system-x86_64" }, ErrNoHypervisor, "qemu-tcg: /nonexistent/qemu-system-x86_64 not found (install the qemu-system-x86 package)"},
		{"only cloud-hypervisor allowed", func(c *Config, _ *Spec) { c.Backends = []string{CloudHypervisor} }, ErrNoHypervisor, "cloud-hypervisor: /dev/kvm"},
		{"nothing allowed", func(c *Config, _ *Spec) { c.Backends = []string{} }, ErrNoHypervisor, "the farmer allows no backend"},
		{"dynamic init", func(c *Config, _ *Spec) { c.Init = "/bin/ls" }, ErrNoHypervisor, "dynamically linked"},
		{"no init", func(c *Config, _ *Spec) { c.Init = "/nonexistent/g4init" }, ErrNoHypervisor, "not an ELF executable"},
		{"no bridge", func(_ *Config, sp *Spec) { sp.NICs = []NIC{{Bridge: "t4none0"}} }, ErrNoNetwork, "bridge t4none0 does not exist"},
	} {
		c, sp := config(t), sp
		tc.edit(&c, &sp)
		s := newService(t, c)
		err := s.Start(ctx, sp)
		if !errors.Is(err, tc.code) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s saying %q", tc.name, err, tc.code, tc.want)
		}
		assertGone(t, s, sp.ID)
	}
}

// kernelWithoutModule is the test kernel (linked) with its modules but
// the one named.
func kernelWithoutModule(t *testing.T, name string) string {
	t.Helper()
	src, err := filepath.EvalSymlinks(testKernel())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := filepath.Join(dir, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case d.Name() == name+".ko":
			return nil
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return err
		}
		return os.Symlink(real, dst)
	}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Info names the backend of this host and says why the others cannot run.
func TestInfo(t *testing.T) {
	c := config(t)
	c.Backends = nil
	s := newService(t, c)
	info := s.Info()
	if len(info.Backends) != 3 || info.Backends[0].Name != CloudHypervisor || !info.Backends[2].Allowed {
		t.Fatalf("info %+v", info)
	}
	if hardwareVirtualisation() {
		t.Logf("this host has KVM: %+v", info)
		return
	}
	// The test machines: no hardware virtualisation, QEMU installed.
	if info.Backend != QEMUTCG || info.Backends[2].Unavailable != "" {
		t.Errorf("info %+v, want %s", info, QEMUTCG)
	}
	for _, b := range info.Backends[:2] {
		if !strings.Contains(b.Unavailable, b.Name+": /dev/kvm") {
			t.Errorf("%s unavailable because %q", b.Name, b.Unavailable)
		}
	}
	c.Backends = []string{CloudHypervisor, QEMUKVM}
	if info := newService(t, c).Info(); info.Backend != "" || info.Backends[2].Allowed {
		t.Errorf("a farmer without TCG: %+v", info)
	}
}

// Cards on a parent interface are macvtaps the hypervisor gets open: each
// is given the next descriptor from 3, in card order, and both monitors
// are told to use it instead of opening a TAP by name (cloud-hypervisor
// is not run here: no KVM; its command line is checked all the same).
func TestPassedCards(t *testing.T) {
	c := config(t)
	s := newService(t, c)
	sp := Spec{ID: "1-1-cards", Root: t.TempDir(), Args: []string{"/bin/sh"}, Console: filepath.Join(t.TempDir(), "c"), NICs: []NIC{
		{Parent: "eth9", IP: mustPrefix("198.51.100.10/24"), MAC: "02:00:00:00:00:01"},
		{Bridge: "br0", IP: mustPrefix("10.1.0.5/24"), MAC: "02:00:00:00:00:02"},
		{Parent: "eth9", IP: mustPrefix("198.51.100.11/24"), MAC: "02:00:00:00:00:03"},
	}}
	hvs := hypervisors(c)
	vm, _, err := s.plan(context.Background(), s.machine(sp.ID), sp, hvs[QEMUTCG])
	if err != nil {
		t.Fatal(err)
	}
	if got := []int{vm.nics[0].fd, vm.nics[1].fd, vm.nics[2].fd}; got[0] != 3 || got[1] != 0 || got[2] != 4 {
		t.Fatalf("descriptors %v, want [3 0 4]", got)
	}
	_, qargs := hvs[QEMUTCG].command(vm)
	_, chargs := hvs[CloudHypervisor].command(vm)
	q, ch := strings.Join(qargs, " "), strings.Join(chargs, " ")
	for _, want := range []string{
		"-netdev tap,id=net0,fd=3 -device virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01",
		"-netdev tap,id=net1,ifname=" + vm.nics[1].tap + ",script=no,downscript=no -device virtio-net-pci,netdev=net1,mac=02:00:00:00:00:02",
		"-netdev tap,id=net2,fd=4 -device virtio-net-pci,netdev=net2,mac=02:00:00:00:00:03",
	} {
		if !strings.Contains(q, want) {
			t.Errorf("QEMU's arguments lack %q:\n%s", want, q)
		}
	}
	for _, want := range []string{"--net fd=3,mac=02:00:00:00:00:01", "--net tap=" + vm.nics[1].tap + ",mac=02:00:00:00:00:02", "--net fd=4,mac=02:00:00:00:00:03"} {
		if !strings.Contains(ch, want) {
			t.Errorf("cloud-hypervisor's arguments lack %q:\n%s", want, ch)
		}
	}
}
