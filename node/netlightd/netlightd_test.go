package netlightd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"

	"github.com/grid4/grid4/node/internal/iproute"
)

func needNetAdmin(t *testing.T) {
	t.Helper()
	if err := (iproute.IP{}).Check(); err != nil {
		t.Skipf("cannot create networks here: %v", err)
	}
}

func sh(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// forwarding turns the host's IPv4 forwarding on for the test.
func forwarding(t *testing.T) {
	t.Helper()
	old, err := os.ReadFile(ipForward)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.WriteFile(ipForward, old, 0o644) })
}

// newService returns a salted service whose table is removed at the end;
// each edit changes its configuration first.
func newService(t *testing.T, edits ...func(*Config)) (*Service, string) {
	t.Helper()
	needNetAdmin(t)
	salt := fmt.Sprintf("t%x", rand.Uint64())
	c := Config{Dir: t.TempDir(), Salt: salt}
	for _, e := range edits {
		e(&c)
	}
	s, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer s.Close()
		st, _ := s.load()
		for id := range st.Networks {
			_ = s.RemoveNetwork(context.Background(), id)
		}
		if c, err := nftables.New(); err == nil {
			c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.c.Table})
			_ = c.Flush()
		}
	})
	return s, salt
}

// attach makes a namespace with eth0 at addr, its host end of the veth
// on bridge (or, with no bridge, given hostAddr), default route via gw.
func attach(t *testing.T, prefix, bridge, addr, hostAddr, gw string) string {
	t.Helper()
	id := iproute.ShortID(fmt.Sprint(rand.Uint64()))
	ns, veth := prefix+"-"+id, prefix+id
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "link", "del", "dev", veth).Run()
		_ = exec.Command("ip", "netns", "del", ns).Run()
	})
	sh(t, "ip", "link", "add", "name", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	if bridge != "" {
		sh(t, "ip", "link", "set", "dev", veth, "master", bridge)
	} else {
		sh(t, "ip", "addr", "add", hostAddr, "dev", veth)
	}
	sh(t, "ip", "link", "set", "dev", veth, "up")
	sh(t, "ip", "-n", ns, "addr", "add", addr, "dev", "eth0")
	sh(t, "ip", "-n", ns, "link", "set", "dev", "eth0", "up")
	sh(t, "ip", "-n", ns, "link", "set", "dev", "lo", "up")
	if gw != "" {
		sh(t, "ip", "-n", ns, "route", "add", "default", "via", gw)
	}
	return ns
}

// outside is a namespace standing for the world: 198.18.X.2/30, the host
// at 198.18.X.1.
func outside(t *testing.T) (ns string, host, far netip.Addr) {
	x := byte(rand.IntN(250) + 1)
	y := byte(rand.IntN(60)) * 4
	host = netip.AddrFrom4([4]byte{198, 18, x, y + 1})
	far = host.Next()
	return attach(t, "g4o", "", far.String()+"/30", host.String()+"/30", ""), host, far
}

// serve accepts connections on addr inside ns (the host's with "") and
// answers each with the address it came from.
func serve(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	listen := func() (err error) { ln, err = net.Listen("tcp", addr); return err }
	if ns == "" {
		if err := listen(); err != nil {
			t.Fatal(err)
		}
	} else if err := inNamespace(ns, listen); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// reach connects from ns to addr, trying for a few seconds (a loaded
// machine may drop the first SYN while the rules settle), and returns the
// line the server sent. What must not connect is checked with dial.
func reach(ns, addr string) (string, error) {
	var line string
	var err error
	for range 5 {
		if line, err = dial(ns, addr); err == nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	return line, err
}

// dial connects from ns to addr once and returns the line the server
// sent.
func dial(ns, addr string) (string, error) {
	var line string
	err := inNamespace(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		line, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	return strings.TrimSpace(line), err
}

func TestEgressLeavesWithTheHostAddress(t *testing.T) {
	forwarding(t)
	s, _ := newService(t)
	ctx := context.Background()
	out, host, far := outside(t)
	serve(t, out, far.String()+":7000")

	nw, err := s.EnsureNetwork(ctx, NetworkSpec{ID: "1-1-net", Subnet: netip.MustParsePrefix("10.91.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	if nw.Gateway != "10.91.0.1/24" || nw.Namespace != NamesOf(s.c.Salt, "1-1-net").Namespace {
		t.Fatalf("network %+v", nw)
	}
	w := attach(t, "g4w", nw.Bridge, "10.91.0.5/24", "", "10.91.0.1")
	got, err := reach(w, far.String()+":7000")
	if err != nil {
		t.Fatalf("workload -> outside: %v", err)
	}
	if got != host.String() {
		t.Fatalf("the outside saw %s, want the host's %s", got, host)
	}
	// Idempotent, and the same transit.
	again, err := s.EnsureNetwork(ctx, NetworkSpec{ID: "1-1-net", Subnet: netip.MustParsePrefix("10.91.0.0/24")})
	if err != nil || again.TransitAddress != nw.TransitAddress {
		t.Fatalf("again: %+v %v", again, err)
	}
	if got, err := reach(w, far.String()+":7000"); err != nil || got != host.String() {
		t.Fatalf("after a second ensure: %q %v", got, err)
	}
}

func TestPortForwardReachesTheWorkload(t *testing.T) {
	forwarding(t)
	s, _ := newService(t)
	ctx := context.Background()
	out, host, far := outside(t)
	port := uint16(20000 + rand.IntN(20000))
	nw, err := s.EnsureNetwork(ctx, NetworkSpec{ID: "1-2-net", Subnet: netip.MustParsePrefix("10.92.0.0/24"), Forwards: []Forward{
		{Protocol: "tcp", HostPort: port, IP: netip.MustParseAddr("10.92.0.7"), Port: 8080},
	}})
	if err != nil {
		t.Fatal(err)
	}
	w := attach(t, "g4w", nw.Bridge, "10.92.0.7/24", "", "10.92.0.1")
	serve(t, w, "10.92.0.7:8080")
	got, err := reach(out, fmt.Sprintf("%s:%d", host, port))
	if err != nil {
		t.Fatalf("outside -> host port %d: %v", port, err)
	}
	if got != far.String() {
		t.Fatalf("the workload saw %s, want the client's %s", got, far)
	}
	// Another network cannot take the port.
	_, err = s.EnsureNetwork(ctx, NetworkSpec{ID: "1-3-net", Subnet: netip.MustParsePrefix("10.92.0.0/24"), Forwards: []Forward{
		{Protocol: "tcp", HostPort: port, IP: netip.MustParseAddr("10.92.0.8"), Port: 80},
	}})
	if !errors.Is(err, ErrPortTaken) {
		t.Fatalf("second forward of port %d: %v", port, err)
	}
}

func TestNetworksCannotReachEachOtherNorTheHost(t *testing.T) {
	forwarding(t)
	s, _ := newService(t)
	ctx := context.Background()
	out, host, far := outside(t)
	serve(t, out, far.String()+":7000")
	port := uint16(20000 + rand.IntN(20000))
	// The same subnet twice: deployments do not coordinate theirs.
	a, err := s.EnsureNetwork(ctx, NetworkSpec{ID: "1-4-a", Subnet: netip.MustParsePrefix("10.93.0.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.EnsureNetwork(ctx, NetworkSpec{ID: "1-4-b", Subnet: netip.MustParsePrefix("10.93.0.0/24"), Forwards: []Forward{
		{Protocol: "tcp", HostPort: port, IP: netip.MustParseAddr("10.93.0.9"), Port: 8080},
	}})
	if err != nil {
		t.Fatal(err)
	}
	wa := attach(t, "g4w", a.Bridge, "10.93.0.5/24", "", "10.93.0.1")
	wb := attach(t, "g4w", b.Bridge, "10.93.0.9/24", "", "10.93.0.1")
	serve(t, wb, "10.93.0.9:8080")
	// A host service, on the host end of a's own transit link.
	serve(t, "", a.TransitGateway+":7001")

	// What works: both reach the outside, the outside reaches b.
	for _, w := range []string{wa, wb} {
		if got, err := reach(w, far.String()+":7000"); err != nil || got != host.String() {
			t.Fatalf("%s -> outside: %q %v", w, got, err)
		}
	}
	if _, err := reach(out, fmt.Sprintf("%s:%d", host, port)); err != nil {
		t.Fatalf("outside -> b's forward: %v", err)
	}
	// What does not.
	bT := strings.Split(b.TransitAddress, "/")[0]
	for what, addr := range map[string]string{
		"b's forward through the host's address": fmt.Sprintf("%s:%d", host, port),
		"b's transit address":                    fmt.Sprintf("%s:%d", bT, port),
		"a host service":                         a.TransitGateway + ":7001",
	} {
		if got, err := dial(wa, addr); err == nil {
			t.Errorf("a reached %s (%s): %q", what, addr, got)
		}
	}
}

// hostRules returns the rules of the host table tagged for network id.
func hostRules(t *testing.T, s *Service, id string) int {
	t.Helper()
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	tbl := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.c.Table}
	n := 0
	for _, ch := range []string{chainInput, chainForward, chainPrerouting, chainOutput, chainPostrouting} {
		rules, err := c.GetRules(tbl, &nftables.Chain{Name: ch, Table: tbl})
		if err != nil {
			t.Fatalf("rules of %s: %v", ch, err)
		}
		for _, r := range rules {
			if bytes.Equal(r.UserData, Tag(id)) {
				n++
			}
		}
	}
	return n
}

func TestRemoveNetworkRemovesEveryRule(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	spec := func(id string, port uint16) NetworkSpec {
		return NetworkSpec{ID: id, Subnet: netip.MustParsePrefix("10.94.0.0/24"), Forwards: []Forward{
			{Protocol: "udp", HostPort: port, IP: netip.MustParseAddr("10.94.0.2"), Port: 53},
		}}
	}
	port := uint16(20000 + rand.IntN(20000))
	if _, err := s.EnsureNetwork(ctx, spec("1-5-keep", port)); err != nil {
		t.Fatal(err)
	}
	gone, err := s.EnsureNetwork(ctx, spec("1-5-gone", port+1))
	if err != nil {
		t.Fatal(err)
	}
	// input 2, forward 2, postrouting 1, prerouting 1, output 1.
	if n := hostRules(t, s, "1-5-gone"); n != 7 {
		t.Fatalf("%d rules for the network, want 7", n)
	}
	for range 2 {
		if err := s.RemoveNetwork(ctx, "1-5-gone"); err != nil {
			t.Fatal(err)
		}
	}
	if n := hostRules(t, s, "1-5-gone"); n != 0 {
		t.Fatalf("%d rules left", n)
	}
	if n := hostRules(t, s, "1-5-keep"); n != 7 {
		t.Fatalf("the other network has %d rules, want 7", n)
	}
	defer func() {
		// The last network takes the table with it.
		if err := s.RemoveNetwork(ctx, "1-5-keep"); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveNetwork(ctx, "1-5-new"); err != nil {
			t.Fatal(err)
		}
		c, _ := nftables.New()
		if _, err := c.ListTableOfFamily(s.c.Table, nftables.TableFamilyIPv4); err == nil {
			t.Fatal("table left with no network")
		}
	}()
	for _, l := range []string{gone.Bridge, gone.Veth, gone.Transit} {
		if iproute.LinkExists(l) {
			t.Errorf("%s left", l)
		}
	}
	if iproute.NetnsExists(gone.Namespace) {
		t.Error("namespace left")
	}
	// The port is free again.
	if _, err := s.EnsureNetwork(ctx, spec("1-5-new", port+1)); err != nil {
		t.Fatalf("reusing the port: %v", err)
	}
}

func TestRestoreAfterReboot(t *testing.T) {
	forwarding(t)
	s, _ := newService(t)
	ctx := context.Background()
	out, host, far := outside(t)
	serve(t, out, far.String()+":7000")
	port := uint16(20000 + rand.IntN(20000))
	spec := NetworkSpec{ID: "1-6-net", Subnet: netip.MustParsePrefix("10.95.0.0/24"), Forwards: []Forward{
		{Protocol: "tcp", HostPort: port, IP: netip.MustParseAddr("10.95.0.5"), Port: 8080},
	}}
	nw, err := s.EnsureNetwork(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	// What a reboot loses: the namespace (its links and rules with it)
	// and the host's table.
	sh(t, "ip", "netns", "del", nw.Namespace)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	c.FlushTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.c.Table})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	// A new service on the same state, as after a restart.
	s2, err := New(s.c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); err != nil {
		t.Fatal(err)
	}
	if n := hostRules(t, s2, spec.ID); n != 7 {
		t.Fatalf("after Start: %d host rules, want 7", n)
	}
	back, err := s2.EnsureNetwork(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if back.TransitAddress != nw.TransitAddress {
		t.Fatalf("transit moved: %s -> %s", nw.TransitAddress, back.TransitAddress)
	}
	w := attach(t, "g4w", back.Bridge, "10.95.0.5/24", "", "10.95.0.1")
	serve(t, w, "10.95.0.5:8080")
	if got, err := reach(w, far.String()+":7000"); err != nil || got != host.String() {
		t.Fatalf("egress after restore: %q %v", got, err)
	}
	if got, err := reach(out, fmt.Sprintf("%s:%d", host, port)); err != nil || got != far.String() {
		t.Fatalf("forward after restore: %q %v", got, err)
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir(), Salt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sub := netip.MustParsePrefix("10.96.0.0/24")
	for name, spec := range map[string]NetworkSpec{
		"no id":        {Subnet: sub},
		"ipv6":         {ID: "a", Subnet: netip.MustParsePrefix("fd00::/64")},
		"protocol":     {ID: "a", Subnet: sub, Forwards: []Forward{{Protocol: "sctp", HostPort: 1, IP: netip.MustParseAddr("10.96.0.2"), Port: 1}}},
		"port 0":       {ID: "a", Subnet: sub, Forwards: []Forward{{Protocol: "tcp", HostPort: 0, IP: netip.MustParseAddr("10.96.0.2"), Port: 1}}},
		"outside":      {ID: "a", Subnet: sub, Forwards: []Forward{{Protocol: "tcp", HostPort: 1, IP: netip.MustParseAddr("10.97.0.2"), Port: 1}}},
		"the gateway":  {ID: "a", Subnet: sub, Forwards: []Forward{{Protocol: "tcp", HostPort: 1, IP: netip.MustParseAddr("10.96.0.1"), Port: 1}}},
		"twice a port": {ID: "a", Subnet: sub, Forwards: []Forward{{Protocol: "tcp", HostPort: 1, IP: netip.MustParseAddr("10.96.0.2"), Port: 1}, {Protocol: "tcp", HostPort: 1, IP: netip.MustParseAddr("10.96.0.3"), Port: 2}}},
	} {
		if _, err := s.EnsureNetwork(ctx, spec); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := s.EnsurePublicIP(ctx, PublicIPSpec{ID: "a"}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("public IP without a pool: %v", err)
	}
	if _, err := s.AttachPublicIP(ctx, HolderSpec{ID: "a", Holder: "m"}); !errors.Is(err, ErrNotConfigured) {
		t.Errorf("attaching without a pool: %v", err)
	}
	pool := Config{Dir: t.TempDir(), Salt: "x", PublicInterface: "g4nosuchif", PublicPool: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/24")}, PublicGateway: netip.MustParseAddr("198.51.100.1")}
	withPool, err := New(pool)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := withPool.AttachPublicIP(ctx, HolderSpec{ID: "never-given", Holder: "m"}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "no public address given to never-given") {
		t.Errorf("attaching an address never given out: %v", err)
	}
	if _, err := withPool.AttachPublicIP(ctx, HolderSpec{ID: "never-given"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("attaching for no machine: %v", err)
	}
	if err := withPool.DetachPublicIP(ctx, HolderSpec{ID: "never-given", Holder: "m"}); err != nil {
		t.Errorf("detaching what is not attached: %v", err)
	}
	if _, err := os.Stat(withPool.stateFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused attach wrote state: %v", err)
	}
	if _, err := os.Stat(s.stateFile()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused requests wrote state: %v", err)
	}
}
