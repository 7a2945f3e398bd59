package hostinfo

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// fixtureAddrs are the addresses the fixture machines' interfaces have: a
// live system would give them over netlink.
var fixtureAddrs = fakeAddrs{
	"eno1": {"192.168.200.10/24", "2001:db8:1::10/64", "fe80::3eec:efff:fe12:3456/64", "169.254.7.7/16", "192.168.200.10/24"},
	"eno2": {"192.168.2.20/24"},
	"ens3": {"192.168.1.50/24", "fe80::5054:ff:feab:cdef/64"},
	"eth0": {"172.17.0.2/16", "fe80::42:acff:fe11:2/64"},
}

// diskSummary is a Disk with the problem text reduced to whether there is
// one: the text is for humans, the rule is what the tests pin down.
type diskSummary struct {
	Name    string
	Kind    DiskKind
	Size    uint64
	Skip    string
	Problem bool
}

func summarize(l DiskList) []diskSummary {
	out := []diskSummary{}
	for _, d := range l {
		out = append(out, diskSummary{d.Name, d.Kind, d.Size, d.Skip, d.Problem != ""})
	}
	return out
}

func TestFixtureTrees(t *testing.T) {
	type want struct {
		resources  api.Resources
		cpuSource  string
		disks      []diskSummary
		gpus       []GPU // nil: unknown
		secureBoot Fact[bool]
		vm, ctr    bool
		virtKnown  bool
		evidence   []string // "kind source"
		serial     string   // "": unknown
		iface      *api.Interface
		missing    []string // prefixes of Missing()
	}
	tests := []struct {
		tree string
		want want
	}{
		{
			tree: "baremetal",
			want: want{
				resources: api.Resources{
					CRU: 16,
					MRU: 263842480 * 1024,
					SRU: 3907029168 * 512,
					HRU: 2 * 23437770752 * 512,
				},
				cpuSource: cpuOnlinePath,
				disks: []diskSummary{
					{Name: "dm-0", Skip: "device mapper"},
					{Name: "loop0", Skip: "loop device"},
					{Name: "md127", Skip: "software RAID"},
					{Name: "nvme0c0n1", Skip: "hidden (multipath path of a namespace counted on its own)"},
					{Name: "nvme0n1", Kind: SSD, Size: 3907029168 * 512},
					{Name: "sda", Kind: HDD, Size: 23437770752 * 512},
					{Name: "sda1", Skip: "partition"},
					{Name: "sdb", Kind: HDD, Size: 23437770752 * 512},
					{Name: "sdc", Skip: "removable"},
					{Name: "sr0", Skip: "optical drive"},
					{Name: "zram0", Skip: "compressed RAM disk"},
				},
				gpus: []GPU{
					{Slot: "0000:03:00.0", Vendor: "0x1a03", Device: "0x2000", Class: "0x030000", VendorName: "ASPEED"},
					{Slot: "0000:41:00.0", Vendor: "0x10de", Device: "0x2204", Class: "0x030000", VendorName: "NVIDIA"},
				},
				secureBoot: Fact[bool]{Value: true, Known: true, Source: secureBootVar},
				virtKnown:  true,
				evidence:   []string{},
				serial:     "S123456X9A01234",
				// eno1: its default route has the lower metric.
				iface: &api.Interface{Name: "eno1", Mac: "3c:ec:ef:12:34:56", IPs: api.IPList{"192.168.200.10", "2001:db8:1::10"}},
			},
		},
		{
			tree: "kvm",
			want: want{
				resources: api.Resources{
					CRU: 4,
					MRU: 8148240 * 1024,
					SRU: 209715200 * 512,
					HRU: 83886080 * 512,
				},
				cpuSource: cpuOnlinePath,
				disks: []diskSummary{
					{Name: "loop0", Skip: "loop device"},
					{Name: "sr0", Skip: "optical drive"},
					{Name: "vda", Kind: HDD, Size: 83886080 * 512},
					{Name: "vdb", Kind: SSD, Size: 209715200 * 512},
				},
				gpus: []GPU{
					{Slot: "0000:00:01.0", Vendor: "0x1234", Device: "0x1111", Class: "0x030000", VendorName: "QEMU"},
				},
				secureBoot: Fact[bool]{Value: false, Known: true, Source: secureBootVar},
				vm:         true,
				virtKnown:  true,
				evidence:   []string{"vm /proc/cpuinfo", "vm /sys/class/dmi/id"},
				iface:      &api.Interface{Name: "ens3", Mac: "52:54:00:ab:cd:ef", IPs: api.IPList{"192.168.1.50"}},
				missing:    []string{"serial: "},
			},
		},
		{
			tree: "container",
			want: want{
				resources: api.Resources{
					CRU: 8,
					MRU: 32803404 * 1024,
					SRU: 1000215216 * 512,
					HRU: 7814037168 * 512,
				},
				cpuSource: cpuOnlinePath,
				disks: []diskSummary{
					{Name: "loop0", Skip: "loop device"},
					{Name: "loop1", Skip: "loop device"},
					{Name: "nvme0n1", Kind: SSD, Size: 1000215216 * 512},
					{Name: "sda", Kind: HDD, Size: 7814037168 * 512},
				},
				gpus: []GPU{
					{Slot: "0000:00:02.0", Vendor: "0x8086", Device: "0x3e92", Class: "0x030000", VendorName: "Intel"},
				},
				secureBoot: Fact[bool]{Source: firmwarePath},
				ctr:        true,
				virtKnown:  true,
				evidence:   []string{"container /.dockerenv", "container /proc/1/cgroup"},
				iface:      &api.Interface{Name: "eth0", Mac: "02:42:ac:11:00:02", IPs: api.IPList{"172.17.0.2"}},
				missing:    []string{"secure_boot: ", "serial: "},
			},
		},
		{
			tree: "minimal",
			want: want{
				resources: api.Resources{
					CRU: 4,
					MRU: 3884376 * 1024,
					SRU: 62333952 * 512,
				},
				cpuSource: cpuinfoPath,
				disks: []diskSummary{
					{Name: "mmcblk0", Kind: SSD, Size: 62333952 * 512},
					{Name: "mmcblk0boot0", Skip: "eMMC boot or RPMB area"},
					{Name: "mmcblk0boot1", Skip: "eMMC boot or RPMB area"},
					{Name: "mmcblk0rpmb", Skip: "eMMC boot or RPMB area"},
					{Name: "ram0", Skip: "RAM disk"},
					{Name: "sda", Problem: true},
					{Name: "sdb", Skip: "empty (size 0)"},
				},
				secureBoot: Fact[bool]{Value: false, Known: true, Source: efiPath},
				virtKnown:  true,
				evidence:   []string{},
				missing:    []string{"disk sda: ", "gpus: ", "serial: ", "interface: "},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.tree, func(t *testing.T) {
			p := newProber(t, loadTree(t, tc.tree), "", fixtureAddrs)
			f, err := p.Probe(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			w := tc.want
			if got := f.Resources(); got != w.resources {
				t.Errorf("Resources = %+v, want %+v", got, w.resources)
			}
			if f.CPUs.Source != w.cpuSource {
				t.Errorf("CPUs source = %q, want %q", f.CPUs.Source, w.cpuSource)
			}
			if !f.Disks.Known {
				t.Errorf("Disks unknown: %s", f.Disks.Reason)
			}
			if got := summarize(f.Disks.Value); !reflect.DeepEqual(got, w.disks) {
				t.Errorf("Disks =\n%+v\nwant\n%+v", got, w.disks)
			}
			if w.gpus == nil {
				if f.GPUs.Known {
					t.Errorf("GPUs known (%+v), want unknown", f.GPUs.Value)
				}
			} else if !f.GPUs.Known || !reflect.DeepEqual(f.GPUs.Value, w.gpus) {
				t.Errorf("GPUs = %+v, want %+v", f.GPUs, w.gpus)
			}
			sb := f.SecureBoot
			if sb.Value != w.secureBoot.Value || sb.Known != w.secureBoot.Known || sb.Source != w.secureBoot.Source {
				t.Errorf("SecureBoot = %+v, want %+v", sb, w.secureBoot)
			}
			if !sb.Known && sb.Reason == "" || sb.Known && !sb.Value && sb.Source != secureBootVar && sb.Reason == "" {
				t.Errorf("SecureBoot %+v: an unknown or inferred value needs a reason", sb)
			}
			v := f.Virtualization
			if v.Known != w.virtKnown || v.Value.VM() != w.vm || v.Value.Container() != w.ctr || v.Value.Virtualized != (w.vm || w.ctr) {
				t.Errorf("Virtualization = %+v, want known=%v vm=%v container=%v", v, w.virtKnown, w.vm, w.ctr)
			}
			ev := []string{}
			for _, e := range v.Value.Evidence {
				ev = append(ev, string(e.Kind)+" "+e.Source)
				if e.Detail == "" {
					t.Errorf("evidence %+v has no detail", e)
				}
			}
			if !reflect.DeepEqual(ev, w.evidence) {
				t.Errorf("evidence = %q, want %q", ev, w.evidence)
			}
			if w.serial == "" {
				if f.Serial.Known || f.Serial.Value != "" || f.Serial.Reason == "" {
					t.Errorf("Serial = %+v, want unknown with a reason", f.Serial)
				}
			} else if f.Serial != known(w.serial, serialPath) {
				t.Errorf("Serial = %+v, want %q", f.Serial, w.serial)
			}
			if w.iface == nil {
				if f.Interface.Known || f.Interface.Reason == "" {
					t.Errorf("Interface = %+v, want unknown with a reason", f.Interface)
				}
			} else if !f.Interface.Known || !reflect.DeepEqual(f.Interface.Value, *w.iface) {
				t.Errorf("Interface = %+v, want %+v", f.Interface, *w.iface)
			}
			missing := f.Missing()
			if len(missing) != len(w.missing) {
				t.Fatalf("Missing = %q, want entries starting %q", missing, w.missing)
			}
			for i, m := range missing {
				if !strings.HasPrefix(m, w.missing[i]) || len(m) <= len(w.missing[i]) {
					t.Errorf("Missing[%d] = %q, want %q and a reason", i, m, w.missing[i])
				}
			}
		})
	}
}

// The probes are usable one at a time, and each agrees with Probe.
func TestIndividualProbesMatchProbe(t *testing.T) {
	p := newProber(t, loadTree(t, "baremetal"), "", fixtureAddrs)
	f, err := p.Probe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"CPUs", p.CPUs(), f.CPUs},
		{"Memory", p.Memory(), f.Memory},
		{"Disks", p.Disks(), f.Disks},
		{"GPUs", p.GPUs(), f.GPUs},
		{"SecureBoot", p.SecureBoot(), f.SecureBoot},
		{"Virtualization", p.Virtualization(), f.Virtualization},
		{"Serial", p.Serial(), f.Serial},
		{"Interface", p.Interface(), f.Interface},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s() = %+v, Probe gave %+v", c.name, c.got, c.want)
		}
	}
}

func TestProbeStopsWithContext(t *testing.T) {
	p := newProber(t, loadTree(t, "kvm"), "", fixtureAddrs)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Probe(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Probe with a canceled context = %v, want context canceled", err)
	}
}
