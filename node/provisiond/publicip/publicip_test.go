package publicip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
)

func task(name, ip string) provisiond.Task {
	data, _ := json.Marshal(gridtypes.PublicIPv4Data{IP: ip})
	return provisiond.Task{TwinID: 5, DeploymentID: rand.Uint64N(1 << 40), Workload: gridtypes.Workload{Name: name, Type: gridtypes.PublicIPv4Type, Data: data}}
}

// newManager returns a manager on an in-process netlightd configured by c
// (a directory and a salt of its own added).
func newManager(t *testing.T, c netlightd.Config) (*Manager, string) {
	m, _, salt := newManagerService(t, c)
	return m, salt
}

// newManagerService is newManager, with the netlightd it calls.
func newManagerService(t *testing.T, c netlightd.Config) (*Manager, *netlightd.Service, string) {
	t.Helper()
	c.Dir, c.Salt = t.TempDir(), fmt.Sprintf("t%x", rand.Uint64())
	svc, err := netlightd.New(c)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(svc)
	if err != nil {
		t.Fatal(err)
	}
	return m, svc, c.Salt
}

func TestNotConfigured(t *testing.T) {
	m, _ := newManager(t, netlightd.Config{})
	_, err := m.Provision(context.Background(), task("ip", ""))
	want := "public-ipv4: netlightd: this node has no public IPv4 network configured (no public interface and address pool)"
	if !errors.Is(err, ErrNotConfigured) || err.Error() != want {
		t.Fatalf("error %v", err)
	}
}

func TestMissingParent(t *testing.T) {
	if (iproute.IP{}).Check() != nil {
		t.Skip("no iproute2 or CAP_NET_ADMIN")
	}
	m, _ := newManager(t, netlightd.Config{PublicInterface: "g4nosuchif", PublicPool: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24")}, PublicGateway: netip.MustParseAddr("198.51.100.1")})
	_, err := m.Provision(context.Background(), task("ip", ""))
	if err == nil || err.Error() != "public-ipv4: netlightd: public interface g4nosuchif not found" {
		t.Fatalf("error %v", err)
	}
}

// vethParent makes a veth pair and returns one end, up and without an
// address: a "public" interface whose macvlans send nothing off the host.
func vethParent(t *testing.T) string {
	t.Helper()
	if err := (iproute.IP{}).Check(); err != nil {
		t.Skipf("cannot create networks here: %v", err)
	}
	id := iproute.ShortID(fmt.Sprint(t.Name(), rand.Uint64()))
	parent, peer := "g4tp"+id, "g4tq"+id
	if out, err := exec.Command("ip", "link", "add", "name", parent, "type", "veth", "peer", "name", peer).CombinedOutput(); err != nil {
		t.Skipf("no veth: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", "dev", parent).Run() })
	exec.Command("ip", "link", "set", "dev", parent, "up").Run()
	return parent
}

// TestAddressOnMacvlan uses one end of a veth pair with no address as the
// "public" interface: the macvlans live on it and nothing leaves the host.
func TestAddressOnMacvlan(t *testing.T) {
	parent := vethParent(t)

	m, salt := newManager(t, netlightd.Config{PublicInterface: parent, PublicGateway: netip.MustParseAddr("198.51.100.1"),
		PublicPool: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24"), netip.MustParsePrefix("198.51.100.11/24")}})
	ctx := context.Background()
	a, b, c := task("a", "198.51.100.11"), task("b", ""), task("c", "")
	for _, tk := range []provisiond.Task{a, b, c} {
		t.Cleanup(func() { _ = m.Deprovision(ctx, tk) })
	}
	ra, err := m.Provision(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if ra.(Result).IP != "198.51.100.11/24" {
		t.Fatalf("a got %+v", ra)
	}
	rb, err := m.Provision(ctx, b)
	if err != nil || rb.(Result).IP != "198.51.100.10/24" {
		t.Fatalf("b got %+v %v", rb, err)
	}
	if _, err := m.Provision(ctx, c); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("c: %v", err)
	}
	// Idempotent: same address again.
	if again, err := m.Provision(ctx, a); err != nil || again.(Result).IP != "198.51.100.11/24" {
		t.Fatalf("again %+v %v", again, err)
	}
	ns := ra.(Result).Namespace
	out, _ := exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", Link).CombinedOutput()
	if !strings.Contains(string(out), "198.51.100.11/24") {
		t.Fatalf("address not set: %s", out)
	}
	mac := func() string {
		out, _ := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", Link).CombinedOutput()
		return string(out)
	}
	before := mac()
	// A reboot loses the namespace; Restore brings it back, same address
	// on the same MAC (the router's ARP entry stays right).
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if err := m.Restore(ctx, a); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("ip", "-n", ns, "-o", "addr", "show", "dev", Link).CombinedOutput()
	if !strings.Contains(string(out), "198.51.100.11/24") {
		t.Fatalf("address not back after restore: %s", out)
	}
	if after := mac(); !strings.Contains(after, "link/ether "+netlightd.PublicMAC(salt, a.ID())) || !strings.Contains(before, "link/ether "+netlightd.PublicMAC(salt, a.ID())) {
		t.Fatalf("MAC before %s\nafter %s\nwant %s", before, after, netlightd.PublicMAC(salt, a.ID()))
	}
	out, _ = exec.Command("ip", "-n", ns, "route", "show", "default").CombinedOutput()
	if !strings.Contains(string(out), "via 198.51.100.1 dev public") {
		t.Fatalf("route: %s", out)
	}
	// Freed addresses are given again.
	if err := m.Deprovision(ctx, a); err != nil {
		t.Fatal(err)
	}
	if iproute.NetnsExists(ns) {
		t.Fatal("namespace left")
	}
	if rc, err := m.Provision(ctx, c); err != nil || rc.(Result).IP != "198.51.100.11/24" {
		t.Fatalf("c after a left: %+v %v", rc, err)
	}
}

// TestHandOver: an address handed to a machine is that machine's alone;
// removed while the machine holds it, it is not given to anyone else
// until the machine lets it go; a machine that does not hold it cannot
// take it back.
func TestHandOver(t *testing.T) {
	parent := vethParent(t)
	m, svc, salt := newManagerService(t, netlightd.Config{PublicInterface: parent, PublicGateway: netip.MustParseAddr("198.51.100.1"),
		PublicPool: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24"), netip.MustParsePrefix("198.51.100.11/24")}})
	ctx := context.Background()
	a, b, c := task("a", "198.51.100.10"), task("b", ""), task("c", "")
	for _, tk := range []provisiond.Task{a, b, c} {
		t.Cleanup(func() { _ = m.Deprovision(ctx, tk) })
	}
	if _, err := m.Provision(ctx, a); err != nil {
		t.Fatal(err)
	}
	ns := netlightd.PublicNamespaceOf(salt, a.ID())
	got, err := svc.AttachPublicIP(ctx, netlightd.HolderSpec{ID: a.ID(), Holder: "vm1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.IP.String() != "198.51.100.10/24" || got.Parent != parent || got.MAC != netlightd.PublicMAC(salt, a.ID()) || got.Gateway.String() != "198.51.100.1" {
		t.Errorf("attachment %+v", got)
	}
	if iproute.NetnsExists(ns) {
		t.Error("namespace kept while a machine holds the address")
	}
	if _, err := svc.AttachPublicIP(ctx, netlightd.HolderSpec{ID: a.ID(), Holder: "vm2"}); !errors.Is(err, netlightd.ErrInvalid) || !strings.Contains(err.Error(), "held by machine vm1") {
		t.Errorf("a second machine: %v", err)
	}
	if err := m.Restore(ctx, a); err != nil || iproute.NetnsExists(ns) {
		t.Errorf("restore while held: %v, namespace made: %v", err, iproute.NetnsExists(ns))
	}
	// Removed while held: not given to b.
	if err := m.Deprovision(ctx, a); err != nil {
		t.Fatal(err)
	}
	if rb, err := m.Provision(ctx, b); err != nil || rb.(Result).IP != "198.51.100.11/24" {
		t.Fatalf("b: %+v %v", rb, err)
	}
	if _, err := m.Provision(ctx, c); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("c got the address a machine still holds: %v", err)
	}
	// Only its holder gives it back; then it is free, and no namespace is
	// made for a removed workload.
	if err := svc.DetachPublicIP(ctx, netlightd.HolderSpec{ID: a.ID(), Holder: "vm2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Provision(ctx, c); !errors.Is(err, ErrPoolExhausted) {
		t.Fatalf("freed by a machine that did not hold it: %v", err)
	}
	if err := svc.DetachPublicIP(ctx, netlightd.HolderSpec{ID: a.ID(), Holder: "vm1"}); err != nil {
		t.Fatal(err)
	}
	if iproute.NetnsExists(ns) {
		t.Error("namespace made for a removed address")
	}
	if rc, err := m.Provision(ctx, c); err != nil || rc.(Result).IP != "198.51.100.10/24" {
		t.Fatalf("c after the machine let go: %+v %v", rc, err)
	}
}
