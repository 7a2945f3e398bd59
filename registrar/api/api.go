// Package api holds the registrar's wire types: the JSON documents that the
// registrar serves and accepts, shared by the server, the Go client, gridctl
// and the node.
//
// Field names follow the public Grid v4 registrar API (`/api/v1`), so that
// existing nodes and SDKs decode what grid4 sends and grid4 accepts what they
// send. Fields grid4 adds are optional for readers and writers alike.
//
// A field tagged required:"true" must be sent, and not as null: its zero
// value is a valid answer that an absent member would silently become, so
// the registrar refuses a body without it (400 "invalid NAME: required").
package api

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Account is a twin: an identity on the grid, keyed by its public key.
type Account struct {
	TwinID uint64 `json:"twin_id"`
	// PublicKey is the standard base64 (padded) of the 32-byte ed25519 or
	// sr25519 public key.
	PublicKey string    `json:"public_key"`
	Relays    []string  `json:"relays"`
	RMBEncKey string    `json:"rmb_enc_key"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreateAccountRequest is the body of POST /accounts. Signature signs
// "<timestamp>:<public_key>" with the key itself, public_key being the base64
// text exactly as sent.
type CreateAccountRequest struct {
	Timestamp int64    `json:"timestamp"`
	PublicKey string   `json:"public_key"`
	Signature string   `json:"signature"`
	Relays    []string `json:"relays,omitempty"`
	RMBEncKey string   `json:"rmb_enc_key,omitempty"`
}

// UpdateAccountRequest is the body of PATCH /accounts/{twin_id}. Absent or
// empty fields are left unchanged.
type UpdateAccountRequest struct {
	Relays    []string `json:"relays,omitempty"`
	RMBEncKey string   `json:"rmb_enc_key,omitempty"`
}

// Farm is a set of nodes run by one farmer (the owning twin).
type Farm struct {
	FarmID         uint64    `json:"farm_id"`
	FarmName       string    `json:"farm_name"`
	TwinID         uint64    `json:"twin_id"`
	StellarAddress string    `json:"stellar_address"`
	Dedicated      bool      `json:"dedicated"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// UpdateFarmRequest is the body of PATCH /farms/{farm_id}. Nil fields are
// left unchanged.
type UpdateFarmRequest struct {
	FarmName       *string `json:"farm_name,omitempty"`
	StellarAddress *string `json:"stellar_address,omitempty"`
	Dedicated      *bool   `json:"dedicated,omitempty"`
}

// FarmID is the reply of POST /farms.
type FarmID struct {
	FarmID uint64 `json:"farm_id"`
}

// Location is where a node is. Coordinates are decimal strings, as in the
// public API.
type Location struct {
	Country   string `json:"country"`
	City      string `json:"city"`
	Longitude string `json:"longitude"`
	Latitude  string `json:"latitude"`
}

// Limits of a Location the registrar accepts, in bytes; a node holds what
// its geoip service tells it to them as well.
const (
	// MaxCountryLen bounds Location.Country.
	MaxCountryLen = 64
	// MaxCityLen bounds Location.City.
	MaxCityLen = 128
	// MaxCoordinateLen bounds Location.Longitude and Latitude as text,
	// before parsing.
	MaxCoordinateLen = 32
)

// Resources is a node's capacity: HRU, SRU and MRU in bytes, CRU in logical
// CPUs.
type Resources struct {
	HRU uint64 `json:"hru"`
	SRU uint64 `json:"sru"`
	CRU uint64 `json:"cru"`
	MRU uint64 `json:"mru"`
}

// Interface is a network interface of a node.
type Interface struct {
	Name string `json:"name"`
	Mac  string `json:"mac"`
	IPs  IPList `json:"ips"`
}

// IPList is a list of addresses (with or without a prefix length). It is
// written as a JSON array and read from an array or from the older form, one
// string joined with "/" ("10.0.0.2/fe80::1"), which is what the public node
// client falls back to. That form is ambiguous with prefix lengths
// ("10.1.2.3/24/fe80::1/64"); a part made only of digits is the prefix
// length of the address before it, so the example reads as
// ["10.1.2.3/24", "fe80::1/64"] (an address always has a '.' or a ':').
type IPList []string

// UnmarshalJSON accepts both the array and the "/"-joined string form.
func (l *IPList) UnmarshalJSON(b []byte) error {
	var arr []string
	if err := json.Unmarshal(b, &arr); err == nil {
		*l = arr
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("ips: want an array of strings or a \"/\"-joined string")
	}
	*l = splitJoinedIPs(s)
	return nil
}

// splitJoinedIPs splits the "/"-joined form of an address list (see
// IPList), giving each bare prefix length back to the address before it.
// Empty parts are dropped; a prefix length with no address before it, or a
// second one after an address, stays a part of its own (and is then refused
// by validation as not an address).
func splitJoinedIPs(s string) []string {
	var out []string
	prefixed := true // whether the last part may not take a prefix length
	for _, part := range strings.Split(s, "/") {
		part = strings.TrimSpace(part)
		switch {
		case part == "":
		case !prefixed && isDigits(part):
			out[len(out)-1] += "/" + part
			prefixed = true
		default:
			out = append(out, part)
			prefixed = isDigits(part)
		}
	}
	return out
}

// isDigits reports whether s is one or more ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Node is a machine running ZOS, registered in a farm by its own twin.
type Node struct {
	NodeID       uint64      `json:"node_id"`
	FarmID       uint64      `json:"farm_id"`
	TwinID       uint64      `json:"twin_id"`
	Location     Location    `json:"location"`
	Resources    Resources   `json:"resources"`
	Interfaces   []Interface `json:"interfaces"`
	SecureBoot   bool        `json:"secure_boot"`
	Virtualized  bool        `json:"virtualized"`
	SerialNumber string      `json:"serial_number"`
	// Approved is set by the farm's owner; a node that moves to another farm
	// loses it.
	Approved bool `json:"approved"`
	// LastSeen is when the node last reported its uptime; nil if never.
	LastSeen *time.Time `json:"last_seen"`
	// Online is true when LastSeen is within the registrar's online cutoff.
	Online bool `json:"online"`
	// ZosVersion is the ZOS version the node last said it runs (grid4).
	ZosVersion string `json:"zos_version,omitempty"`
	// APIEndpoints are the URLs of the node's zos-api-light (grid4),
	// absent when the node gave none.
	APIEndpoints []string `json:"api_endpoints,omitempty"`
	// Healthy is true when the node's latest status report (grid4) said
	// so and is recent; false when it did not, is too old, or the node
	// never sent one. The public registrar's clients filter on it.
	Healthy bool `json:"healthy"`
	// StatusAt is when the node last reported its status (grid4),
	// absent if never.
	StatusAt *time.Time `json:"status_at,omitempty"`
	// Free is the capacity the node's latest status report left free
	// (grid4), absent if it never sent one.
	Free      *Capacity `json:"free_resources,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RegisterNodeRequest is the body of POST /nodes and PATCH /nodes/{node_id}
// (where twin_id is ignored, and which is a JSON merge patch: absent fields
// keep their value, so an empty ZosVersion or APIEndpoints, left out, keeps
// the registered one). The read-only fields the public Go client sends with its whole node
// (node_id, uptime, last_seen, online, approved and Approved) are accepted
// and ignored on these routes only.
type RegisterNodeRequest struct {
	TwinID       uint64      `json:"twin_id"`
	FarmID       uint64      `json:"farm_id"`
	Resources    Resources   `json:"resources"`
	Location     Location    `json:"location"`
	Interfaces   []Interface `json:"interfaces"`
	SecureBoot   bool        `json:"secure_boot"`
	Virtualized  bool        `json:"virtualized"`
	SerialNumber string      `json:"serial_number"`
	ZosVersion   string      `json:"zos_version,omitempty"`
	// APIEndpoints are the URLs of the node's zos-api-light; each passes
	// CheckAPIEndpoint, at most MaxAPIEndpoints of them.
	APIEndpoints []string `json:"api_endpoints,omitempty"`
}

// Limits of Node.APIEndpoints the registrar accepts; a node checks its own
// against them before sending.
const (
	// MaxAPIEndpoints bounds the number of endpoints of a node.
	MaxAPIEndpoints = 4
	// MaxAPIEndpointLen bounds one endpoint URL, in bytes.
	MaxAPIEndpointLen = 256
)

// CheckAPIEndpoint reports why s is not an endpoint a node may publish:
// an absolute http or https URL of at most MaxAPIEndpointLen printable
// ASCII characters, with a host (a name or an IP address) and an optional
// port 1..65535, and without user information (credentials published to
// everyone), query or fragment.
func CheckAPIEndpoint(s string) error {
	if s == "" || len(s) > MaxAPIEndpointLen {
		return fmt.Errorf("must be 1 to %d characters", MaxAPIEndpointLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return fmt.Errorf("only printable ASCII without spaces is allowed")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL with an http or https scheme", s)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: the scheme must be http or https", s)
	case u.Opaque != "" || u.Host == "":
		return fmt.Errorf("%q: want scheme://host[:port]/path", s)
	case u.User != nil:
		return fmt.Errorf("%q: user information is not allowed", s)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#"):
		return fmt.Errorf("%q: a query or fragment is not allowed", s)
	}
	if port := u.Port(); port != "" {
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return fmt.Errorf("%q: bad port", s)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q: empty port", s)
	}
	if h := u.Hostname(); !IsHostName(h) {
		// A zone (fe80::1%eth0) means nothing off the node.
		if a, err := netip.ParseAddr(h); err != nil || a.Zone() != "" {
			return fmt.Errorf("%q: %q is not a host name or IP address", s, h)
		}
	}
	return nil
}

// MaxVersionLen bounds a ZOS version string, in bytes.
const MaxVersionLen = 64

// versionPattern is v?MAJOR.MINOR.PATCH with an optional pre-release.
var versionPattern = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$`)

// CheckVersion reports why s is not a ZOS version the registrar accepts
// (v4.1.2, 4.1.2-rc1): a node reporting another never registers.
func CheckVersion(s string) error {
	if len(s) > MaxVersionLen {
		return fmt.Errorf("%d characters, at most %d allowed", len(s), MaxVersionLen)
	}
	if !versionPattern.MatchString(s) {
		return fmt.Errorf("%q is not a version like v4.1.2 or v4.1.2-rc1", s)
	}
	return nil
}

// IsHostName reports whether s is a DNS name of at most 253 characters:
// dot-separated labels of 1 to 63 letters, digits and hyphens, not
// starting or ending with a hyphen (a final dot allowed).
func IsHostName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// NodeID is the reply of POST /nodes.
type NodeID struct {
	NodeID uint64 `json:"node_id"`
}

// ApprovalRequest is the body of POST /farms/{farm_id}/approve and
// POST /farms/{farm_id}/reject.
type ApprovalRequest struct {
	NodeIDs []uint64 `json:"node_ids"`
}

// UptimeReport is the body of POST /nodes/{node_id}/uptime: the node's
// uptime in seconds and the node's clock in unix seconds.
type UptimeReport struct {
	Uptime    uint64 `json:"uptime"`
	Timestamp int64  `json:"timestamp"`
}

// UptimeReply answers an uptime report. NextReportIn tells the node when to
// report again (grid4; older nodes ignore it and report every 40 minutes).
type UptimeReply struct {
	Message string `json:"message"`
	// NextReportIn is in seconds.
	NextReportIn int64 `json:"next_report_in,omitempty"`
	// Restarted is true when the report shows the node rebooted since its
	// previous one.
	Restarted bool `json:"restarted,omitempty"`
}

// UptimeSession is one boot of a node as seen through its uptime reports:
// from BootTime (report time minus reported uptime) to LastReport.
type UptimeSession struct {
	BootTime   time.Time `json:"boot_time"`
	LastReport time.Time `json:"last_report"`
	// Uptime is the uptime in seconds the node gave in its last report of
	// this boot.
	Uptime  uint64 `json:"uptime"`
	Reports uint64 `json:"reports"`
}

// ZosVersion is the approved ZOS version and its rollout.
type ZosVersion struct {
	// Version is what nodes should run, e.g. "v4.1.2".
	Version string `json:"version"`
	// SafeToUpgrade lets every node upgrade; when false only nodes in
	// TestFarms do.
	SafeToUpgrade bool     `json:"safe_to_upgrade"`
	TestFarms     []uint64 `json:"test_farms"`
	// Serial only goes up: each change gets the next one.
	Serial    uint64    `json:"serial,omitempty"`
	SetBy     uint64    `json:"set_by,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Message is the body of successful changes that return nothing else.
type Message struct {
	Message string `json:"message"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}

// Capacity is an amount of each resource a node offers workloads: CRU in
// logical CPUs, MRU, SRU and HRU in bytes, IPv4 in public addresses.
type Capacity struct {
	CRU  uint64 `json:"cru"`
	MRU  uint64 `json:"mru"`
	SRU  uint64 `json:"sru"`
	HRU  uint64 `json:"hru"`
	IPv4 uint64 `json:"ipv4"`
}

// Sub returns c - o, each component floored at zero.
func (c Capacity) Sub(o Capacity) Capacity {
	sub := func(a, b uint64) uint64 {
		if b > a {
			return 0
		}
		return a - b
	}
	return Capacity{CRU: sub(c.CRU, o.CRU), MRU: sub(c.MRU, o.MRU), SRU: sub(c.SRU, o.SRU), HRU: sub(c.HRU, o.HRU), IPv4: sub(c.IPv4, o.IPv4)}
}

// HealthCheck is one of the node's health checks (powerd's).
type HealthCheck struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Reason says why the check failed.
	Reason string `json:"reason,omitempty"`
}

// ModuleState is one of the node's modules as its supervisor sees it.
type ModuleState struct {
	Name string `json:"name"`
	// State is the supervisor's: starting, running, restarting,
	// stopping, stopped or failed.
	State string `json:"state"`
	// Restarts counts the module's restarts since the node started.
	Restarts uint64 `json:"restarts,omitempty"`
	// LastExit is why the module last ended.
	LastExit string `json:"last_exit,omitempty"`
}

// NodeStatusReport is the body of POST /nodes/{node_id}/status (grid4): what
// a node has in use and whether it is healthy, sent on the uptime schedule.
type NodeStatusReport struct {
	// Timestamp is the node's clock in unix seconds (within the uptime
	// window of the registrar's).
	Timestamp int64 `json:"timestamp"`
	// Version is the ZOS version the node runs.
	Version string `json:"version,omitempty"`
	// Healthy is the node's own verdict: every check passes and every
	// module runs.
	Healthy bool          `json:"healthy" required:"true"`
	Checks  []HealthCheck `json:"checks,omitempty"`
	Modules []ModuleState `json:"modules,omitempty"`
	// Total is the capacity the node offers workloads, Used what its
	// workloads hold.
	Total Capacity `json:"total" required:"true"`
	Used  Capacity `json:"used" required:"true"`
	// Deployments counts the deployments the node hosts.
	Deployments uint64 `json:"deployments"`
	// Workloads counts the node's workloads by state (init, ok, paused,
	// error, deleted).
	Workloads map[string]uint64 `json:"workloads,omitempty"`
	// Peers is what the node's probes of a few other nodes of its farm
	// found (node-to-node API, grid4); absent when it probed none. With
	// the peers' reports about it, it tells a node that is down from one
	// that is cut off (docs/node-rpc.md).
	Peers *PeerReachability `json:"peers,omitempty"`
}

// Power targets of a node (NodePower.PowerTarget).
const (
	PowerOn  = "on"
	PowerOff = "off"
)

// NodePower is a node's power target (grid4): what its farmer wants it to
// be, the body of PUT and GET /nodes/{node_id}/power. The node powers off
// when it is "off" and idle; its farm peers wake it (Wake-on-LAN) when it
// is "on" again.
type NodePower struct {
	NodeID uint64 `json:"node_id,omitempty"`
	// PowerTarget is PowerOn (the default) or PowerOff.
	PowerTarget string `json:"power_target"`
	// SetBy and SetAt say who set it and when (absent: never set).
	SetBy uint64     `json:"set_by,omitempty"`
	SetAt *time.Time `json:"set_at,omitempty"`
}

// PeerReachability is what a node's probes of other nodes found: how many
// it probed, how many answered, and each probe.
type PeerReachability struct {
	Probed  uint64 `json:"probed" required:"true"`
	Reached uint64 `json:"reached" required:"true"`
	// Probes are the probes, at most MaxStatusItems.
	Probes []PeerProbe `json:"probes,omitempty"`
}

// PeerProbe is one probe of another node (node.v1.ping).
type PeerProbe struct {
	NodeID  uint64 `json:"node_id"`
	Reached bool   `json:"reached" required:"true"`
	// Error says why it was not reached (at most MaxStatusReason).
	Error string `json:"error,omitempty"`
}

// Limits of a NodeStatusReport the registrar accepts; a node trims its
// own report to them before sending.
const (
	// MaxStatusItems bounds Checks, Modules and Workloads.
	MaxStatusItems = 64
	// MaxStatusName bounds a check's or module's name and a workload
	// state, in bytes.
	MaxStatusName = 64
	// MaxStatusReason bounds a Reason or LastExit, in bytes.
	MaxStatusReason = 256
)

// NodeStatus is a node's status as the registrar serves it (grid4): the
// node's report, with the registrar's receive time, the free capacity and
// the reasons the node is unhealthy.
type NodeStatus struct {
	// ReportedAt is the registrar's time of the report.
	ReportedAt time.Time `json:"reported_at"`
	// Healthy is true when the report said so and is recent (see the
	// registrar's docs: reports that stop make a node unhealthy).
	Healthy bool `json:"healthy"`
	// Reasons name what is wrong: failing checks, modules not running,
	// reports that stopped. Absent when healthy.
	Reasons     []string          `json:"reasons,omitempty"`
	Version     string            `json:"version,omitempty"`
	Total       Capacity          `json:"total"`
	Used        Capacity          `json:"used"`
	Free        Capacity          `json:"free"`
	Deployments uint64            `json:"deployments"`
	Workloads   map[string]uint64 `json:"workloads,omitempty"`
	// Checks and Modules are served with the latest report only.
	Checks  []HealthCheck `json:"checks,omitempty"`
	Modules []ModuleState `json:"modules,omitempty"`
	// Peers is the report's probes of other nodes; the history keeps
	// the counts, the latest the probes too.
	Peers *PeerReachability `json:"peers,omitempty"`
}

// NodeStatusHistory is the answer of GET /nodes/{node_id}/status: the
// latest report in full (null before the first) and the recent ones,
// newest first, the latest included, without checks and modules.
type NodeStatusHistory struct {
	NodeID  uint64       `json:"node_id"`
	Latest  *NodeStatus  `json:"latest"`
	History []NodeStatus `json:"history"`
}
