package netlightd

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
)

// A network-light network spread over several nodes is one private
// network: each node's part (its own subnet of the network's range) is
// joined to the others' by WireGuard. The WireGuard interface wg0 lives
// in the network's namespace, next to lan0, and the namespace routes the
// rest of the range through it; what crosses is never translated, so
// machines see each other's private addresses. The encrypted side is a
// UDP port of the node's own (host) namespace, one per network: the
// port other nodes send to.
//
// The WireGuard implementation is wireguard-go, in netlightd's process:
// kernels such as this machine's have no WireGuard module. Its TUN
// device goes away with the process; Start (a restarted netlightd) and
// EnsureMesh (provisiond's restore after a reboot) bring it back from
// the recorded key, port and peers.

// WireGuard is the name of a network's WireGuard interface, in its
// namespace.
const WireGuard = "wg0"

// meshMTU leaves room for WireGuard's 80 bytes of overhead under a
// 1500-byte path.
const meshMTU = 1420

// keepalive keeps NAT mappings on the way between nodes open (seconds).
const keepalive = 25

// DefaultMeshPorts are the host UDP ports networks' WireGuard interfaces
// listen on, one per network.
var DefaultMeshPorts = PortRange{First: 51820, Last: 52819}

// PortRange is an inclusive range of ports; as a flag, "FIRST-LAST".
type PortRange struct{ First, Last uint16 }

// String implements flag.Value.
func (r *PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Set implements flag.Value: "FIRST-LAST" (or one port), 1 to 65535.
func (r *PortRange) Set(s string) error {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	first, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	last, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if err1 != nil || err2 != nil || first == 0 || first > last {
		return fmt.Errorf("%q is not a port range FIRST-LAST of 1 to 65535", s)
	}
	r.First, r.Last = uint16(first), uint16(last)
	return nil
}

// MeshSpec is a network's part in a private network across nodes.
type MeshSpec struct {
	// ID is the network's workload ID (EnsureNetwork made it first).
	ID string `json:"id"`
	// Range is the whole network's range: this node's subnet and every
	// peer's are inside it, and the namespace routes it through wg0.
	Range netip.Prefix `json:"range"`
	// Peers are the other nodes' parts (SetPeers replaces them).
	Peers []Peer `json:"peers"`
}

// Peer is another node's part of the network.
type Peer struct {
	// Node is the node it is on (kept for the caller; netlightd does not
	// use it).
	Node uint64 `json:"node,omitempty"`
	// PublicKey is its WireGuard key (standard base64 of 32 bytes).
	PublicKey string `json:"public_key"`
	// Endpoint is where it listens (the node's address and port).
	Endpoint netip.AddrPort `json:"endpoint"`
	// Subnet is its part of the range: what it is sent.
	Subnet netip.Prefix `json:"subnet"`
}

// Mesh is this node's part as made.
type Mesh struct {
	// PublicKey is this part's WireGuard key (standard base64): what the
	// other nodes configure as a peer.
	PublicKey string `json:"public_key"`
	// Port is the host UDP port it listens on.
	Port uint16 `json:"port"`
	// Range and Subnet are the network's range and this node's part.
	Range  netip.Prefix `json:"range"`
	Subnet netip.Prefix `json:"subnet"`
	// Peers are the configured peers with what WireGuard knows of them.
	Peers []PeerState `json:"peers"`
}

// PeerState is a configured peer and its traffic.
type PeerState struct {
	Peer
	// LastHandshake is the last completed handshake (zero: none yet).
	LastHandshake time.Time `json:"last_handshake,omitzero"`
	// RxBytes and TxBytes count what went through the tunnel.
	RxBytes uint64 `json:"rx_bytes"`
	TxBytes uint64 `json:"tx_bytes"`
}

// meshState is what is kept of a network's mesh.
type meshState struct {
	Range netip.Prefix `json:"range"`
	// PrivateKey is the WireGuard private key (base64); state.json is
	// readable by root only.
	PrivateKey string `json:"private_key"`
	Port       uint16 `json:"port"`
	Peers      []Peer `json:"peers,omitempty"`
}

// check validates spec against the network's own subnet.
func (spec MeshSpec) check(own netip.Prefix) error {
	r := spec.Range
	if !r.IsValid() || !r.Addr().Is4() || r.Masked() != r {
		return fmt.Errorf("%w: mesh range %s is not an IPv4 prefix with its host bits zero", ErrInvalid, r)
	}
	if !contains(r, own) {
		return fmt.Errorf("%w: the network's subnet %s is not inside the range %s", ErrInvalid, own, r)
	}
	seen := []netip.Prefix{own}
	keys := map[string]bool{}
	for _, p := range spec.Peers {
		if _, err := DecodeKey(p.PublicKey); err != nil {
			return fmt.Errorf("%w: peer %s: %w", ErrInvalid, p.Subnet, err)
		}
		if keys[p.PublicKey] {
			return fmt.Errorf("%w: peer key %s given twice", ErrInvalid, p.PublicKey)
		}
		keys[p.PublicKey] = true
		if !p.Endpoint.IsValid() || p.Endpoint.Port() == 0 {
			return fmt.Errorf("%w: peer %s: endpoint %s is not address:port", ErrInvalid, p.Subnet, p.Endpoint)
		}
		if !p.Subnet.IsValid() || p.Subnet.Masked() != p.Subnet || !contains(r, p.Subnet) {
			return fmt.Errorf("%w: peer subnet %s is not a subnet of the range %s", ErrInvalid, p.Subnet, r)
		}
		for _, s := range seen {
			if s.Overlaps(p.Subnet) {
				return fmt.Errorf("%w: peer subnet %s overlaps %s", ErrInvalid, p.Subnet, s)
			}
		}
		seen = append(seen, p.Subnet)
	}
	return nil
}

// contains reports whether prefix outer holds all of inner.
func contains(outer, inner netip.Prefix) bool {
	return inner.IsValid() && outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// decodeKey parses a WireGuard key (base64 of 32 bytes).
func DecodeKey(k string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(k)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("key %q is not base64 of 32 bytes", k)
	}
	return b, nil
}

// EnsureMesh joins the network (EnsureNetwork made it) to its parts on
// other nodes: it gives the network a WireGuard key and port the first
// time, brings its interface up if it is not, routes the range through
// it and sets the peers. It runs again after a restart or a reboot.
func (s *Service) EnsureMesh(ctx context.Context, spec MeshSpec) (Mesh, error) {
	if err := s.ip.Check(); err != nil {
		return Mesh{}, fmt.Errorf("netlightd: cannot manage networks on this node: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load()
	if err != nil {
		return Mesh{}, err
	}
	nw, ok := st.Networks[spec.ID]
	if !ok {
		return Mesh{}, fmt.Errorf("%w: no network %s on this node", ErrInvalid, spec.ID)
	}
	if err := spec.check(nw.Subnet); err != nil {
		return Mesh{}, err
	}
	if nw.Mesh == nil {
		key, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return Mesh{}, fmt.Errorf("netlightd: %w", err)
		}
		port, err := st.freeMeshPort(s.c.MeshPorts)
		if err != nil {
			return Mesh{}, err
		}
		nw.Mesh = &meshState{PrivateKey: base64.StdEncoding.EncodeToString(key.Bytes()), Port: port}
	}
	nw.Mesh.Range, nw.Mesh.Peers = spec.Range, slices.Clone(spec.Peers)
	st.Networks[spec.ID] = nw
	if err := s.save(st); err != nil {
		return Mesh{}, err
	}
	if err := s.bringUpMesh(ctx, spec.ID, nw); err != nil {
		return Mesh{}, err
	}
	return s.meshOf(spec.ID, nw)
}

// MeshOf returns the network's mesh as it stands (ErrInvalid when the
// network has none).
func (s *Service) MeshOf(ctx context.Context, id string) (Mesh, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load()
	if err != nil {
		return Mesh{}, err
	}
	nw, ok := st.Networks[id]
	if !ok || nw.Mesh == nil {
		return Mesh{}, fmt.Errorf("%w: network %s has no mesh on this node", ErrInvalid, id)
	}
	return s.meshOf(id, nw)
}

// RemoveMesh takes the network out of its mesh (its interface, routes,
// key and peers); the network stays. Removing an absent mesh succeeds.
func (s *Service) RemoveMesh(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeMesh(id)
	st, err := s.load()
	if err != nil {
		return err
	}
	nw, ok := st.Networks[id]
	if !ok || nw.Mesh == nil {
		return nil
	}
	nw.Mesh = nil
	st.Networks[id] = nw
	return s.save(st)
}

// freeMeshPort returns the lowest port of r no network's mesh uses.
func (st state) freeMeshPort(r PortRange) (uint16, error) {
	used := map[uint16]bool{}
	for _, nw := range st.Networks {
		if nw.Mesh != nil {
			used[nw.Mesh.Port] = true
		}
	}
	for p := int(r.First); p <= int(r.Last); p++ {
		if !used[uint16(p)] {
			return uint16(p), nil
		}
	}
	return 0, fmt.Errorf("netlightd: no free mesh port in %d-%d", r.First, r.Last)
}

// meshDevice is a running WireGuard interface.
type meshDevice struct {
	dev *device.Device
	tun tun.Device
}

// bringUpMesh makes wg0 in the namespace if this process has not, and
// (re)applies the key, port, routes and peers.
func (s *Service) bringUpMesh(ctx context.Context, id string, nw networkState) error {
	n := NamesOf(s.c.Salt, id)
	m := nw.Mesh
	md, ok := s.meshes[id]
	if ok && !s.ip.LinkExistsIn(ctx, n.Namespace, WireGuard) {
		// The namespace was made again under a running device (its TUN
		// went with the old one): start over.
		s.closeMesh(id)
		ok = false
	}
	if !ok {
		var err error
		if md, err = s.startDevice(id, n.Namespace); err != nil {
			return err
		}
	}
	priv, err := DecodeKey(m.PrivateKey)
	if err != nil {
		return fmt.Errorf("netlightd: %s: private key: %w", id, err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "private_key=%s\nlisten_port=%d\nreplace_peers=true\n", hex.EncodeToString(priv), m.Port)
	for _, p := range m.Peers {
		pub, _ := DecodeKey(p.PublicKey) // checked by MeshSpec.check
		fmt.Fprintf(&conf, "public_key=%s\nendpoint=%s\npersistent_keepalive_interval=%d\nreplace_allowed_ips=true\nallowed_ip=%s\n",
			hex.EncodeToString(pub), p.Endpoint, keepalive, p.Subnet)
	}
	if err := md.dev.IpcSet(conf.String()); err != nil {
		return fmt.Errorf("netlightd: %s: configuring WireGuard: %w", id, err)
	}
	if err := md.dev.Up(); err != nil {
		return fmt.Errorf("netlightd: %s: WireGuard up: %w", id, err)
	}
	gw := nw.Subnet.Addr().Next()
	for _, args := range [][]string{
		{"-n", n.Namespace, "link", "set", "dev", WireGuard, "mtu", strconv.Itoa(meshMTU), "up"},
		// The namespace's own traffic to the range leaves from the
		// gateway's address, which the peers route back.
		{"-n", n.Namespace, "route", "replace", m.Range.String(), "dev", WireGuard, "src", gw.String()},
	} {
		if err := s.ip.Do(ctx, args...); err != nil {
			return fmt.Errorf("netlightd: %w", err)
		}
	}
	return nil
}

// startDevice makes the TUN device wg0 inside the namespace and a
// WireGuard device on it whose UDP sockets live in this process's (the
// host's) namespace.
func (s *Service) startDevice(id, ns string) (*meshDevice, error) {
	var t tun.Device
	if err := inNamespace(ns, func() (err error) {
		t, err = tun.CreateTUN(WireGuard, meshMTU)
		return err
	}); err != nil {
		return nil, fmt.Errorf("netlightd: %s: WireGuard interface in %s: %w", id, ns, err)
	}
	log := s.log.With("network", id)
	logger := &device.Logger{
		Verbosef: func(string, ...any) {},
		Errorf: func(f string, args ...any) {
			msg := "wireguard: " + fmt.Sprintf(f, args...)
			if strings.Contains(msg, "MTU") {
				// It asks the TUN's MTU by name in the host's namespace,
				// where wg0 is not; the MTU set at creation holds.
				log.Debug(msg)
				return
			}
			log.Warn(msg)
		},
	}
	md := &meshDevice{dev: device.NewDevice(t, conn.NewDefaultBind(), logger), tun: t}
	s.meshes[id] = md
	return md, nil
}

// closeMesh stops the network's WireGuard device (its TUN device goes
// with it), if this process runs one.
func (s *Service) closeMesh(id string) {
	if md, ok := s.meshes[id]; ok {
		md.dev.Close()
		delete(s.meshes, id)
	}
}

// Close stops every WireGuard device of the service: the meshes go down
// until a new service brings them up (Start).
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id := range s.meshes {
		s.closeMesh(id)
	}
}

// meshOf describes the network's mesh, with the device's peer figures.
func (s *Service) meshOf(id string, nw networkState) (Mesh, error) {
	m := nw.Mesh
	priv, err := DecodeKey(m.PrivateKey)
	if err != nil {
		return Mesh{}, fmt.Errorf("netlightd: %s: private key: %w", id, err)
	}
	k, err := ecdh.X25519().NewPrivateKey(priv)
	if err != nil {
		return Mesh{}, fmt.Errorf("netlightd: %s: private key: %w", id, err)
	}
	out := Mesh{PublicKey: base64.StdEncoding.EncodeToString(k.PublicKey().Bytes()), Port: m.Port, Range: m.Range, Subnet: nw.Subnet}
	var figures map[string]PeerState
	if md, ok := s.meshes[id]; ok {
		dump, err := md.dev.IpcGet()
		if err != nil {
			return Mesh{}, fmt.Errorf("netlightd: %s: reading WireGuard: %w", id, err)
		}
		figures = peerFigures(dump)
	}
	for _, p := range m.Peers {
		ps := figures[p.PublicKey]
		ps.Peer = p
		out.Peers = append(out.Peers, ps)
	}
	return out, nil
}

// peerFigures reads the handshake time and byte counts of each peer
// from WireGuard's configuration dump (key=value lines, a peer starting
// at its public_key line).
func peerFigures(dump string) map[string]PeerState {
	out := map[string]PeerState{}
	var key string
	var cur PeerState
	var sec, nsec int64
	flush := func() {
		if key != "" {
			if sec != 0 || nsec != 0 {
				cur.LastHandshake = time.Unix(sec, nsec).UTC()
			}
			out[key] = cur
		}
	}
	for line := range strings.Lines(dump) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "public_key":
			flush()
			cur, sec, nsec = PeerState{}, 0, 0
			if b, err := hex.DecodeString(v); err == nil {
				key = base64.StdEncoding.EncodeToString(b)
			}
		case "last_handshake_time_sec":
			sec, _ = strconv.ParseInt(v, 10, 64)
		case "last_handshake_time_nsec":
			nsec, _ = strconv.ParseInt(v, 10, 64)
		case "rx_bytes":
			cur.RxBytes, _ = strconv.ParseUint(v, 10, 64)
		case "tx_bytes":
			cur.TxBytes, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	flush()
	return out
}
