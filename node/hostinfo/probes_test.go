package hostinfo

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// tree writes files (path → content) under a fresh root and returns a
// Prober on it.
func tree(t *testing.T, files map[string]string) *Prober {
	t.Helper()
	root := t.TempDir()
	for rel, data := range files {
		writeFile(t, root, rel, data)
	}
	return newProber(t, root, "", fakeAddrs{})
}

func TestNewRejectsBadConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{Root: filepath.Join(t.TempDir(), "missing")},
		{Root: file},
		{Root: t.TempDir(), Interface: "../../etc"},
		{Root: t.TempDir(), Interface: "a/b"},
		{Root: t.TempDir(), Interface: ".."},
		{Root: t.TempDir(), Interface: "eth 0"},
		{Root: t.TempDir(), Interface: "sixteen-chars-xx"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error, want one", cfg)
		}
	}
	if _, err := New(Config{Root: t.TempDir(), Interface: "enp65s0f1np1"}); err != nil {
		t.Errorf("New with a valid interface name: %v", err)
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64 // 0: error
	}{
		{"0", 1},
		{"0-3", 4},
		{"0-3,8-11\n", 8},
		{"0,2,4,6", 4},
		{"0-0", 1},
		{"", 0},
		{"a", 0},
		{"3-1", 0},
		{"0-", 0},
		{"-3", 0},
		{"0,,1", 0},
		{"0-4294967295", 0},
		{"0-65535", 65536},
		{"0-65536", 0},
	} {
		got, err := parseCPUList(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("parseCPUList(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseCPUList(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestCPUs(t *testing.T) {
	cpuinfo := "processor\t: 0\nflags\t: fpu\n\nprocessor\t: 1\nflags\t: fpu\n\n"
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  Fact[uint64]
	}{
		{"online wins", map[string]string{cpuOnlinePath: "0-7\n", cpuinfoPath: cpuinfo}, known(uint64(8), cpuOnlinePath)},
		{"cpuinfo fallback", map[string]string{cpuinfoPath: cpuinfo}, known(uint64(2), cpuinfoPath)},
		{"malformed online", map[string]string{cpuOnlinePath: "zero\n", cpuinfoPath: cpuinfo}, Fact[uint64]{Source: cpuOnlinePath}},
		{"no processors", map[string]string{cpuinfoPath: "Hardware: x\n"}, Fact[uint64]{Source: cpuinfoPath}},
		{"nothing", nil, Fact[uint64]{Source: cpuOnlinePath}},
	} {
		got := tree(t, tc.files).CPUs()
		if !tc.want.Known && got.Reason == "" {
			t.Errorf("%s: unknown without a reason", tc.name)
		}
		got.Reason = ""
		if got != tc.want {
			t.Errorf("%s: CPUs() = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestMemory(t *testing.T) {
	for _, tc := range []struct {
		meminfo string // "": no file
		want    uint64 // 0: unknown
	}{
		{"MemTotal:       16314668 kB\nMemFree: 1 kB\n", 16314668 * 1024},
		{"MemFree:  1 kB\nMemTotal:  1024 kB\n", 1 << 20},
		{"", 0},
		{"MemFree: 1 kB\n", 0},
		{"MemTotal: 16 MB\n", 0},
		{"MemTotal: 0 kB\n", 0},
		{"MemTotal: -5 kB\n", 0},
		{"MemTotal: 99999999999999999999 kB\n", 0},
	} {
		files := map[string]string{}
		if tc.meminfo != "" {
			files[meminfoPath] = tc.meminfo
		}
		got := tree(t, files).Memory()
		if got.Known != (tc.want != 0) || got.Value != tc.want || (!got.Known && got.Reason == "") {
			t.Errorf("Memory() on %q = %+v, want %d", tc.meminfo, got, tc.want)
		}
	}
}

// A file larger than any pseudo-file the probes know is refused rather than
// read without limit.
func TestOversizedFileIsRefused(t *testing.T) {
	huge := "MemTotal: 1024 kB\n" + strings.Repeat("x", maxFileBytes)
	got := tree(t, map[string]string{meminfoPath: huge}).Memory()
	if got.Known || !strings.Contains(got.Reason, "larger than") {
		t.Errorf("Memory() on an oversized meminfo = %+v, want unknown (larger than)", got)
	}
}

func TestSkipByName(t *testing.T) {
	for name, want := range map[string]string{
		"loop0": "loop device", "loop12": "loop device", "ram0": "RAM disk", "zram0": "compressed RAM disk",
		"dm-0": "device mapper", "md0": "software RAID", "md127": "software RAID", "md_d0": "software RAID",
		"sr0": "optical drive", "fd0": "floppy drive", "nbd3": "network block device",
		"mmcblk0boot0": "eMMC boot or RPMB area", "mmcblk1rpmb": "eMMC boot or RPMB area",
		"sda": "", "nvme0n1": "", "vda": "", "xvda": "", "mmcblk0": "", "mdisk": "", "md": "",
	} {
		if got := skipByName(name); got != want {
			t.Errorf("skipByName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestDiskProblems(t *testing.T) {
	disk := func(size, rot string) map[string]string {
		return map[string]string{
			"/sys/block/sdx/device":           "",
			"/sys/block/sdx/size":             size,
			"/sys/block/sdx/queue/rotational": rot,
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  Disk // Problem: "*" for any
	}{
		{"ssd", disk("2048\n", "0\n"), Disk{Name: "sdx", Kind: SSD, Size: 1 << 20}},
		{"hdd", disk("2048\n", "1\n"), Disk{Name: "sdx", Kind: HDD, Size: 1 << 20}},
		{"bad size", disk("lots\n", "0\n"), Disk{Name: "sdx", Problem: "*"}},
		{"absurd size", disk("18446744073709551615\n", "0\n"), Disk{Name: "sdx", Problem: "*"}},
		{"bad rotational", disk("2048\n", "2\n"), Disk{Name: "sdx", Problem: "*"}},
		{"no size", map[string]string{"/sys/block/sdx/device": "", "/sys/block/sdx/queue/rotational": "0"}, Disk{Name: "sdx", Problem: "*"}},
		{"virtual", map[string]string{"/sys/block/bcache0/size": "2048", "/sys/block/bcache0/queue/rotational": "0"},
			Disk{Name: "bcache0", Skip: "virtual device (no device link)"}},
	} {
		l := tree(t, tc.files).Disks()
		if !l.Known || len(l.Value) != 1 {
			t.Fatalf("%s: Disks() = %+v", tc.name, l)
		}
		got := l.Value[0]
		if tc.want.Problem == "*" && got.Problem != "" {
			got.Problem = "*"
		}
		if got != tc.want {
			t.Errorf("%s: disk = %+v, want %+v", tc.name, got, tc.want)
		}
		if got.Counted() != (tc.want.Kind != "") {
			t.Errorf("%s: Counted() = %v", tc.name, got.Counted())
		}
	}
	if d := tree(t, nil).Disks(); d.Known || d.Reason == "" {
		t.Errorf("Disks() without /sys/block = %+v, want unknown with a reason", d)
	}
}

func TestGPUClasses(t *testing.T) {
	dev := func(slot, vendor, device, class string) map[string]string {
		d := "/sys/bus/pci/devices/" + slot + "/"
		return map[string]string{d + "vendor": vendor + "\n", d + "device": device + "\n", d + "class": class + "\n"}
	}
	files := map[string]string{}
	for _, m := range []map[string]string{
		dev("0000:01:00.0", "0x10de", "0x20b0", "0x030200"), // 3D controller: datacenter GPUs
		dev("0000:02:00.0", "0x1002", "0x73bf", "0x030000"), // VGA
		dev("0000:03:00.0", "0x8086", "0x1572", "0x020000"), // network
		dev("0000:04:00.0", "0x1234", "0x5678", "0x0380ff"), // other display, unknown vendor
		dev("0000:05:00.0", "0x10de", "0x1234", "junk"),
	} {
		for k, v := range m {
			files[k] = v
		}
	}
	files["/sys/bus/pci/devices/0000:06:00.0/class"] = "0x030000\n" // no ids: left out
	got := tree(t, files).GPUs()
	want := []GPU{
		{Slot: "0000:01:00.0", Vendor: "0x10de", Device: "0x20b0", Class: "0x030200", VendorName: "NVIDIA"},
		{Slot: "0000:02:00.0", Vendor: "0x1002", Device: "0x73bf", Class: "0x030000", VendorName: "AMD"},
		{Slot: "0000:04:00.0", Vendor: "0x1234", Device: "0x5678", Class: "0x0380ff", VendorName: "QEMU"},
	}
	if !got.Known || !reflect.DeepEqual(got.Value, want) {
		t.Errorf("GPUs() = %+v, want %+v", got, want)
	}
	if g := tree(t, map[string]string{"/sys/bus/pci/devices/0000:00:00.0/class": "0x060000"}).GPUs(); !g.Known || g.Value == nil || len(g.Value) != 0 {
		t.Errorf("GPUs() without display devices = %+v, want known and empty", g)
	}
}

func TestSecureBoot(t *testing.T) {
	const other = efivarsPath + "/BootOrder-8be4df61-93ca-11d2-aa0d-00e098032b8c"
	efi := func(extra map[string]string) map[string]string {
		m := map[string]string{efiPath + "/fw_platform_size": "64\n", other: "\x07\x00\x00\x00\x01\x00"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name        string
		files       map[string]string
		value, know bool
		reason      string // substring; "" when none is expected
	}{
		{"on", efi(map[string]string{secureBootVar: "\x06\x00\x00\x00\x01"}), true, true, ""},
		{"off", efi(map[string]string{secureBootVar: "\x06\x00\x00\x00\x00"}), false, true, ""},
		{"no variable", efi(nil), false, true, "no SecureBoot variable"},
		{"bad value", efi(map[string]string{secureBootVar: "\x06\x00\x00\x00\x02"}), false, false, "value 2"},
		{"short", efi(map[string]string{secureBootVar: "\x06\x00\x00\x00"}), false, false, "4 bytes"},
		{"long", efi(map[string]string{secureBootVar: "\x06\x00\x00\x00\x01\x00"}), false, false, "6 bytes"},
		{"efivarfs not mounted", map[string]string{efiPath + "/fw_platform_size": "64\n"}, false, false, "efivarfs"},
		{"BIOS", map[string]string{"/sys/firmware/acpi/tables/DSDT": "x"}, false, true, "not EFI"},
		{"masked firmware", map[string]string{"/sys/block/x": ""}, false, false, "cannot be seen"},
	} {
		got := tree(t, tc.files).SecureBoot()
		if got.Value != tc.value || got.Known != tc.know {
			t.Errorf("%s: SecureBoot() = %+v, want value %v known %v", tc.name, got, tc.value, tc.know)
		}
		if tc.reason == "" && got.Reason != "" || !strings.Contains(got.Reason, tc.reason) {
			t.Errorf("%s: reason %q, want %q", tc.name, got.Reason, tc.reason)
		}
	}
}

func TestPlaceholderSerial(t *testing.T) {
	for _, s := range []string{
		"", " ", "0", "00000000", "To Be Filled By O.E.M.", "to be filled by o.e.m.", "Default string",
		"Default String", "System Serial Number", "Not Specified", "None", "N/A", "OEM", "XXXXXXXXXX",
		"..........", "0123456789", "Chassis Serial Number",
	} {
		if !placeholderSerial(s) {
			t.Errorf("placeholderSerial(%q) = false, want true", s)
		}
	}
	for _, s := range []string{"S123456X9A01234", "VMware-56 4d 2c 1a", "CZ20210A1B", "00000001", "ec2a1b2c-aaaa"} {
		if placeholderSerial(s) {
			t.Errorf("placeholderSerial(%q) = true, want false", s)
		}
	}
}

func TestSerial(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    string // "": unknown
	}{
		{"CZ20210A1B\n", "CZ20210A1B"},
		{"  CZ 2021 \n", "CZ 2021"},
		{"To Be Filled By O.E.M.\n", ""},
		{"\n", ""},
		{"bad\x01serial\n", ""},
		{strings.Repeat("A", 120) + "BCDEFGHIJ\n", ""},
		{"\xff\xfe\n", ""},
	} {
		got := tree(t, map[string]string{serialPath: tc.content}).Serial()
		if got.Value != tc.want || got.Known != (tc.want != "") || (!got.Known && got.Reason == "") {
			t.Errorf("Serial() on %q = %+v, want %q", tc.content, got, tc.want)
		}
	}
}

func TestHypervisorByDMI(t *testing.T) {
	for _, tc := range []struct{ vendor, product, want string }{
		{"QEMU", "Standard PC (i440FX + PIIX, 1996)", "QEMU"},
		{"Red Hat", "KVM", "KVM"},
		{"VMware, Inc.", "VMware Virtual Platform", "VMware"},
		{"innotek GmbH", "VirtualBox", "VirtualBox"},
		{"Xen", "HVM domU", "Xen"},
		{"Microsoft Corporation", "Virtual Machine", "Microsoft Hyper-V"},
		{"Microsoft Corporation", "Surface Pro 7", ""},
		{"Amazon EC2", "t3.micro", "Amazon EC2"},
		{"Amazon EC2", "c5.metal", ""},
		{"Google", "Google Compute Engine", "Google Compute Engine"},
		{"DigitalOcean", "Droplet", "DigitalOcean"},
		{"OpenStack Foundation", "OpenStack Nova", "OpenStack"},
		{"Parallels Software International Inc.", "Parallels Virtual Platform", "Parallels"},
		{"Hetzner", "vServer", "Hetzner vServer"},
		{"Supermicro", "SYS-2029U-TR4", ""},
		{"Dell Inc.", "PowerEdge R640", ""},
		{"", "", ""},
	} {
		if got := hypervisorByDMI(tc.vendor, tc.product); got != tc.want {
			t.Errorf("hypervisorByDMI(%q, %q) = %q, want %q", tc.vendor, tc.product, got, tc.want)
		}
	}
}

func TestVirtualizationMarkers(t *testing.T) {
	const plainCPU = "processor\t: 0\nflags\t\t: fpu sse\n"
	for _, tc := range []struct {
		name     string
		files    map[string]string
		known    bool
		evidence []Evidence
	}{
		{"bare", map[string]string{cpuinfoPath: plainCPU}, true, []Evidence{}},
		{"podman", map[string]string{cpuinfoPath: plainCPU, containerenv: "engine=\"podman\"\n"}, true,
			[]Evidence{{Container, containerenv, "Podman"}}},
		{"nspawn", map[string]string{cpuinfoPath: plainCPU, systemdCtrPath: "systemd-nspawn\n", initEnvPath: "container=systemd-nspawn\x00TERM=vt220\x00"}, true,
			[]Evidence{{Container, systemdCtrPath, "systemd-nspawn"}, {Container, initEnvPath, "container=systemd-nspawn"}}},
		{"kubernetes", map[string]string{cpuinfoPath: plainCPU, initCgroupPath: "11:memory:/kubepods/besteffort/pod1/abc\n"}, true,
			[]Evidence{{Container, initCgroupPath, "Kubernetes"}}},
		{"lxc", map[string]string{cpuinfoPath: plainCPU, initCgroupPath: "0::/lxc.payload.c1\n", initEnvPath: "container=lxc\x00"}, true,
			[]Evidence{{Container, initCgroupPath, "LXC"}, {Container, initEnvPath, "container=lxc"}}},
		{"empty container=", map[string]string{cpuinfoPath: plainCPU, initEnvPath: "container=\x00"}, true, []Evidence{}},
		{"no cpuinfo, no evidence", map[string]string{}, false, nil},
		{"no cpuinfo, docker", map[string]string{dockerenvPath: ""}, true, []Evidence{{Container, dockerenvPath, "Docker"}}},
	} {
		got := tree(t, tc.files).Virtualization()
		if got.Known != tc.known || !reflect.DeepEqual(got.Value.Evidence, tc.evidence) {
			t.Errorf("%s: Virtualization() = %+v, want known %v evidence %+v", tc.name, got, tc.known, tc.evidence)
		}
		if got.Value.Virtualized != (len(tc.evidence) > 0) {
			t.Errorf("%s: Virtualized = %v with %d pieces of evidence", tc.name, got.Value.Virtualized, len(tc.evidence))
		}
		if !got.Known && got.Reason == "" {
			t.Errorf("%s: unknown without a reason", tc.name)
		}
	}
}

func TestInterfaceConfigured(t *testing.T) {
	root := loadTree(t, "baremetal")
	p := newProber(t, root, "eno2", fixtureAddrs)
	want := api.Interface{Name: "eno2", Mac: "3c:ec:ef:12:34:57", IPs: api.IPList{"192.168.2.20"}}
	if got := p.Interface(); !got.Known || !reflect.DeepEqual(got.Value, want) || got.Source != "configured" {
		t.Errorf("Interface() = %+v, want %+v", got, want)
	}
	// Configured but absent from the machine, or present without addresses
	// in the source: unknown, with the reason.
	for _, tc := range []struct{ iface, reason string }{
		{"eno9", "does not exist"},
		{"eno1", "no such network interface"},
	} {
		p := newProber(t, root, tc.iface, fakeAddrs{"eno2": nil})
		if got := p.Interface(); got.Known || !strings.Contains(got.Reason, tc.reason) {
			t.Errorf("Interface() for %s = %+v, want unknown (%s)", tc.iface, got, tc.reason)
		}
	}
	// An interface without addresses is still the management interface.
	p = newProber(t, root, "eno2", fakeAddrs{"eno2": nil})
	if got := p.Interface(); !got.Known || len(got.Value.IPs) != 0 || got.Value.IPs == nil {
		t.Errorf("Interface() without addresses = %+v, want known with an empty list", got)
	}
}

func TestInterfaceBadMAC(t *testing.T) {
	for _, mac := range []string{"", "zz:zz", "00:11:22:33:44"} {
		p := tree(t, map[string]string{"/sys/class/net/eth0/address": mac + "\n"})
		p.iface = "eth0"
		if got := p.Interface(); got.Known || got.Reason == "" {
			t.Errorf("Interface() with MAC %q = %+v, want unknown", mac, got)
		}
	}
}

func TestDefaultRoutes(t *testing.T) {
	const hdr = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	v6 := func(metric, flags, dev string) string {
		return strings.Repeat("0", 32) + " 00 " + strings.Repeat("0", 32) + " 00 fe800000000000000000000000000001 " + metric + " 00000001 00000000 " + flags + " " + dev + "\n"
	}
	for _, tc := range []struct {
		name       string
		route, rt6 string
		want       string
	}{
		{"lowest metric", hdr + "a\t00000000\t0101A8C0\t0003\t0\t0\t300\t00000000\t0\t0\t0\nb\t00000000\t0101A8C0\t0003\t0\t0\t20\t00000000\t0\t0\t0\n", "", "b"},
		{"down route ignored", hdr + "a\t00000000\t0101A8C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\nb\t00000000\t0101A8C0\t0003\t0\t0\t9\t00000000\t0\t0\t0\n", "", "b"},
		{"reject route ignored", hdr + "a\t00000000\t00000000\t0201\t0\t0\t0\t00000000\t0\t0\t0\n", "", ""},
		{"not default", hdr + "a\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", "", ""},
		{"ipv6 only", hdr, v6("00000400", "00000003", "wan0") + v6("ffffffff", "00200200", "lo"), "wan0"},
		{"ipv6 lowest metric", "", v6("00000400", "00000003", "a") + v6("00000100", "00000003", "b"), "b"},
		{"ipv4 before ipv6", hdr + "v4\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n", v6("00000001", "00000003", "v6"), "v4"},
		{"garbage", "\x00\x01 nonsense\n\n", "also nonsense", ""},
		{"hostile name", hdr + "../../x\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n", "", ""},
	} {
		files := map[string]string{"/sys/class/net/" + tc.want + "/address": "02:00:00:00:00:01\n"}
		if tc.route != "" {
			files[routePath] = tc.route
		}
		if tc.rt6 != "" {
			files[ipv6RoutePath] = tc.rt6
		}
		p := tree(t, files)
		p.addrs = fakeAddrs{tc.want: {"2001:db8::1/64"}}
		got := p.Interface()
		if got.Value.Name != tc.want || got.Known != (tc.want != "") || (!got.Known && got.Reason == "") {
			t.Errorf("%s: Interface() = %+v, want %q", tc.name, got, tc.want)
		}
	}
}

func TestReportableAddresses(t *testing.T) {
	got := reportable(mustPrefixes(t,
		"2001:db8::2/64", "10.0.0.2/8", "127.0.0.1/8", "::1/128", "fe80::1/64", "169.254.1.2/16",
		"10.0.0.2/8", "0.0.0.0/0", "::ffff:192.0.2.7/96", "ff02::1/128", "192.0.2.1/32",
	))
	want := api.IPList{"10.0.0.2", "192.0.2.1", "192.0.2.7", "2001:db8::2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reportable = %q, want %q", got, want)
	}
	if got := reportable(nil); got == nil || len(got) != 0 {
		t.Errorf("reportable(nil) = %#v, want an empty list (JSON [])", got)
	}
}

func mustPrefixes(t *testing.T, s ...string) []netip.Prefix {
	t.Helper()
	out, err := fakeAddrs{"x": s}.Addrs("x")
	if err != nil {
		t.Fatal(err)
	}
	return out
}
