package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseModInfo(t *testing.T) {
	m, err := ParseModInfo([]byte("license=GPL\x00depends=virtio,virtio_ring\x00\x00\x00alias=a\x00alias=b\x00intree=Y\x00vermagic=6.1 SMP\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if d := m.Depends(); !slices.Equal(d, []string{"virtio", "virtio_ring"}) {
		t.Errorf("depends %v", d)
	}
	if !slices.Equal(m["alias"], []string{"a", "b"}) || m["vermagic"][0] != "6.1 SMP" {
		t.Errorf("modinfo %v", m)
	}
	if m, err := ParseModInfo([]byte("depends=\x00")); err != nil || len(m.Depends()) != 0 {
		t.Errorf("empty depends: %v, %v", m, err)
	}
	for _, bad := range []string{"novalue\x00", "=x\x00"} {
		if _, err := ParseModInfo([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseModInfo(f *testing.F) {
	f.Add([]byte("depends=a,b-c\x00name=x\x00"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseModInfo(b)
		if err != nil {
			return
		}
		for _, d := range m.Depends() {
			if d == "" || strings.ContainsAny(d, ",-\x00") {
				t.Errorf("dependency %q", d)
			}
		}
	})
}

// testKernel is the machine kernel of the test machines
// (scripts/machine-kernel.sh, which make test-services runs).
func testKernel(t *testing.T) Kernel {
	t.Helper()
	dir := os.Getenv("GRID4_MACHINE_KERNEL")
	if dir == "" {
		dir = "/var/cache/grid4/kernel/current"
	}
	k, err := Open(dir)
	if err != nil {
		t.Fatalf("%v (make test-services runs scripts/machine-kernel.sh)", err)
	}
	return k
}

// The modules of a machine come with their dependencies first, once each;
// built-in ones are left out.
func TestModulesOfDebiansCloudKernel(t *testing.T) {
	k := testKernel(t)
	mods, err := k.Modules("virtio_pci", "virtio-net", "virtio_blk", "virtiofs", "ext4")
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range mods {
		if _, dup := pos[m.Name]; dup {
			t.Errorf("%s twice", m.Name)
		}
		pos[m.Name] = i
		if _, err := os.Stat(m.Path); err != nil {
			t.Error(err)
		}
	}
	for _, order := range [][2]string{{"virtio", "virtio_pci"}, {"virtio_ring", "virtio_pci"}, {"fuse", "virtiofs"}, {"failover", "net_failover"}, {"net_failover", "virtio_net"}, {"virtio", "virtio_blk"}} {
		a, aok := pos[order[0]]
		b, bok := pos[order[1]]
		if !aok || !bok || a > b {
			t.Errorf("%s should come before %s: %v", order[0], order[1], mods)
		}
	}
	if _, ok := pos["ext4"]; ok {
		t.Error("ext4 is built into the cloud kernel, yet listed")
	}
	if _, err := k.Modules("no_such_module"); !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "no_such_module") {
		t.Errorf("missing module: %v", err)
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(dir); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty dir: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "boot"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot", "vmlinuz-6.9-x"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := Open(dir)
	if err != nil || k.Version != "6.9-x" {
		t.Fatalf("Open = %+v, %v", k, err)
	}
	// No lib/modules: everything built in.
	if mods, err := k.Modules("virtiofs"); err != nil || len(mods) != 0 {
		t.Errorf("Modules without lib/modules = %v, %v", mods, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "boot", "vmlinuz-7.0"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrNoKernel) {
		t.Errorf("two kernels: %v", err)
	}
}
