package zosd

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/noderpc"
	"github.com/grid4/grid4/node/noderpc/api"
	rpcclient "github.com/grid4/grid4/node/noderpc/client"
)

// TestNodeAnswersNodes: the node-to-node API of a whole node, reached
// through the endpoint the node published (zos-api-light's listener,
// forwarded by provisiond to the noderpc module): a node of the farm pings
// it and reads its status (powerd's), a node of another farm pings it but
// may not read its status, a user's twin is refused; the node calls
// through its own module (signing through identityd), here itself; and
// its status reports carry its probes of the other nodes of its farm.
func TestNodeAnswersNodes(t *testing.T) {
	reg := regtest.Start(t, 2*time.Second)
	farm, other := reg.Farm(t), reg.Farm(t)
	// The farm's other node, registered first: the node's probes find it
	// (it publishes no endpoint, so it is not reached).
	peerKey, peer := reg.Node(t, farm)
	n := newTestNode(t, reg, farm, filepath.Join(t.TempDir(), "node"), bustest.Prefix(t), "--api-listen", freeAddr(t))
	b := bustest.Open(t, n.prefix)
	n.start()
	st := n.waitReport("registration", registered).Registration
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := reg.Client(t).Node(ctx, st.NodeID)
	if err != nil || len(node.APIEndpoints) != 1 {
		t.Fatalf("node %+v %v", node, err)
	}
	url, err := rpcclient.Endpoint(node.APIEndpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	c, err := rpcclient.New(peerKey, peer.TwinID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pong api.Pong
	for pong, err = c.Ping(ctx, url, st.NodeID); err != nil; pong, err = c.Ping(ctx, url, st.NodeID) {
		if ctx.Err() != nil {
			t.Fatalf("the node never answered a ping: %v\nlog:\n%s", err, n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pong.NodeID != st.NodeID || pong.FarmID != farm || pong.Caller != peer.NodeID {
		t.Fatalf("pong %+v", pong)
	}
	fs, err := c.FarmStatus(ctx, url, st.NodeID)
	if err != nil || fs.NodeID != st.NodeID || fs.UptimeSeconds != 5000 {
		t.Fatalf("farm status %+v %v (want powerd's uptime, 5000 s)", fs, err)
	}

	strangerKey, stranger := reg.Node(t, other)
	c2, err := rpcclient.New(strangerKey, stranger.TwinID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Ping(ctx, url, st.NodeID); err != nil {
		t.Fatalf("ping from another farm: %v", err)
	}
	var re *jsonrpc.Error
	if _, err := c2.FarmStatus(ctx, url, st.NodeID); !errors.As(err, &re) || re.Code != api.CodeForbidden {
		t.Fatalf("farm status from another farm: %v", err)
	}
	userKey, user := reg.Twin(t)
	c3, err := rpcclient.New(userKey, user, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c3.Ping(ctx, url, st.NodeID); !errors.Is(err, jsonrpc.ErrUnauthorized) {
		t.Fatalf("ping from a user's twin: %v", err)
	}

	// Through the module's bus object: the node calls itself.
	self, err := noderpc.NewStub(b).Ping(ctx, st.NodeID)
	if err != nil || self.NodeID != st.NodeID || self.Caller != st.NodeID {
		t.Fatalf("self ping over the bus: %+v %v", self, err)
	}

	for {
		h, err := reg.Client(t).NodeStatus(ctx, st.NodeID, 1)
		if err == nil && h.Latest != nil && h.Latest.Peers != nil {
			p := h.Latest.Peers
			if p.Probed != 1 || p.Reached != 0 || p.Probes[0].NodeID != peer.NodeID || !strings.Contains(p.Probes[0].Error, "no API endpoint") {
				t.Fatalf("reported probes %+v", p)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no status report with probes: %+v %v\nlog:\n%s", h, err, n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
