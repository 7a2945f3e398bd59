package storaged

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/node/hostinfo"
)

// fixtureDisk adds disk name to a fixture root: size in bytes, the
// rotational flag, a device link and a /dev file to benchmark.
func fixtureDisk(t *testing.T, root, name string, size uint64, rotational string) {
	t.Helper()
	dir := filepath.Join(root, "sys/block", name)
	for p, c := range map[string]string{
		"size":                 fmt.Sprint(size / 512),
		"queue/rotational":     rotational,
		"removable":            "0",
		"device/vendor":        "fixture",
		"../../../dev/" + name: strings.Repeat("x", 1<<20),
	} {
		f := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClassifyRules(t *testing.T) {
	root := t.TempDir()
	fixtureDisk(t, root, "nvme0n1", 1<<40, "0")
	fixtureDisk(t, root, "sda", 4<<40, "1")
	fixtureDisk(t, root, "vda", 256<<30, "1")
	p, err := hostinfo.New(hostinfo.Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	disks := p.Disks().Value
	slow := func(dev string) (time.Duration, error) {
		if filepath.Base(dev) != "sda" {
			return 0, fmt.Errorf("benchmarked %s", dev)
		}
		return 8 * time.Millisecond, nil
	}
	cfg := Config{HostRoot: root, Seeker: slow}
	for _, c := range []struct {
		disk string
		cfg  Config
		kind hostinfo.DiskKind
		rule string
	}{
		{"nvme0n1", cfg, hostinfo.SSD, "rotational=0"},
		{"sda", cfg, hostinfo.HDD, "seek benchmark"},
		// The real benchmark on vda's fixture file: a file answers fast.
		{"vda", Config{HostRoot: root}, hostinfo.SSD, "seek benchmark"},
		{"sda", Config{HostRoot: root, Seeker: slow, Types: map[string]hostinfo.DiskKind{"sda": hostinfo.SSD}}, hostinfo.SSD, "configured"},
		{"", cfg, hostinfo.SSD, "assumed"},
		{"sdz", cfg, hostinfo.SSD, "assumed"},
	} {
		got := classify(c.disk, disks, c.cfg, "")
		if got.Kind != c.kind || got.Rule != c.rule {
			t.Errorf("%s: %+v, want %s by %q", c.disk, got, c.kind, c.rule)
		}
	}
	// A rotational disk that cannot be benchmarked stays an HDD.
	os.Remove(filepath.Join(root, "dev/sda"))
	if got := classify("sda", disks, Config{HostRoot: root}, ""); got.Kind != hostinfo.HDD || got.Rule != "rotational=1" || !strings.Contains(got.Detail, "no such file") {
		t.Errorf("sda without a device: %+v", got)
	}
}
