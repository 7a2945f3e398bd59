// Package netlightd is the node module that owns network-light: the
// private networks of deployments and the node's public IPv4 pool.
//
// # A network
//
//   - a namespace g4n-<id>, the network's router, holding lan0 (the
//     subnet's gateway, its first host address) and out0 (its transit
//     address);
//   - a bridge g4b<id> in the host namespace, where machines' TAP devices
//     are attached, joined to lan0 by the veth g4v<id>;
//   - a transit veth g4x<id> (host) / out0 (namespace) carrying a /30 of
//     Config.Transit: the host end is the first address, the namespace the
//     second, and the namespace's default route goes through the host.
//
// <id> is 10 hex characters derived from the workload ID and Config.Salt.
//
// # Egress and port forwards
//
// Workloads reach the outside through two address translations: the
// namespace masquerades what leaves through out0 (so overlapping subnets
// of different deployments never meet on the host), and the host
// masquerades what comes from a transit address on its way out. An
// inbound port forward (a TCP or UDP port of the host's own addresses
// sent to a workload's address and port) is the same path backwards: the
// host sends the port to the namespace's transit address, and the
// namespace to the workload.
//
// Networks cannot reach each other (the host drops what goes from one
// transit link to another, port forwards included) nor the host's own
// services (the host drops what comes in from a transit link, except
// replies). The host's rules live in one nftables table owned by
// netlightd (Config.Table), rebuilt whole, in one transaction, from the
// persisted state whenever a network changes; each namespace has a table
// of its own. Deleting a network removes its rules with it.
//
// # Restore
//
// Everything is kept in Dir/state.json: the networks with their transit
// slot and forwards, and the public addresses given out. EnsureNetwork
// and EnsurePublicIP make what is missing and check the rest, so the
// type managers' Restore calls them again after a reboot; Run rebuilds
// the host table as soon as it starts.
package netlightd

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"

	"github.com/grid4/grid4/node/internal/iproute"
)

// Names of the parts of a network and of a public address.
const (
	// NamespacePrefix starts the name of a network's namespace.
	NamespacePrefix = "g4n-"
	// BridgePrefix starts the name of a network's bridge.
	BridgePrefix = "g4b"
	// VethPrefix starts the host end of the bridge-to-router veth.
	VethPrefix = "g4v"
	// TransitPrefix starts the host end of the transit veth; the host's
	// rules match every transit link by it.
	TransitPrefix = "g4x"
	// LAN is the router's interface on the bridge, in the namespace.
	LAN = "lan0"
	// Out is the router's transit interface, in the namespace.
	Out = "out0"
	// PublicNamespacePrefix starts the namespace of a public address.
	PublicNamespacePrefix = "g4i-"
	// PublicLink is the macvlan's name in a public address's namespace.
	PublicLink = "public"
	// macvlanPrefix names the macvlan while it is made.
	macvlanPrefix = "g4m"
)

// DefaultTable is the host nftables table of a node's netlightd.
const DefaultTable = "grid4-netlight"

// DefaultTransit is where transit links take their /30s on a node.
var DefaultTransit = netip.MustParsePrefix("100.127.0.0/16")

// Sentinel errors callers branch on.
var (
	// ErrNotConfigured: the node has no public interface and pool.
	ErrNotConfigured = errors.New("this node has no public IPv4 network configured (no public interface and address pool)")
	// ErrPoolExhausted: no such free address in the public pool.
	ErrPoolExhausted = errors.New("no such free address in the node's public pool")
	// ErrTransitExhausted: every transit /30 is in use.
	ErrTransitExhausted = errors.New("no free transit range for another network")
	// ErrPortTaken: a host port is forwarded by another network already.
	ErrPortTaken = errors.New("host port already forwarded")
	// ErrInvalid wraps a request that is not acceptable.
	ErrInvalid = errors.New("invalid network request")
)

// Config configures a Service.
type Config struct {
	// Dir keeps the state (state.json). Required.
	Dir string
	// Salt is mixed into every name (links, namespaces) and, with Transit
	// unset, picks the transit range: several nodes (or tests) sharing a
	// host give each its own. A node leaves it empty.
	Salt string
	// Table is the host nftables table (DefaultTable when empty, or
	// DefaultTable-<hash of Salt> when Salt is set).
	Table string
	// Transit is where transit /30s come from (DefaultTransit, or a /24
	// of 100.64.0.0/11 chosen by Salt when Salt is set).
	Transit netip.Prefix
	// HostForwarding makes the service turn on the host's IPv4
	// forwarding, without which nothing leaves a network. A node sets
	// it; tests turn forwarding on themselves and restore it.
	HostForwarding bool
	// PublicInterface is the host interface facing the public network.
	PublicInterface string
	// PublicPool are the addresses public IPv4 workloads get, each with
	// its network's prefix length ("185.69.166.150/24").
	PublicPool []netip.Prefix
	// PublicGateway is the public network's router.
	PublicGateway netip.Addr
	// MeshPorts are the host UDP ports networks' WireGuard interfaces
	// take, one each (DefaultMeshPorts when zero). Services sharing a
	// host (tests) need ranges apart.
	MeshPorts PortRange
	// IP runs ip (nil: the host's).
	IP *iproute.IP
	// Logger receives the service's records.
	Logger *slog.Logger
}

// Service does netlightd's work; its methods are safe for concurrent use
// (one operation at a time: each is a few system calls).
type Service struct {
	c   Config
	ip  iproute.IP
	log *slog.Logger
	mu  sync.Mutex
	// meshes are the WireGuard devices this process runs, by network ID.
	meshes map[string]*meshDevice
}

// New checks c and returns a service.
func New(c Config) (*Service, error) {
	if c.Dir == "" {
		return nil, errors.New("netlightd: Config.Dir is required")
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("netlightd: %w", err)
	}
	for _, p := range c.PublicPool {
		if !p.Addr().Is4() {
			return nil, fmt.Errorf("netlightd: public address %s is not IPv4", p)
		}
	}
	if c.Table == "" {
		c.Table = DefaultTable
		if c.Salt != "" {
			c.Table += "-" + iproute.ShortID("table:"+c.Salt)
		}
	}
	if !c.Transit.IsValid() {
		c.Transit = DefaultTransit
		if c.Salt != "" {
			c.Transit = SaltedTransit(c.Salt)
		}
	}
	if !c.Transit.Addr().Is4() || c.Transit.Bits() > 30 {
		return nil, fmt.Errorf("netlightd: transit range %s is not an IPv4 prefix of /30 or larger", c.Transit)
	}
	c.Transit = c.Transit.Masked()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MeshPorts == (PortRange{}) {
		c.MeshPorts = DefaultMeshPorts
	}
	if c.MeshPorts.First == 0 || c.MeshPorts.First > c.MeshPorts.Last {
		return nil, fmt.Errorf("netlightd: mesh ports %d-%d are not a range of ports", c.MeshPorts.First, c.MeshPorts.Last)
	}
	s := &Service{c: c, log: c.Logger, meshes: map[string]*meshDevice{}}
	if c.IP != nil {
		s.ip = *c.IP
	}
	return s, nil
}

// SaltedTransit is the transit range a salted service uses by default: a
// /24 of 100.64.0.0/11 picked by the salt, so services sharing a host
// rarely meet.
func SaltedTransit(salt string) netip.Prefix {
	h := sha256.Sum256([]byte("transit:" + salt))
	n := binary.BigEndian.Uint16(h[:2]) % (1 << 13) // 8192 /24s in a /11
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64 + byte(n>>8), byte(n), 0}), 24)
}

// PoolSize is the number of public addresses: the node's IPv4 capacity.
func (s *Service) PoolSize() uint64 { return uint64(len(s.c.PublicPool)) }

// Names are the host names of a network's parts.
type Names struct {
	// Namespace is the network's router namespace (g4n-<id>).
	Namespace string `json:"namespace"`
	// Bridge is where machines' TAP devices go (g4b<id>).
	Bridge string `json:"bridge"`
	// Veth is the host end of the bridge-to-router pair (g4v<id>).
	Veth string `json:"veth"`
	// Transit is the host end of the router's way out (g4x<id>).
	Transit string `json:"transit"`
}

// NamesOf returns the names of the network with workload ID id under salt
// (Config.Salt).
func NamesOf(salt, id string) Names {
	short := iproute.ShortID(salt + id)
	return Names{Namespace: NamespacePrefix + short, Bridge: BridgePrefix + short, Veth: VethPrefix + short, Transit: TransitPrefix + short}
}

// PublicNamespaceOf is the namespace of the public address with workload
// ID id under salt.
func PublicNamespaceOf(salt, id string) string {
	return PublicNamespacePrefix + iproute.ShortID(salt+id)
}
