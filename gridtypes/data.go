package gridtypes

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Size units, in bytes.
const (
	MiB = uint64(1) << 20
	GiB = uint64(1) << 30
	TiB = uint64(1) << 40
)

// Limits of the data schemas.
const (
	// MinDiskSize and MaxDiskSize bound ZMount and Volume sizes and
	// ZMachineLight root disks.
	MinDiskSize = MiB
	MaxDiskSize = 16 * TiB
	// MinMemory is the smallest ZMachineLight memory.
	MinMemory = 256 * MiB
	// MaxCPU is the most vCPUs a ZMachineLight may ask for.
	MaxCPU = 32
	// MaxInterfaces and MaxMounts bound a ZMachineLight's network cards
	// and mounts.
	MaxInterfaces = 8
	MaxMounts     = 16
)

// Resources are the node capacity a workload uses: CRU in vCPUs, MRU, SRU
// and HRU in bytes, IPv4 in public addresses.
type Resources struct {
	// CRU is virtual CPUs.
	CRU uint64 `json:"cru"`
	// MRU is memory in bytes.
	MRU uint64 `json:"mru"`
	// SRU is SSD storage in bytes.
	SRU uint64 `json:"sru"`
	// HRU is HDD storage in bytes.
	HRU uint64 `json:"hru"`
	// IPv4 is public IPv4 addresses.
	IPv4 uint64 `json:"ipv4"`
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CRU: r.CRU + o.CRU, MRU: r.MRU + o.MRU, SRU: r.SRU + o.SRU, HRU: r.HRU + o.HRU, IPv4: r.IPv4 + o.IPv4}
}

// Sub returns r - o, each component floored at zero.
func (r Resources) Sub(o Resources) Resources {
	sub := func(a, b uint64) uint64 {
		if b > a {
			return 0
		}
		return a - b
	}
	return Resources{CRU: sub(r.CRU, o.CRU), MRU: sub(r.MRU, o.MRU), SRU: sub(r.SRU, o.SRU), HRU: sub(r.HRU, o.HRU), IPv4: sub(r.IPv4, o.IPv4)}
}

// Exceeds lists the components of r larger than limit ("sru", ...).
func (r Resources) Exceeds(limit Resources) []string {
	var out []string
	for _, c := range []struct {
		name   string
		v, max uint64
	}{{"cru", r.CRU, limit.CRU}, {"mru", r.MRU, limit.MRU}, {"sru", r.SRU, limit.SRU}, {"hru", r.HRU, limit.HRU}, {"ipv4", r.IPv4, limit.IPv4}} {
		if c.v > c.max {
			out = append(out, c.name)
		}
	}
	return out
}

// workloadData is implemented by the data schema of every type.
type workloadData interface {
	// check validates the fields on their own (references to other
	// workloads are checked by the deployment).
	check() error
	// resources is the capacity the workload uses.
	resources() Resources
}

// updatable is implemented by data whose changes are restricted.
type updatable interface {
	// checkUpdate reports why the workload cannot change from old.
	checkUpdate(old workloadData) error
}

// ZMountData is a raw disk for a machine: a sparse file of Size bytes.
type ZMountData struct {
	// Size in bytes, MinDiskSize to MaxDiskSize. It may grow on update,
	// never shrink.
	Size uint64 `json:"size"`
}

func (d *ZMountData) check() error         { return checkSize("size", d.Size) }
func (d *ZMountData) resources() Resources { return Resources{SRU: d.Size} }
func (d *ZMountData) checkUpdate(old workloadData) error {
	if o := old.(*ZMountData); d.Size < o.Size {
		return fieldErr("size", "a zmount cannot shrink (from %d to %d bytes)", o.Size, d.Size)
	}
	return nil
}

// VolumeData is a directory of at most Size bytes, shared by mount.
type VolumeData struct {
	// Size in bytes, MinDiskSize to MaxDiskSize. It may grow on update,
	// never shrink.
	Size uint64 `json:"size"`
}

func (d *VolumeData) check() error         { return checkSize("size", d.Size) }
func (d *VolumeData) resources() Resources { return Resources{SRU: d.Size} }
func (d *VolumeData) checkUpdate(old workloadData) error {
	if o := old.(*VolumeData); d.Size < o.Size {
		return fieldErr("size", "a volume cannot shrink (from %d to %d bytes)", o.Size, d.Size)
	}
	return nil
}

// QSFSData is a quantum-safe file system: a local cache whose data is
// dispersed, encrypted and erasure coded, over 0-db backends.
type QSFSData struct {
	// Cache is the size of the local cache in bytes (SRU).
	Cache uint64 `json:"cache"`
	// MinimalShards is how many shards are enough to rebuild the data.
	MinimalShards uint32 `json:"minimal_shards"`
	// ExpectedShards is how many shards are written (>= MinimalShards).
	ExpectedShards uint32 `json:"expected_shards"`
	// RedundantGroups is how many groups may be lost (< len(Groups)).
	RedundantGroups uint32 `json:"redundant_groups"`
	// RedundantNodes is how many backends of a group may be lost.
	RedundantNodes uint32 `json:"redundant_nodes"`
	// EncryptionKey is the 32-byte AES key in hex.
	EncryptionKey string `json:"encryption_key"`
	// Compression is "snappy" or "none".
	Compression string `json:"compression"`
	// Metadata is where the file system's metadata goes.
	Metadata QSFSMetadata `json:"metadata"`
	// Groups are the backends of the data shards.
	Groups []QSFSGroup `json:"groups"`
}

// QSFSMetadata is the metadata store of a QSFS.
type QSFSMetadata struct {
	// Prefix namespaces the keys of this file system.
	Prefix string `json:"prefix"`
	// Backends are the 0-db namespaces holding the metadata.
	Backends []QSFSBackend `json:"backends"`
}

// QSFSGroup is a group of data backends (usually on one farm).
type QSFSGroup struct {
	// Backends are the group's 0-db namespaces (at least one).
	Backends []QSFSBackend `json:"backends"`
}

// QSFSBackend is a 0-db namespace.
type QSFSBackend struct {
	// Address is "host:port" ("[2001:db8::1]:9900" for IPv6).
	Address string `json:"address"`
	// Namespace is the 0-db namespace.
	Namespace string `json:"namespace"`
	// Password is the namespace's password (may be empty).
	Password string `json:"password"`
}

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (d *QSFSData) check() error {
	if err := checkSize("cache", d.Cache); err != nil {
		return err
	}
	if d.MinimalShards == 0 || d.MinimalShards > 255 {
		return fieldErr("minimal_shards", "must be 1 to 255")
	}
	if d.ExpectedShards < d.MinimalShards || d.ExpectedShards > 255 {
		return fieldErr("expected_shards", "must be minimal_shards (%d) to 255", d.MinimalShards)
	}
	if k, err := hex.DecodeString(d.EncryptionKey); err != nil || len(k) != 32 {
		return fieldErr("encryption_key", "must be 32 bytes in hex (64 characters)")
	}
	if d.Compression != "snappy" && d.Compression != "none" {
		return fieldErr("compression", "must be snappy or none")
	}
	if !namespaceRE.MatchString(d.Metadata.Prefix) {
		return fieldErr("metadata.prefix", "must be 1 to 64 of A-Z a-z 0-9 _ -")
	}
	if len(d.Metadata.Backends) == 0 {
		return fieldErr("metadata.backends", "at least one backend is needed")
	}
	for i, b := range d.Metadata.Backends {
		if err := b.check(fmt.Sprintf("metadata.backends[%d]", i)); err != nil {
			return err
		}
	}
	if len(d.Groups) == 0 {
		return fieldErr("groups", "at least one group is needed")
	}
	if int(d.RedundantGroups) >= len(d.Groups) {
		return fieldErr("redundant_groups", "must be less than the number of groups (%d)", len(d.Groups))
	}
	total := 0
	for i, g := range d.Groups {
		if len(g.Backends) == 0 {
			return fieldErr(fmt.Sprintf("groups[%d].backends", i), "at least one backend is needed")
		}
		if int(d.RedundantNodes) >= len(g.Backends) {
			return fieldErr("redundant_nodes", "must be less than the backends of every group (group %d has %d)", i, len(g.Backends))
		}
		for j, b := range g.Backends {
			if err := b.check(fmt.Sprintf("groups[%d].backends[%d]", i, j)); err != nil {
				return err
			}
		}
		total += len(g.Backends)
	}
	if total < int(d.ExpectedShards) {
		return fieldErr("groups", "%d backends cannot hold %d expected shards", total, d.ExpectedShards)
	}
	return nil
}

func (b QSFSBackend) check(field string) error {
	host, port, err := net.SplitHostPort(b.Address)
	if err != nil || host == "" {
		return fieldErr(field+".address", "must be host:port")
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fieldErr(field+".address", "port must be 1 to 65535")
	}
	if !namespaceRE.MatchString(b.Namespace) {
		return fieldErr(field+".namespace", "must be 1 to 64 of A-Z a-z 0-9 _ -")
	}
	if len(b.Password) > 128 {
		return fieldErr(field+".password", "at most 128 bytes")
	}
	return nil
}

func (d *QSFSData) resources() Resources { return Resources{SRU: d.Cache} }

// NetworkLightData is a private network on the node that machines join.
type NetworkLightData struct {
	// Subnet is the network's private IPv4 subnet on this node, in CIDR
	// form with the host bits zero ("10.20.1.0/24"), /16 to /29, inside
	// 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16. The first host
	// address is the gateway.
	Subnet string `json:"subnet"`
	// PortForwards open the node to the network's workloads: a
	// connection to HostPort on the node's addresses goes to IP:Port in
	// the network. Optional; at most MaxPortForwards.
	PortForwards []PortForward `json:"port_forwards,omitempty"`
	// Mesh makes the network one part of a private network spread over
	// several nodes (optional).
	Mesh *NetworkMesh `json:"mesh,omitempty"`
}

// NetworkMesh joins a network to the owner's networks of the same name
// and range on other nodes: the nodes exchange keys over the
// node-to-node API and connect the parts with WireGuard, so machines on
// different nodes reach each other by private address.
type NetworkMesh struct {
	// Range is the whole network's range, the same in every part; each
	// part's subnet is inside it and no two overlap. IPv4, /8 to /24,
	// inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16.
	Range string `json:"range"`
	// Nodes are the other nodes holding a part: a node joins only the
	// parts that list it (at most MaxMeshNodes, this node not among
	// them).
	Nodes []uint64 `json:"nodes"`
}

// MaxMeshNodes bounds the other nodes of a network.
const MaxMeshNodes = 64

// MaxPortForwards bounds a network's port forwards.
const MaxPortForwards = 16

// PortForward is an inbound port forward of a network.
type PortForward struct {
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// HostPort is the port on the node's addresses (1 to 65535).
	HostPort uint16 `json:"host_port"`
	// IP is a host address of the network's subnet (not its gateway).
	IP string `json:"ip"`
	// Port is the workload's port (1 to 65535).
	Port uint16 `json:"port"`
}

// privateV4 are the RFC 1918 ranges networks must be in.
func privateV4() [3]netip.Prefix {
	return [3]netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
	}
}

// Prefix parses Subnet (valid after validation).
func (d *NetworkLightData) Prefix() (netip.Prefix, error) {
	return netip.ParsePrefix(d.Subnet)
}

func (d *NetworkLightData) check() error {
	p, err := d.Prefix()
	if err != nil || !p.Addr().Is4() {
		return fieldErr("subnet", "must be an IPv4 subnet in CIDR form, e.g. 10.20.1.0/24")
	}
	if p.Masked() != p {
		return fieldErr("subnet", "host bits must be zero (did you mean %s?)", p.Masked())
	}
	if p.Bits() < 16 || p.Bits() > 29 {
		return fieldErr("subnet", "prefix length must be 16 to 29")
	}
	private := false
	for _, priv := range privateV4() {
		if priv.Bits() <= p.Bits() && priv.Contains(p.Addr()) {
			private = true
		}
	}
	if !private {
		return fieldErr("subnet", "must be inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16")
	}
	if err := checkForwards(p, d.PortForwards); err != nil {
		return err
	}
	if d.Mesh != nil {
		return d.Mesh.check(p)
	}
	return nil
}

// RangePrefix parses Range (valid after validation).
func (m *NetworkMesh) RangePrefix() (netip.Prefix, error) {
	return netip.ParsePrefix(m.Range)
}

func (m *NetworkMesh) check(subnet netip.Prefix) error {
	r, err := m.RangePrefix()
	if err != nil || !r.Addr().Is4() {
		return fieldErr("mesh.range", "must be an IPv4 range in CIDR form, e.g. 10.20.0.0/16")
	}
	if r.Masked() != r {
		return fieldErr("mesh.range", "host bits must be zero (did you mean %s?)", r.Masked())
	}
	if r.Bits() < 8 || r.Bits() > 24 {
		return fieldErr("mesh.range", "prefix length must be 8 to 24")
	}
	if r.Bits() >= subnet.Bits() || !r.Contains(subnet.Addr()) {
		return fieldErr("mesh.range", "must hold the subnet %s and more", subnet)
	}
	if len(m.Nodes) == 0 || len(m.Nodes) > MaxMeshNodes {
		return fieldErr("mesh.nodes", "1 to %d node ids", MaxMeshNodes)
	}
	seen := map[uint64]bool{}
	for i, n := range m.Nodes {
		if n == 0 || seen[n] {
			return fieldErr(fmt.Sprintf("mesh.nodes[%d]", i), "node ids must be non-zero and distinct")
		}
		seen[n] = true
	}
	return nil
}

// checkForwards checks a network's port forwards against its subnet.
func checkForwards(subnet netip.Prefix, fs []PortForward) error {
	if len(fs) > MaxPortForwards {
		return fieldErr("port_forwards", "at most %d", MaxPortForwards)
	}
	gw := subnet.Addr().Next()
	seen := map[string]bool{}
	for i, f := range fs {
		field := func(name string) string { return fmt.Sprintf("port_forwards[%d].%s", i, name) }
		if f.Protocol != "tcp" && f.Protocol != "udp" {
			return fieldErr(field("protocol"), "must be tcp or udp")
		}
		if f.HostPort == 0 {
			return fieldErr(field("host_port"), "must be 1 to 65535")
		}
		if f.Port == 0 {
			return fieldErr(field("port"), "must be 1 to 65535")
		}
		ip, err := netip.ParseAddr(f.IP)
		if err != nil || !ip.Is4() || !subnet.Contains(ip) || ip == subnet.Addr() || ip == gw || ip == lastAddr(subnet) {
			return fieldErr(field("ip"), "must be a host address of %s other than its gateway %s", subnet, gw)
		}
		key := fmt.Sprintf("%s/%d", f.Protocol, f.HostPort)
		if seen[key] {
			return fieldErr(field("host_port"), "%s port %d is forwarded twice", f.Protocol, f.HostPort)
		}
		seen[key] = true
	}
	return nil
}

func (d *NetworkLightData) resources() Resources { return Resources{} }

// PublicIPv4Data reserves one of the node's public IPv4 addresses.
type PublicIPv4Data struct {
	// IP asks for a given address of the node's pool ("" for any free
	// one), without prefix length.
	IP string `json:"ip,omitempty"`
}

func (d *PublicIPv4Data) check() error {
	if d.IP == "" {
		return nil
	}
	a, err := netip.ParseAddr(d.IP)
	if err != nil || !a.Is4() {
		return fieldErr("ip", "must be an IPv4 address without prefix length, or empty")
	}
	return nil
}

func (d *PublicIPv4Data) resources() Resources { return Resources{IPv4: 1} }

// ZMachineLightData is a virtual machine booted from an flist.
type ZMachineLightData struct {
	// Flist is the http(s) URL of the machine's flist (its root file
	// system).
	Flist string `json:"flist"`
	// Entrypoint is the command the machine runs (empty: the image's).
	Entrypoint string `json:"entrypoint"`
	// Env is the environment of the entrypoint.
	Env map[string]string `json:"env"`
	// ComputeCapacity is the machine's CPU and memory.
	ComputeCapacity ComputeCapacity `json:"compute_capacity"`
	// Size is the writable root disk in bytes (SRU); 0 for none.
	Size uint64 `json:"size"`
	// Network connects the machine.
	Network MachineNetwork `json:"network"`
	// Mounts attach zmounts, volumes and QSFS of the deployment.
	Mounts []MachineMount `json:"mounts"`
	// Corex runs the corex remote console in the machine.
	Corex bool `json:"corex"`
}

// ComputeCapacity is the CPU and memory of a machine.
type ComputeCapacity struct {
	// CPU is the number of vCPUs, 1 to MaxCPU.
	CPU uint8 `json:"cpu"`
	// Memory in bytes, at least MinMemory, a whole number of MiB.
	Memory uint64 `json:"memory"`
}

// MachineNetwork lists a machine's network connections.
type MachineNetwork struct {
	// Interfaces join NetworkLight workloads of the deployment (at least
	// one).
	Interfaces []MachineInterface `json:"interfaces"`
	// PublicIP names a PublicIPv4 workload of the deployment ("" for
	// none).
	PublicIP string `json:"public_ip,omitempty"`
}

// MachineInterface is one network card of a machine.
type MachineInterface struct {
	// Network is the name of a NetworkLight workload.
	Network string `json:"network"`
	// IP is the machine's address in that network's subnet.
	IP string `json:"ip"`
}

// MachineMount attaches a storage workload at a path.
type MachineMount struct {
	// Name is a zmount, volume or qsfs workload of the deployment.
	Name string `json:"name"`
	// Mountpoint is an absolute path in the machine, not "/".
	Mountpoint string `json:"mountpoint"`
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

func (d *ZMachineLightData) check() error {
	u, err := url.Parse(d.Flist)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil {
		return fieldErr("flist", "must be an http(s) URL of an flist, e.g. https://hub.grid.tf/tf-official-apps/base:latest.flist")
	}
	if len(d.Entrypoint) > 1024 {
		return fieldErr("entrypoint", "at most 1024 bytes")
	}
	if len(d.Env) > 128 {
		return fieldErr("env", "at most 128 variables")
	}
	for k, v := range d.Env {
		if !envKeyRE.MatchString(k) {
			return fieldErr("env", "variable name %q is not a shell identifier", k)
		}
		if len(v) > 4096 || strings.ContainsRune(v, 0) {
			return fieldErr("env."+k, "at most 4096 bytes, no NUL")
		}
	}
	if c := d.ComputeCapacity.CPU; c == 0 || c > MaxCPU {
		return fieldErr("compute_capacity.cpu", "must be 1 to %d", MaxCPU)
	}
	if m := d.ComputeCapacity.Memory; m < MinMemory || m%MiB != 0 || m > 1*TiB {
		return fieldErr("compute_capacity.memory", "must be a whole number of MiB from 256 MiB to 1 TiB")
	}
	if d.Size != 0 {
		if err := checkSize("size", d.Size); err != nil {
			return err
		}
	}
	if len(d.Network.Interfaces) == 0 {
		return fieldErr("network.interfaces", "a machine needs at least one network-light interface")
	}
	if len(d.Network.Interfaces) > MaxInterfaces {
		return fieldErr("network.interfaces", "at most %d interfaces", MaxInterfaces)
	}
	if len(d.Mounts) > MaxMounts {
		return fieldErr("mounts", "at most %d mounts", MaxMounts)
	}
	for i, nic := range d.Network.Interfaces {
		if a, err := netip.ParseAddr(nic.IP); err != nil || !a.Is4() {
			return fieldErr(fmt.Sprintf("network.interfaces[%d].ip", i), "must be an IPv4 address")
		}
	}
	seen := map[string]bool{}
	for i, m := range d.Mounts {
		mp := m.Mountpoint
		if !path.IsAbs(mp) || path.Clean(mp) != mp || mp == "/" || len(mp) > 256 {
			return fieldErr(fmt.Sprintf("mounts[%d].mountpoint", i), "must be a clean absolute path other than /")
		}
		if seen[mp] {
			return fieldErr(fmt.Sprintf("mounts[%d].mountpoint", i), "%s is used twice", mp)
		}
		seen[mp] = true
	}
	return nil
}

func (d *ZMachineLightData) resources() Resources {
	return Resources{CRU: uint64(d.ComputeCapacity.CPU), MRU: d.ComputeCapacity.Memory, SRU: d.Size}
}

// ZLogsData streams a machine's log to a WebSocket endpoint.
type ZLogsData struct {
	// ZMachine is the name of a ZMachineLight workload of the deployment.
	ZMachine string `json:"zmachine"`
	// Output is a ws:// or wss:// URL; every log line is sent there as a
	// text message.
	Output string `json:"output"`
}

func (d *ZLogsData) check() error {
	u, err := url.Parse(d.Output)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" || u.Fragment != "" || len(d.Output) > 2048 {
		return fieldErr("output", "must be a ws:// or wss:// URL")
	}
	return nil
}

func (d *ZLogsData) resources() Resources { return Resources{} }

// newData returns an empty data value of type t.
func newData(t WorkloadType) (workloadData, bool) {
	switch t {
	case ZMountType:
		return &ZMountData{}, true
	case VolumeType:
		return &VolumeData{}, true
	case QuantumSafeFSType:
		return &QSFSData{}, true
	case NetworkLightType:
		return &NetworkLightData{}, true
	case PublicIPv4Type:
		return &PublicIPv4Data{}, true
	case ZMachineLightType:
		return &ZMachineLightData{}, true
	case ZLogsType:
		return &ZLogsData{}, true
	}
	return nil, false
}

// DecodeData decodes w.Data into v strictly: a single JSON object, no
// unknown members. Managers use it with the data type of their workload
// type (ZMountData for zmount, ...).
func (w *Workload) DecodeData(v any) error {
	return decodeStrict(w.Data, v)
}

// decodeStrict decodes one JSON object into v, refusing unknown members,
// null and trailing data.
func decodeStrict(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return errors.New("must be a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return cleanJSONError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// cleanJSONError rewords encoding/json errors without Go type names.
func cleanJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "value"
		}
		return fmt.Errorf("%s: a JSON %s is not allowed here", field, te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown member %s", msg)
	}
	return err
}

func checkSize(field string, n uint64) error {
	if n < MinDiskSize || n > MaxDiskSize {
		return fieldErr(field, "must be 1 MiB to 16 TiB (in bytes), got %d", n)
	}
	return nil
}
