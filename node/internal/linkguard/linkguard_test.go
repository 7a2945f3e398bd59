package linkguard

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/nftables"

	"github.com/grid4/grid4/node/internal/hosttest"
	"github.com/grid4/grid4/node/internal/iproute"
)

// pair makes namespaces machine and router joined by a veth pair: eth0 in
// machine holds .10 of a /24 with MAC mac, eth0 in router holds .1.
func pair(t *testing.T) (machine, router string, subnet [3]byte, mac string) {
	t.Helper()
	if err := (iproute.IP{}).Check(); err != nil {
		t.Skipf("cannot make networks here: %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Fatal("/bin/busybox is not installed (package busybox-static; make test-services installs it)")
	}
	id := iproute.ShortID(fmt.Sprint(rand.Uint64()))[:8]
	machine, router = "t4gm-"+id, "t4gr-"+id
	subnet = [3]byte{10, 216, byte(rand.IntN(256))}
	mac = "02:00:00:16:00:01"
	for _, ns := range []string{machine, router} {
		hosttest.Sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	hosttest.Sh(t, "ip", "-n", machine, "link", "add", "eth0", "address", mac, "type", "veth", "peer", "name", "eth0", "netns", router)
	for ns, host := range map[string]int{machine: 10, router: 1} {
		hosttest.Sh(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("%d.%d.%d.%d/24", subnet[0], subnet[1], subnet[2], host), "dev", "eth0")
		hosttest.Sh(t, "ip", "-n", ns, "link", "set", "dev", "eth0", "up")
	}
	return machine, router, subnet, mac
}

// reaches reports whether router gets an answer to a ping of host .n.
func reaches(router string, subnet [3]byte, n int) bool {
	addr := fmt.Sprintf("%d.%d.%d.%d", subnet[0], subnet[1], subnet[2], n)
	// A fresh neighbour entry each time: a cached one would hide what
	// the guard does to ARP.
	_ = exec.Command("ip", "-n", router, "neigh", "flush", "dev", "eth0").Run()
	return exec.Command("ip", "netns", "exec", router, "/bin/busybox", "ping", "-c", "1", "-W", "2", addr).Run() == nil
}

// TestGuard: a guarded link answers as its address and MAC, and no
// longer as another address it takes, nor from another MAC; removed, the
// guard lets everything through again and leaves no chain behind.
func TestGuard(t *testing.T) {
	machine, router, subnet, mac := pair(t)
	addr := netip.AddrFrom4([4]byte{subnet[0], subnet[1], subnet[2], 10})
	if !reaches(router, subnet, 10) {
		t.Fatal("no answer before the guard")
	}
	if err := Guard(machine, "eth0", mac, addr); err != nil {
		t.Fatal(err)
	}
	if err := Guard(machine, "eth0", mac, addr); err != nil {
		t.Fatalf("guarding again: %v", err)
	}
	if !reaches(router, subnet, 10) {
		t.Fatal("the guarded address does not answer")
	}
	// The machine takes a neighbour's address: its ARP answers for it
	// are dropped.
	hosttest.Sh(t, "ip", "-n", machine, "addr", "add", fmt.Sprintf("%d.%d.%d.11/24", subnet[0], subnet[1], subnet[2]), "dev", "eth0")
	if reaches(router, subnet, 11) {
		t.Error("the machine answered as another address")
	}
	// Another MAC: nothing leaves.
	hosttest.Sh(t, "ip", "-n", machine, "link", "set", "dev", "eth0", "address", "02:00:00:16:00:02")
	if reaches(router, subnet, 10) {
		t.Error("the machine answered from another MAC")
	}
	hosttest.Sh(t, "ip", "-n", machine, "link", "set", "dev", "eth0", "address", mac)

	if err := Remove(machine, "eth0"); err != nil {
		t.Fatal(err)
	}
	if err := Remove(machine, "eth0"); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if !reaches(router, subnet, 11) {
		t.Error("no answer once the guard is removed")
	}
	out := hosttest.Sh(t, "ip", "netns", "exec", machine, "cat", "/proc/net/dev") // the namespace is still usable
	if !strings.Contains(out, "eth0") {
		t.Fatalf("namespace: %s", out)
	}
	c, done, err := connect(machine)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyNetdev)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chains {
		if ch.Table.Name == Table {
			t.Errorf("chain %s left after its guard was removed", ch.Name)
		}
	}
}

func TestRefusals(t *testing.T) {
	if err := Guard("", "eth0", "not-a-mac", netip.MustParseAddr("10.0.0.1")); err == nil || !strings.Contains(err.Error(), `MAC "not-a-mac"`) {
		t.Errorf("bad MAC: %v", err)
	}
	if err := Guard("", "eth0", "02:00:00:00:00:01", netip.MustParseAddr("fd00::1")); err == nil || !strings.Contains(err.Error(), "not an IPv4 address") {
		t.Errorf("IPv6: %v", err)
	}
	if err := Remove("t4g-no-such-namespace", "eth0"); err != nil {
		t.Errorf("removing in a namespace that is gone: %v", err)
	}
}
