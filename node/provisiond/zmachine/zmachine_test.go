package zmachine

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
)

func machine(twin uint64) provisiond.Task {
	d := gridtypes.ZMachineLightData{
		Flist:           "https://hub.grid.tf/tf-official-apps/base:latest.flist",
		Entrypoint:      "/bin/app --serve",
		Env:             map[string]string{"A": "1"},
		ComputeCapacity: gridtypes.ComputeCapacity{CPU: 2, Memory: 512 * gridtypes.MiB},
		Network:         gridtypes.MachineNetwork{Interfaces: []gridtypes.MachineInterface{{Network: "net", IP: "10.20.1.5"}}},
		Mounts:          []gridtypes.MachineMount{{Name: "disk", Mountpoint: "/data"}, {Name: "vol", Mountpoint: "/vol"}},
	}
	data, _ := json.Marshal(d)
	return provisiond.Task{TwinID: twin, DeploymentID: 1, Workload: gridtypes.Workload{Name: "vm", Type: gridtypes.ZMachineLightType, Data: data}}
}

func TestNoHypervisor(t *testing.T) {
	kvm := filepath.Join(t.TempDir(), "kvm")
	os.WriteFile(kvm, nil, 0o600)
	cases := []struct {
		hv   CloudHypervisor
		want string
	}{
		{CloudHypervisor{KVM: "/nonexistent/kvm"}, "zmachine-light: no hypervisor: /nonexistent/kvm not present"},
		{CloudHypervisor{KVM: kvm, Binary: "cloud-hypervisor-not-installed"}, "zmachine-light: no hypervisor: cloud-hypervisor-not-installed not found in PATH"},
		{CloudHypervisor{KVM: kvm, Binary: "sh", VirtioFSD: "virtiofsd-not-installed"}, "zmachine-light: no hypervisor: virtiofsd-not-installed not found in PATH (needed to give machines their file systems)"},
	}
	for _, c := range cases {
		m, err := New(Config{Dir: t.TempDir(), LogDir: t.TempDir(), Hypervisor: c.hv})
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Provision(context.Background(), machine(1))
		if !errors.Is(err, ErrNoHypervisor) || err.Error() != c.want {
			t.Errorf("error %v\nwant  %s", err, c.want)
		}
	}
	// This host, as it is.
	m, _ := New(Config{Dir: t.TempDir(), LogDir: t.TempDir()})
	_, err := m.Provision(context.Background(), machine(1))
	if err == nil {
		t.Skip("this host runs machines")
	}
	t.Logf("on this host: %v", err)
	if !strings.HasPrefix(err.Error(), "zmachine-light: ") {
		t.Fatalf("unclear error %v", err)
	}
}

func TestNoKernelOrFlists(t *testing.T) {
	m, _ := New(Config{Dir: t.TempDir(), LogDir: t.TempDir(), Hypervisor: &fakeHV{}})
	_, err := m.Provision(context.Background(), machine(1))
	if err == nil || err.Error() != "zmachine-light: no machine kernel configured on this node" {
		t.Fatalf("error %v", err)
	}
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(kernel, nil, 0o600)
	m, _ = New(Config{Dir: t.TempDir(), LogDir: t.TempDir(), Hypervisor: &fakeHV{}, Kernel: kernel})
	_, err = m.Provision(context.Background(), machine(1))
	if err == nil || err.Error() != "zmachine-light: no flist mounter on this node" {
		t.Fatalf("error %v", err)
	}
}

// fakeHV records what it is asked to run.
type fakeHV struct {
	mu    sync.Mutex
	vms   []VM
	calls []string
}

func (f *fakeHV) Check() error { return nil }
func (f *fakeHV) Start(_ context.Context, vm VM) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vms = append(f.vms, vm)
	f.calls = append(f.calls, "start")
	return nil
}
func (f *fakeHV) Stop(context.Context, string, string) error   { f.call("stop"); return nil }
func (f *fakeHV) Pause(context.Context, string, string) error  { f.call("pause"); return nil }
func (f *fakeHV) Resume(context.Context, string, string) error { f.call("resume"); return nil }
func (f *fakeHV) call(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

type fakeFlists struct{ mounted map[string]string }

func (f *fakeFlists) Mount(_ context.Context, flist, target string) error {
	f.mounted[target] = flist
	return nil
}
func (f *fakeFlists) Unmount(_ context.Context, target string) error {
	delete(f.mounted, target)
	return nil
}

type fakeStorage map[string]struct {
	path string
	disk bool
}

func (s fakeStorage) Locate(id string) (string, bool, error) {
	v, ok := s[id]
	if !ok {
		return "", false, errors.New("no such storage")
	}
	return v.path, v.disk, nil
}

// TestMachineWiring boots a machine on a fake hypervisor over a real
// NetworkLight network: TAP on the bridge, kernel ip= from the router,
// disks and shares, configuration on the command line.
func TestMachineWiring(t *testing.T) {
	if err := (iproute.IP{}).Check(); err != nil {
		t.Skipf("cannot create networks here: %v", err)
	}
	ctx := context.Background()
	twin := rand.Uint64N(1<<40) + 1
	vmTask := machine(twin)
	netData, _ := json.Marshal(gridtypes.NetworkLightData{Subnet: "10.20.1.0/24"})
	netTask := provisiond.Task{TwinID: twin, DeploymentID: 1, Workload: gridtypes.Workload{Name: "net", Type: gridtypes.NetworkLightType, Data: netData}}
	salt := fmt.Sprintf("t%x", rand.Uint64())
	nets, err := netlightd.New(netlightd.Config{Dir: t.TempDir(), Salt: salt})
	if err != nil {
		t.Fatal(err)
	}
	nl, err := netlight.New(nets)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nl.Deprovision(ctx, netTask) })
	if _, err := nl.Provision(ctx, netTask); err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(kernel, nil, 0o600)
	hv, fl := &fakeHV{}, &fakeFlists{mounted: map[string]string{}}
	storage := fakeStorage{
		vmTask.Sibling("disk"): {"/data/zmounts/disk.img", true},
		vmTask.Sibling("vol"):  {"/data/volumes/vol", false},
	}
	m, err := New(Config{Dir: t.TempDir(), LogDir: t.TempDir(), Hypervisor: hv, Kernel: kernel, Flists: fl, Storage: storage, NetworkSalt: salt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Deprovision(ctx, vmTask) })
	res, err := m.Provision(ctx, vmTask)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	vm := hv.vms[0]
	tap := TapName(vmTask.ID(), 0)
	if vm.CPU != 2 || vm.Memory != 512*gridtypes.MiB || vm.Kernel != kernel ||
		!slices.Equal(vm.Disks, []string{"/data/zmounts/disk.img"}) ||
		len(vm.Shares) != 2 || vm.Shares[1] != (Share{Tag: "vol", Path: "/data/volumes/vol"}) ||
		len(vm.NICs) != 1 || vm.NICs[0].Tap != tap || r.Taps[0] != tap || r.Console != m.Console(vmTask) {
		t.Fatalf("vm %+v\nresult %+v", vm, r)
	}
	if fl.mounted[vm.Shares[0].Path] != "https://hub.grid.tf/tf-official-apps/base:latest.flist" {
		t.Fatalf("flist mounts %v", fl.mounted)
	}
	if !strings.Contains(vm.Cmdline, " ip=10.20.1.5::10.20.1.1:255.255.255.0::eth0:off ") {
		t.Fatalf("cmdline %s", vm.Cmdline)
	}
	entry := base64.StdEncoding.EncodeToString([]byte(`"/bin/app --serve"`))
	if !strings.Contains(vm.Cmdline, "grid4.entrypoint="+entry) {
		t.Fatalf("cmdline %s", vm.Cmdline)
	}
	out, _ := exec.Command("ip", "-o", "link", "show", "dev", tap).CombinedOutput()
	if !strings.Contains(string(out), "master "+netlight.NamesOf(salt, netTask.ID()).Bridge) {
		t.Fatalf("tap not on the network's bridge: %s", out)
	}
	// The cloud-hypervisor command line for it.
	args := strings.Join(CloudHypervisor{}.Args(vm), " ")
	for _, want := range []string{"--cpus boot=2", "--memory size=512M,shared=on", "--disk path=/data/zmounts/disk.img", "--net tap=" + tap + ",mac=" + MAC(vmTask.ID(), 0), "--fs tag=root,socket="} {
		if !strings.Contains(args, want) {
			t.Errorf("cloud-hypervisor args lack %q: %s", want, args)
		}
	}
	if err := m.Pause(ctx, vmTask); err != nil {
		t.Fatal(err)
	}
	if err := m.Resume(ctx, vmTask); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Deprovision(ctx, vmTask); err != nil {
			t.Fatal(err)
		}
	}
	if iproute.LinkExists(tap) || len(fl.mounted) != 0 {
		t.Fatal("tap or root mount left")
	}
	if got := strings.Join(hv.calls, ","); got != "start,pause,resume,stop" {
		t.Fatalf("hypervisor calls %s", got)
	}
}

func TestMachineWithMissingStorage(t *testing.T) {
	if err := (iproute.IP{}).Check(); err != nil {
		t.Skipf("cannot create networks here: %v", err)
	}
	kernel := filepath.Join(t.TempDir(), "vmlinuz")
	os.WriteFile(kernel, nil, 0o600)
	m, _ := New(Config{Dir: t.TempDir(), LogDir: t.TempDir(), Hypervisor: &fakeHV{}, Kernel: kernel, Flists: &fakeFlists{mounted: map[string]string{}}, Storage: fakeStorage{}})
	tk := machine(rand.Uint64N(1<<40) + 1)
	_, err := m.Provision(context.Background(), tk)
	if err == nil || !strings.Contains(err.Error(), "mount disk: no such storage") {
		t.Fatalf("error %v", err)
	}
}
