package netlightd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// meshNode is one node's part of a meshed network in a test: a service
// of its own (as on another node), its network and a machine on it.
type meshNode struct {
	s       *Service
	id      string
	subnet  netip.Prefix
	machine string // the machine's namespace
	addr    netip.Addr
}

// newMeshNode makes a service listening for meshes on ports from port,
// the network id with subnet, and a machine at the subnet's .5.
func newMeshNode(t *testing.T, id string, subnet netip.Prefix, port uint16) *meshNode {
	t.Helper()
	s, _ := newService(t, func(c *Config) { c.MeshPorts = PortRange{First: port, Last: port + 9} })
	nw, err := s.EnsureNetwork(context.Background(), NetworkSpec{ID: id, Subnet: subnet})
	if err != nil {
		t.Fatal(err)
	}
	gw := subnet.Addr().Next()
	addr := gw.Next().Next().Next().Next()
	m := attach(t, "g4w", nw.Bridge, netip.PrefixFrom(addr, subnet.Bits()).String(), "", gw.String())
	serve(t, m, addr.String()+":7000")
	return &meshNode{s: s, id: id, subnet: subnet, machine: m, addr: addr}
}

// peerOf is how the other nodes configure n.
func (n *meshNode) peerOf(t *testing.T) Peer {
	t.Helper()
	m, err := n.s.MeshOf(context.Background(), n.id)
	if err != nil {
		t.Fatal(err)
	}
	return Peer{PublicKey: m.PublicKey, Endpoint: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), m.Port), Subnet: n.subnet}
}

// reaches waits until from's machine connects to to's machine and the
// latter sees from's own private address (nothing translated).
func reaches(t *testing.T, from, to *meshNode) {
	t.Helper()
	var got string
	var err error
	for range 50 {
		if got, err = dial(from.machine, to.addr.String()+":7000"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("%s -> %s: %v", from.addr, to.addr, err)
	}
	if got != from.addr.String() {
		t.Fatalf("%s saw the connection from %s, want %s", to.addr, got, from.addr)
	}
}

func TestMeshJoinsMachinesOnTwoNodes(t *testing.T) {
	ctx := context.Background()
	x := byte(rand.IntN(200) + 20)
	rng := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, 0, 0}), 16)
	sub := func(i byte) netip.Prefix { return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, x, i, 0}), 24) }
	port := uint16(40000 + rand.IntN(20000))
	a := newMeshNode(t, "7-1-net", sub(1), port)
	b := newMeshNode(t, "7-2-net", sub(2), port+10)

	// Each node first joins alone (its key and port exist before any
	// peer knows them), then learns the other.
	for _, n := range []*meshNode{a, b} {
		if _, err := n.s.EnsureMesh(ctx, MeshSpec{ID: n.id, Range: rng}); err != nil {
			t.Fatal(err)
		}
	}
	pa, pb := a.peerOf(t), b.peerOf(t)
	if pa.PublicKey == pb.PublicKey || pa.Endpoint == pb.Endpoint {
		t.Fatalf("two nodes share a key or a port: %+v %+v", pa, pb)
	}
	if _, err := a.s.EnsureMesh(ctx, MeshSpec{ID: a.id, Range: rng, Peers: []Peer{pb}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.EnsureMesh(ctx, MeshSpec{ID: b.id, Range: rng, Peers: []Peer{pa}}); err != nil {
		t.Fatal(err)
	}
	reaches(t, a, b)
	reaches(t, b, a)
	m, err := a.s.MeshOf(ctx, a.id)
	if err != nil || len(m.Peers) != 1 || m.Peers[0].LastHandshake.IsZero() || m.Peers[0].RxBytes == 0 {
		t.Fatalf("a's mesh after traffic: %+v %v", m, err)
	}
	if m.Subnet != a.subnet || m.Range != rng || m.PublicKey != pa.PublicKey {
		t.Fatalf("a's mesh: %+v", m)
	}

	// netlightd restarts on a: the same key and port come back, so b's
	// configuration still holds.
	a.s.Close()
	again, err := New(a.s.c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(again.Close)
	if err := again.Start(); err != nil {
		t.Fatal(err)
	}
	a.s = again
	if p := a.peerOf(t); p != pa {
		t.Fatalf("after a restart a is %+v, was %+v", p, pa)
	}
	reaches(t, b, a)

	// A reboot on b: its namespace goes (with the TUN device under the
	// running WireGuard); provisiond's restore ensures network and mesh
	// again, with the same key and port.
	nsB := NamesOf(b.s.c.Salt, b.id).Namespace
	sh(t, "ip", "netns", "del", nsB)
	nw, err := b.s.EnsureNetwork(ctx, NetworkSpec{ID: b.id, Subnet: b.subnet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.s.EnsureMesh(ctx, MeshSpec{ID: b.id, Range: rng, Peers: []Peer{pa}}); err != nil {
		t.Fatal(err)
	}
	if p := b.peerOf(t); p != pb {
		t.Fatalf("after a reboot b is %+v, was %+v", p, pb)
	}
	sh(t, "ip", "link", "set", "dev", "g4w"+strings.TrimPrefix(b.machine, "g4w-"), "master", nw.Bridge)
	reaches(t, a, b)

	// a leaves: b's machine no longer reaches a's, a's network stays.
	if err := a.s.RemoveMesh(ctx, a.id); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(b.machine, a.addr.String()+":7000"); err == nil {
		t.Fatal("b still reaches a after a left the mesh")
	}
	if _, err := a.s.MeshOf(ctx, a.id); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a's mesh after removal: %v", err)
	}
	if err := a.s.RemoveMesh(ctx, a.id); err != nil {
		t.Fatalf("removing it again: %v", err)
	}
}

func TestBadMeshesAreRefused(t *testing.T) {
	s, _ := newService(t, func(c *Config) { c.MeshPorts = PortRange{First: 45000, Last: 45001} })
	ctx := context.Background()
	if _, err := s.EnsureNetwork(ctx, NetworkSpec{ID: "8-1-net", Subnet: netip.MustParsePrefix("10.93.1.0/24")}); err != nil {
		t.Fatal(err)
	}
	rng := netip.MustParsePrefix("10.93.0.0/16")
	key := "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
	peer := Peer{PublicKey: key, Endpoint: netip.MustParseAddrPort("192.0.2.1:51820"), Subnet: netip.MustParsePrefix("10.93.2.0/24")}
	with := func(f func(*Peer)) []Peer { p := peer; f(&p); return []Peer{p} }
	for _, tc := range []struct {
		name string
		spec MeshSpec
		want string
	}{
		{"no network", MeshSpec{ID: "nope", Range: rng}, "no network"},
		{"range not masked", MeshSpec{ID: "8-1-net", Range: netip.MustParsePrefix("10.93.0.1/16")}, "host bits"},
		{"subnet outside the range", MeshSpec{ID: "8-1-net", Range: netip.MustParsePrefix("10.94.0.0/16")}, "not inside"},
		{"bad key", MeshSpec{ID: "8-1-net", Range: rng, Peers: with(func(p *Peer) { p.PublicKey = "abc" })}, "not base64 of 32 bytes"},
		{"no endpoint port", MeshSpec{ID: "8-1-net", Range: rng, Peers: with(func(p *Peer) { p.Endpoint = netip.AddrPortFrom(p.Endpoint.Addr(), 0) })}, "endpoint"},
		{"peer outside the range", MeshSpec{ID: "8-1-net", Range: rng, Peers: with(func(p *Peer) { p.Subnet = netip.MustParsePrefix("10.95.2.0/24") })}, "not a subnet of the range"},
		{"peer overlaps ours", MeshSpec{ID: "8-1-net", Range: rng, Peers: with(func(p *Peer) { p.Subnet = netip.MustParsePrefix("10.93.0.0/23") })}, "overlaps"},
		{"same key twice", MeshSpec{ID: "8-1-net", Range: rng, Peers: append(with(func(*Peer) {}), with(func(p *Peer) { p.Subnet = netip.MustParsePrefix("10.93.3.0/24") })...)}, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.EnsureMesh(ctx, tc.spec)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EnsureMesh: %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
	// Nothing was recorded by the refusals.
	if _, err := s.MeshOf(ctx, "8-1-net"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a refused mesh was kept: %v", err)
	}
	// Ports run out with a clear error.
	for i := range 3 {
		id := fmt.Sprintf("8-%d-net", i+2)
		if _, err := s.EnsureNetwork(ctx, NetworkSpec{ID: id, Subnet: netip.MustParsePrefix(fmt.Sprintf("10.93.%d.0/24", i+10))}); err != nil {
			t.Fatal(err)
		}
		_, err := s.EnsureMesh(ctx, MeshSpec{ID: id, Range: rng})
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && (err == nil || !strings.Contains(err.Error(), "no free mesh port")) {
			t.Fatalf("third mesh with two ports: %v", err)
		}
	}
}

func TestPeerFigures(t *testing.T) {
	dump := "private_key=aa\nlisten_port=51820\npublic_key=" + strings.Repeat("01", 32) +
		"\nendpoint=1.2.3.4:5\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\nrx_bytes=10\ntx_bytes=20\n" +
		"public_key=" + strings.Repeat("02", 32) + "\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\nrx_bytes=0\ntx_bytes=0\n"
	f := peerFigures(dump)
	if len(f) != 2 {
		t.Fatalf("%d peers: %+v", len(f), f)
	}
	var first, second PeerState
	for k, v := range f {
		if strings.HasPrefix(k, "AQEB") {
			first = v
		} else {
			second = v
		}
	}
	if first.RxBytes != 10 || first.TxBytes != 20 || !first.LastHandshake.Equal(time.Unix(1700000000, 5)) {
		t.Fatalf("first peer %+v", first)
	}
	if !second.LastHandshake.IsZero() || second.RxBytes != 0 {
		t.Fatalf("second peer %+v", second)
	}
}
