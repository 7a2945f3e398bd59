package vmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// hypervisor is a backend: it launches a machine's monitor process (the
// virtiofsd processes are vmd's own) and controls it.
type hypervisor interface {
	// name is the backend's name (QEMUTCG, …).
	name() string
	// check says why the backend cannot run here, or nil.
	check() error
	// command is the monitor's program and arguments for vm. The
	// arguments contain control(vm.dir), which identifies the process.
	command(vm plan) (string, []string)
	// control is the monitor's control socket in a machine's directory.
	control(dir string) string
	// statusDevice is the guest device the init writes its last word to,
	// and extraModules the kernel modules it needs.
	statusDevice() string
	extraModules() []string
	// pause, resume and powerdown act on a running machine; paused says
	// whether it is paused.
	pause(ctx context.Context, dir string) error
	resume(ctx context.Context, dir string) error
	powerdown(ctx context.Context, dir string) error
	paused(ctx context.Context, dir string) (bool, error)
}

// plan is what a monitor boots.
type plan struct {
	dir    string // the machine's directory
	name   string // g4v<short>
	cpu    uint8
	memory uint64 // bytes, a multiple of 1 MiB
	// maxCPU and maxMemory (whole MiB; roomToGrow) are how far the machine
	// may grow while it runs (resize).
	maxCPU          uint8
	maxMemory       uint64
	kernel, initrd  string
	cmdline         string
	shares          []share
	disks           []disk
	nics            []nicPlan
	console, status string // files: the serial console, the init's status line
}

// share is a virtiofs share: its tag and virtiofsd's socket.
type share struct{ tag, socket string }

// disk is a virtio disk image, found by the guest by serial.
type disk struct {
	path, serial string
	readOnly     bool
}

// nicPlan is a TAP device and the guest's MAC on it. A macvtap is passed
// to the hypervisor open, as file descriptor fd (0 for a TAP the
// hypervisor opens by name).
type nicPlan struct {
	tap, mac string
	fd       int
}

// hypervisors makes every backend from the configuration.
func hypervisors(c Config) map[string]hypervisor {
	kvm := orDefault(c.KVM, "/dev/kvm")
	q := orDefault(c.QEMU, "qemu-system-x86_64")
	return map[string]hypervisor{
		CloudHypervisor: cloudHypervisor{bin: orDefault(c.CloudHypervisor, "cloud-hypervisor"), kvm: kvm},
		QEMUKVM:         qemu{bin: q, kvm: kvm, accel: "kvm"},
		QEMUTCG:         qemu{bin: q, accel: "tcg"},
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// needKVM says why kvm cannot be used.
func needKVM(backend, kvm string) error {
	f, err := os.OpenFile(kvm, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %s not present", backend, kvm)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", backend, err)
	}
	f.Close()
	// A /dev/kvm without vmx or svm is not hardware virtualisation: PVM
	// (kvm_pvm, on some cloud VMs) boots only PVM-enabled guest kernels,
	// and a standard one hangs there without a word.
	if !hardwareVirtualisation() {
		why := "the CPU has no hardware virtualisation (no vmx or svm flag)"
		if _, err := os.Stat("/sys/module/kvm_pvm"); err == nil {
			why += "; this /dev/kvm is kvm_pvm, which runs only PVM guest kernels"
		}
		return fmt.Errorf("%s: %s present but %s", backend, kvm, why)
	}
	return nil
}

// hardwareVirtualisation reports whether the CPU offers VT-x or AMD-V.
func hardwareVirtualisation() bool {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			flags := strings.Fields(v)
			return slices.Contains(flags, "vmx") || slices.Contains(flags, "svm")
		}
	}
	return false
}

// needProgram says why bin cannot be run.
func needProgram(backend, bin, pkg string) error {
	if _, err := exec.LookPath(bin); err != nil {
		return fmt.Errorf("%s: %s not found (install the %s package)", backend, bin, pkg)
	}
	return nil
}

// qemu runs machines with qemu-system-x86_64, with KVM or emulating the
// CPU (TCG). Each machine is a QEMU process with a QMP socket.
type qemu struct {
	bin   string
	kvm   string // "" for TCG
	accel string // kvm or tcg
}

func (q qemu) name() string {
	if q.accel == "kvm" {
		return QEMUKVM
	}
	return QEMUTCG
}

func (q qemu) check() error {
	if q.accel == "kvm" {
		if err := needKVM(q.name(), q.kvm); err != nil {
			return err
		}
	}
	return needProgram(q.name(), q.bin, "qemu-system-x86")
}

func (q qemu) control(dir string) string { return filepath.Join(dir, "qmp.sock") }
func (q qemu) statusDevice() string      { return "/dev/ttyS1" }
func (q qemu) extraModules() []string    { return nil }

func (q qemu) command(vm plan) (string, []string) {
	mem := strconv.FormatUint(vm.memory>>20, 10) + "M"
	cpu := "max"
	if q.accel == "kvm" {
		cpu = "host"
	}
	args := []string{
		"-name", vm.name,
		"-machine", "q35,accel=" + q.accel,
		"-cpu", cpu,
		"-smp", "cpus=" + strconv.Itoa(int(vm.cpu)) + ",maxcpus=" + strconv.Itoa(int(vm.maxCPU)),
		"-m", "size=" + mem + ",slots=" + strconv.Itoa(memorySlots) + ",maxmem=" + strconv.FormatUint(vm.maxMemory>>20, 10) + "M",
		// virtiofsd reaches the guest's memory through a shared memfd.
		"-object", "memory-backend-memfd,id=mem,size=" + mem + ",share=on",
		"-numa", "node,memdev=mem",
		"-kernel", vm.kernel, "-initrd", vm.initrd, "-append", vm.cmdline,
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		"-chardev", "socket,id=qmp,path=" + q.control(vm.dir) + ",server=on,wait=off",
		"-mon", "chardev=qmp,mode=control",
		"-chardev", "file,id=console,path=" + vm.console + ",append=on",
		"-serial", "chardev:console",
		"-chardev", "file,id=status,path=" + vm.status,
		"-serial", "chardev:status",
	}
	for i, s := range vm.shares {
		id := "fs" + strconv.Itoa(i)
		args = append(args,
			"-chardev", "socket,id="+id+",path="+s.socket,
			"-device", "vhost-user-fs-pci,chardev="+id+",tag="+s.tag)
	}
	for i, d := range vm.disks {
		id := "disk" + strconv.Itoa(i)
		drive := "file=" + d.path + ",if=none,id=" + id + ",format=raw"
		if d.readOnly {
			drive += ",readonly=on"
		}
		args = append(args, "-drive", drive, "-device", "virtio-blk-pci,drive="+id+",serial="+d.serial)
	}
	for i, n := range vm.nics {
		id := "net" + strconv.Itoa(i)
		netdev := "tap,id=" + id + ",ifname=" + n.tap + ",script=no,downscript=no"
		if n.fd != 0 {
			netdev = "tap,id=" + id + ",fd=" + strconv.Itoa(n.fd)
		}
		args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev="+id+",mac="+n.mac)
	}
	return q.bin, args
}

func (q qemu) pause(ctx context.Context, dir string) error {
	return qmpRun(ctx, q.control(dir), "stop", nil)
}

func (q qemu) resume(ctx context.Context, dir string) error {
	return qmpRun(ctx, q.control(dir), "cont", nil)
}

func (q qemu) powerdown(ctx context.Context, dir string) error {
	return qmpRun(ctx, q.control(dir), "system_powerdown", nil)
}

func (q qemu) paused(ctx context.Context, dir string) (bool, error) {
	var st struct {
		Status string `json:"status"`
	}
	if err := qmpRun(ctx, q.control(dir), "query-status", &st); err != nil {
		return false, err
	}
	return st.Status == "paused", nil
}
