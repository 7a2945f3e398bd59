// Package devnet runs a whole grid on one machine for development: a
// registrar on SQLite, a hub with a published release, an admin, a farmer
// with a test farm and a farm, and full nodes (the bootstrap starting
// zosd), each in a network namespace of its own when run as root. Every
// part is a process of the binaries built from this repository, started
// detached so that it outlives the command that started it, with its pid
// file and log in the devnet's directory; the directory is the devnet:
// identities, the registrar's database, the hub's data, the nodes' data
// directories and the state file (devnet.json) from which `Up` resumes a
// stopped devnet and `Down` finds everything to stop.
//
// It starts servers as programs and talks to them through their clients:
// gridctl, which links this package, links no server.
package devnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/lockfile"
)

// Binaries the devnet runs, looked for in Config.BinDir.
const (
	BinRegistrar = "registrar"
	BinHub       = "hub"
	BinZosd      = "zosd"
	BinBootstrap = "bootstrap"
)

// Components that are not nodes; nodes are "node1", "node2", ...
const (
	Registrar = "registrar"
	Hub       = "hub"
)

// Release publishing: the hub repository whose tags are ZOS versions, as
// nodes look for them (zosd's --upgrade-publisher and --upgrade-repo
// defaults).
const (
	Publisher = "tf"
	Repo      = "zos"
)

// Files in the devnet's directory.
const (
	stateFile     = "devnet.json"
	adminFile     = "admin.mnemonic"
	farmerFile    = "farmer.mnemonic"
	publisherFile = "publisher.seed"
)

// ErrNoDevnet is returned when the directory holds no devnet.
var ErrNoDevnet = errors.New("no devnet")

// ErrBusy is returned when another command changes the devnet (up, down,
// release take turns).
var ErrBusy = errors.New("another gridctl devnet command is working on it")

// State is what the devnet's directory remembers between commands
// (devnet.json): how it was laid out, what was made on the registrar, and
// the nodes' ids.
type State struct {
	// Root is whether the devnet runs in network namespaces (made as root).
	Root bool `json:"root"`
	// Tag is the devnet's own part of interface and namespace names.
	Tag string `json:"tag"`
	// Subnet is the bridge's network (root only), e.g. 198.18.77.0/24.
	Subnet string `json:"subnet,omitempty"`
	// Host is the address the registrar and the hub listen on: the
	// bridge's (root) or 127.0.0.1.
	Host string `json:"host"`
	// RegistrarPort and HubPort are their ports.
	RegistrarPort int `json:"registrar_port"`
	HubPort       int `json:"hub_port"`
	// AdminTwin and FarmerTwin are the twins of the two identities.
	AdminTwin  uint64 `json:"admin_twin,omitempty"`
	FarmerTwin uint64 `json:"farmer_twin,omitempty"`
	// TestFarm gets releases first; Farm is the other.
	TestFarm uint64 `json:"test_farm,omitempty"`
	Farm     uint64 `json:"farm,omitempty"`
	// Version is the ZOS version the nodes started on (the base zosd's).
	Version string `json:"version"`
	// Releases are the versions published on the hub, in order.
	Releases []string `json:"releases,omitempty"`
	// Nodes are the nodes, node1 first.
	Nodes []Node `json:"nodes"`
}

// Node is one node of the devnet.
type Node struct {
	// Name is node1, node2, ...: its log, pid file and data directory.
	Name string `json:"name"`
	// Farm is the farm it registers in.
	Farm uint64 `json:"farm"`
	// Namespace is its network namespace (root only).
	Namespace string `json:"namespace,omitempty"`
	// Veth is the host end of its link to the bridge (root only).
	Veth string `json:"veth,omitempty"`
	// IP is its address: its own (root) or 127.0.0.1.
	IP string `json:"ip"`
	// PublicVeth is the host end of its public interface's link to the
	// bridge (root only); PublicIPs are its public IPv4 pool, with their
	// prefix length.
	PublicVeth string   `json:"public_veth,omitempty"`
	PublicIPs  []string `json:"public_ips,omitempty"`
	// APIPort is where its zos-api-light listens.
	APIPort int `json:"api_port"`
	// NodeID is its id on the registrar, once registered.
	NodeID uint64 `json:"node_id,omitempty"`
}

// APIURL is the URL of the node's zos-api-light, as it publishes it.
func (n Node) APIURL() string {
	return fmt.Sprintf("http://%s:%d/api/v1/rpc", n.IP, n.APIPort)
}

// RegistrarURL is the registrar's base URL (its explorer is at /).
func (s *State) RegistrarURL() string {
	return fmt.Sprintf("http://%s:%d", s.Host, s.RegistrarPort)
}

// HubURL is the hub's base URL.
func (s *State) HubURL() string {
	return fmt.Sprintf("http://%s:%d", s.Host, s.HubPort)
}

// Dir is a devnet's directory and the files in it.
type Dir string

// Path returns the path of name in the directory.
func (d Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{string(d)}, elem...)...)
}

// Log is the log file of a component.
func (d Dir) Log(component string) string { return d.Path("logs", component+".log") }

// pidFile is the pid file of a component.
func (d Dir) pidFile(component string) string { return d.Path("run", component+".pid") }

// nodeData is a node's data directory.
func (d Dir) nodeData(name string) string { return d.Path("nodes", name) }

// lock takes the devnet's lock for a command that changes it.
func (d Dir) lock() (func(), error) {
	unlock, err := lockfile.Take(d.Path("devnet.lock"))
	if errors.Is(err, lockfile.ErrHeld) {
		return nil, fmt.Errorf("%s: %w", d, ErrBusy)
	}
	return unlock, err
}

// LoadState reads the devnet's state; ErrNoDevnet when there is none.
func (d Dir) LoadState() (*State, error) {
	b, err := os.ReadFile(d.Path(stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s (start one with 'gridctl devnet up')", ErrNoDevnet, d)
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Path(stateFile), err)
	}
	return &s, nil
}

// saveState writes the state whole (a crash leaves the old one).
func (d Dir) saveState(s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(d.Path(stateFile), append(b, '\n'), 0o600)
}

// Components lists the state's components in start order.
func (s *State) Components() []string {
	out := []string{Registrar, Hub}
	for _, n := range s.Nodes {
		out = append(out, n.Name)
	}
	return out
}
