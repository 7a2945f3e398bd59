package devnet

import (
	"context"
	"fmt"
	"net/http"
	"time"

	regclient "github.com/grid4/grid4/registrar/client"
)

// Component is one running part of the devnet as Status sees it.
type Component struct {
	// Name is registrar, hub, node1, ...
	Name string `json:"name"`
	// PID is its process (0 when stopped).
	PID int `json:"pid"`
	// Running is whether its process runs.
	Running bool `json:"running"`
	// Address is its URL (a node's: its zos-api-light).
	Address string `json:"address"`
	// Namespace is a node's network namespace (root devnets).
	Namespace string `json:"namespace,omitempty"`
	// Log is its log file.
	Log string `json:"log"`
	// NodeID is a node's id on the registrar.
	NodeID uint64 `json:"node_id,omitempty"`
	// Registrar is how the registrar sees a node ("online, approved,
	// v4.1.0"), empty when it cannot be asked.
	Registrar string `json:"registrar,omitempty"`
}

// Status reports each component of the devnet in dir.
func Status(ctx context.Context, dir string) (Dir, *State, []Component, error) {
	d, st, err := open(dir)
	if err != nil {
		return "", nil, nil, err
	}
	out := []Component{
		d.component(Registrar, st.RegistrarURL()),
		d.component(Hub, st.HubURL()),
	}
	reg, _ := regclient.New(st.RegistrarURL(), regclient.WithHTTPClient(&http.Client{Timeout: 3 * time.Second}),
		regclient.WithRetry(regclient.RetryPolicy{MaxAttempts: 1}))
	for _, n := range st.Nodes {
		c := d.component(n.Name, n.APIURL())
		c.Namespace, c.NodeID = n.Namespace, n.NodeID
		if out[0].Running && n.NodeID != 0 {
			if nd, err := reg.Node(ctx, n.NodeID); err == nil {
				c.Registrar = nodeView(nd)
			}
		}
		out = append(out, c)
	}
	return d, st, out, nil
}

func (d Dir) component(name, address string) Component {
	pid, ok := d.Running(name)
	return Component{Name: name, PID: pid, Running: ok, Address: address, Log: d.Log(name)}
}

// Env is what to paste into a shell so that gridctl works on the devnet
// at once: its registrar, its hub and the farmer's identity (read from its
// file, never printed).
func (s *State) Env(d Dir) []string {
	return []string{
		"export GRID_REGISTRAR=" + s.RegistrarURL(),
		"export GRID_HUB=" + s.HubURL(),
		fmt.Sprintf("export GRID_MNEMONIC=\"$(cat %s)\"", d.Path(farmerFile)),
	}
}
