// Package hosttest gives the tests of the node modules that run
// workloads on the host (contd, vmd) what they share: commands, a root
// file system of Debian's static busybox, a bridge with a peer namespace
// to reach a workload from, and waiting for what a workload does after
// Start returns.
package hosttest

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/iproute"
)

// Busybox is the static busybox the root file systems are made of
// (Debian's busybox-static).
const Busybox = "/bin/busybox"

// Sh runs a command, failing t with its output if it fails.
func Sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// BusyboxRoot makes a root file system of the static busybox: /bin with
// the applets as links to it, and the directories dirs.
func BusyboxRoot(t testing.TB, applets []string, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range append([]string{"bin"}, dirs...) {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	src, err := os.Open(Busybox)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(filepath.Join(root, "bin", "busybox"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// LAN is a bridge with a peer namespace on it at .2 of a /24.
type LAN struct {
	Bridge, Peer string
	Subnet       netip.Prefix
}

// Addr is host's address on the LAN, with its prefix length.
func (l LAN) Addr(host byte) netip.Prefix {
	a := l.Subnet.Addr().As4()
	a[3] = host
	return netip.PrefixFrom(netip.AddrFrom4(a), 24)
}

// NewLAN makes a bridge and a peer namespace with unique names, in a
// random /24 of 10.octet.0.0/16; both go at the end of the test.
func NewLAN(t testing.TB, octet byte) LAN {
	t.Helper()
	id := iproute.ShortID(fmt.Sprint(rand.Uint64()))[:8]
	l := newPeer(t, "t4p-"+id, "t4p"+id, octet, 2)
	l.Bridge = "t4b" + id
	Sh(t, "ip", "link", "add", "name", l.Bridge, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "dev", l.Bridge).Run() })
	Sh(t, "ip", "link", "set", "dev", "t4p"+id, "master", l.Bridge)
	Sh(t, "ip", "link", "set", "dev", l.Bridge, "up")
	return l
}

// NewUplink makes a stand-in for a node's public interface: Parent, one
// end of a veth pair, up and without an address, whose other end is eth0
// of namespace Peer holding address .1 of Subnet (10.octet.x.0/24) — the
// upstream router. Bridge is empty. Fetch runs in Peer.
func NewUplink(t testing.TB, octet byte) (parent string, l LAN) {
	t.Helper()
	id := iproute.ShortID(fmt.Sprint(rand.Uint64()))[:8]
	return "t4u" + id, newPeer(t, "t4u-"+id, "t4u"+id, octet, 1)
}

// newPeer makes namespace ns joined to this one by a veth pair: hostEnd
// here (up, no address), eth0 there with address .host of a random /24 of
// 10.octet.0.0/16; both go at the end of the test.
func newPeer(t testing.TB, ns, hostEnd string, octet, host byte) LAN {
	t.Helper()
	l := LAN{Peer: ns, Subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, octet, byte(rand.IntN(256)), 0}), 24)}
	Sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	Sh(t, "ip", "link", "add", "name", hostEnd, "type", "veth", "peer", "name", "eth0", "netns", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", "dev", hostEnd).Run() })
	Sh(t, "ip", "link", "set", "dev", hostEnd, "up")
	Sh(t, "ip", "-n", ns, "addr", "add", l.Addr(host).String(), "dev", "eth0")
	Sh(t, "ip", "-n", ns, "link", "set", "dev", "eth0", "up")
	return l
}

// Fetch gets url with curl from inside the peer namespace.
func (l LAN) Fetch(url string) (string, error) {
	out, err := exec.Command("ip", "netns", "exec", l.Peer, "curl", "-sS", "--max-time", "3", url).CombinedOutput()
	return string(out), err
}

// FetchFrom gets url with curl from inside the peer namespace, from
// address src, which it gives the peer's loopback first: an address
// outside the subnet, whose answers need a route back.
func (l LAN) FetchFrom(src netip.Addr, url string) (string, error) {
	if out, err := exec.Command("ip", "-n", l.Peer, "addr", "replace", netip.PrefixFrom(src, src.BitLen()).String(), "dev", "lo").CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v: %s", err, out)
	}
	_ = exec.Command("ip", "-n", l.Peer, "link", "set", "dev", "lo", "up").Run()
	out, err := exec.Command("ip", "netns", "exec", l.Peer, "curl", "-sS", "--max-time", "3", "--interface", src.String(), url).CombinedOutput()
	return string(out), err
}

// Eventually retries f until it succeeds, failing t with f's last error
// once within has passed.
func Eventually(t testing.TB, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// MachineKernel is the kernel virtual machines boot in tests:
// $GRID4_MACHINE_KERNEL, else where scripts/machine-kernel.sh unpacks it.
func MachineKernel() string {
	if k := os.Getenv("GRID4_MACHINE_KERNEL"); k != "" {
		return k
	}
	return "/var/cache/grid4/kernel/current"
}

// GuestInit builds the guest init (cmd/g4init) into a temporary
// directory of t and returns its path.
func GuestInit(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "g4init")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/grid4/grid4/cmd/g4init").CombinedOutput(); err != nil {
		t.Fatalf("building g4init: %v\n%s", err, out)
	}
	return bin
}
