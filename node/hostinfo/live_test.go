//go:build linux

package hostinfo

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestLiveMachine probes the machine the test runs on. It cannot know the
// answers, so it checks what must hold on any Linux host, each against a
// source the probe does not use where there is one.
func TestLiveMachine(t *testing.T) {
	p, err := New(Config{Root: "/"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := p.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := json.MarshalIndent(f, "", "  "); err == nil {
		t.Logf("facts: %s", b)
	}
	t.Logf("missing: %q", f.Missing())

	// CRU: the kernel's online CPUs, which the cpuN directories also show;
	// this process may be confined to fewer (runtime.NumCPU).
	if !f.CPUs.Known || f.CPUs.Value < 1 {
		t.Fatalf("CPUs = %+v, want at least 1", f.CPUs)
	}
	if online := onlineCPUDirs(t); f.CPUs.Value != online && f.CPUs.Value != uint64(runtime.NumCPU()) {
		t.Errorf("CPUs = %d, want the %d online CPUs or runtime.NumCPU() = %d", f.CPUs.Value, online, runtime.NumCPU())
	}
	if f.CPUs.Value < uint64(runtime.NumCPU()) {
		t.Errorf("CPUs = %d, fewer than this process may use (%d)", f.CPUs.Value, runtime.NumCPU())
	}

	// MRU: MemTotal and sysinfo(2) both count the kernel's total RAM pages.
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		t.Fatal(err)
	}
	if want := uint64(si.Totalram) * uint64(si.Unit); !f.Memory.Known || f.Memory.Value != want {
		t.Errorf("Memory = %+v, want sysinfo's %d", f.Memory, want)
	}

	// Storage: what is counted adds up, and every disk is accounted for.
	if !f.Disks.Known {
		t.Errorf("Disks unknown: %s", f.Disks.Reason)
	}
	var sum uint64
	for _, d := range f.Disks.Value {
		switch {
		case d.Counted():
			if d.Size == 0 || (d.Kind != SSD && d.Kind != HDD) {
				t.Errorf("counted disk %+v without a size or kind", d)
			}
			sum += d.Size
		case d.Size != 0 || d.Kind != "":
			t.Errorf("uncounted disk %+v has a size or kind", d)
		}
	}
	if r := f.Resources(); r.SRU+r.HRU != sum {
		t.Errorf("SRU %d + HRU %d != %d, the counted disks", r.SRU, r.HRU, sum)
	}

	// Virtualization: the verdict follows the evidence, every piece of
	// evidence points at something that exists, and the markers this test
	// can see for itself are among it.
	v := f.Virtualization
	if !v.Known {
		t.Errorf("Virtualization unknown: %s", v.Reason)
	}
	if v.Value.Virtualized != (len(v.Value.Evidence) > 0) {
		t.Errorf("Virtualized = %v with evidence %+v", v.Value.Virtualized, v.Value.Evidence)
	}
	for _, e := range v.Value.Evidence {
		if _, err := os.Lstat(e.Source); err != nil {
			t.Errorf("evidence %+v: %v", e, err)
		}
	}
	if _, err := os.Stat("/.dockerenv"); err == nil && !v.Value.Container() {
		t.Errorf("/.dockerenv exists but no container evidence: %+v", v.Value)
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil && strings.Contains(string(b), " hypervisor") && !v.Value.VM() {
		t.Errorf("cpuinfo has the hypervisor flag but no VM evidence: %+v", v.Value)
	}

	if sb := f.SecureBoot; sb.Known && sb.Value {
		if _, err := os.Stat("/sys/firmware/efi"); err != nil {
			t.Errorf("secure boot on without EFI: %v", err)
		}
	}

	// The management interface is a live interface with that MAC and
	// those addresses.
	if ifc := f.Interface; ifc.Known {
		live, err := net.InterfaceByName(ifc.Value.Name)
		if err != nil {
			t.Fatalf("interface %s: %v", ifc.Value.Name, err)
		}
		if live.HardwareAddr.String() != ifc.Value.Mac {
			t.Errorf("MAC %s, live interface has %s", ifc.Value.Mac, live.HardwareAddr)
		}
		addrs, _ := live.Addrs()
		var liveIPs []string
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				liveIPs = append(liveIPs, n.IP.String())
			}
		}
		for _, ip := range ifc.Value.IPs {
			if !slices.Contains(liveIPs, ip) {
				t.Errorf("reported %s, not an address of %s (%q)", ip, ifc.Value.Name, liveIPs)
			}
		}
	}

	for _, m := range f.Missing() {
		if _, reason, _ := strings.Cut(m, ": "); reason == "" {
			t.Errorf("missing fact without a reason: %q", m)
		}
	}
}

// onlineCPUDirs counts /sys/devices/system/cpu/cpuN whose online file says
// 1 or is absent (the boot CPU often cannot go offline and has none).
func onlineCPUDirs(t *testing.T) uint64 {
	t.Helper()
	dirs, err := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*")
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "online"))
		if err != nil || strings.TrimSpace(string(b)) == "1" {
			n++
		}
	}
	return n
}
