package noderpc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/node/noderpc/api"
	regapi "github.com/grid4/grid4/registrar/api"
)

// engineNetworks stands for the provisioning engine: it holds one part,
// of twin 5's network "net" over 10.20.0.0/16, listing only node allowed.
type engineNetworks struct {
	allowed uint64
	joined  map[uint64]netip.Addr
	left    []uint64
}

func (e *engineNetworks) JoinNetwork(_ context.Context, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error) {
	if req.TwinID != 5 || req.Network != "net" || req.Range != "10.20.0.0/16" {
		return api.NetworkPart{}, fmt.Errorf("%w: no such network", gridtypes.ErrNotFound)
	}
	if from != e.allowed {
		return api.NetworkPart{}, fmt.Errorf("%w: node %d is not listed", gridtypes.ErrForbidden, from)
	}
	e.joined[from] = host
	return api.NetworkPart{Subnet: "10.20.1.0/24", PublicKey: "k1", Port: 51820}, nil
}

func (e *engineNetworks) LeaveNetwork(_ context.Context, from uint64, _ api.NetworkLeave) error {
	e.left = append(e.left, from)
	return nil
}

// TestNetworkJoinLeave: network.v1.join reaches the engine with the
// calling node's id and published address and answers its part; the
// engine's refusals arrive as the API's codes; leave reaches it too.
func TestNetworkJoinLeave(t *testing.T) {
	g := newTestGrid(t)
	ctx := context.Background()
	// a2 publishes an address; the engine lists it.
	g.reg.SetEndpoints(t, g.a2Key, g.a2, "http://198.18.0.7:2021/api/v1/rpc")
	regc := g.reg.Client(t)
	nets := &engineNetworks{allowed: g.a2.NodeID, joined: map[uint64]netip.Addr{}}
	srv, err := NewServer(ServerConfig{
		Self: Self{NodeID: g.a1.NodeID, FarmID: g.a1.FarmID, TwinID: g.a1.TwinID}, Callers: NewPeers(regc, nil, PeersConfig{}),
		Keys: zosapiKeys(regc), Networks: nets,
	})
	if err != nil {
		t.Fatal(err)
	}
	g.serve(srv)
	a2 := g.peersOf(t, g.a2Key, g.a2.TwinID, nil)
	join := api.NetworkJoin{TwinID: 5, Network: "net", Range: "10.20.0.0/16", Part: api.NetworkPart{Subnet: "10.20.2.0/24", PublicKey: "k2", Port: 51821}}
	var part api.NetworkPart
	if err := a2.Call(ctx, g.a1.NodeID, api.MethodNetworkJoin, join, &part); err != nil || part.PublicKey != "k1" {
		t.Fatalf("join: %+v %v", part, err)
	}
	if got := nets.joined[g.a2.NodeID]; got != netip.MustParseAddr("198.18.0.7") {
		t.Fatalf("the engine got host %v", got)
	}
	var re *jsonrpc.Error
	other := join
	other.Network = "other"
	if err := a2.Call(ctx, g.a1.NodeID, api.MethodNetworkJoin, other, nil); !errors.As(err, &re) || re.Code != api.CodeNotFound {
		t.Fatalf("unknown network: %v", err)
	}
	// b1 is not listed: refused.
	g.reg.SetEndpoints(t, g.b1Key, g.b1, "http://198.18.0.9:2021/api/v1/rpc")
	b1 := g.peersOf(t, g.b1Key, g.b1.TwinID, nil)
	if err := b1.Call(ctx, g.a1.NodeID, api.MethodNetworkJoin, join, nil); !errors.As(err, &re) || re.Code != api.CodeForbidden {
		t.Fatalf("unlisted node: %v", err)
	}
	if err := a2.Call(ctx, g.a1.NodeID, api.MethodNetworkLeave, api.NetworkLeave{TwinID: 5, Network: "net", Range: "10.20.0.0/16"}, nil); err != nil || len(nets.left) != 1 || nets.left[0] != g.a2.NodeID {
		t.Fatalf("leave: %v %v", nets.left, err)
	}
	// Calls that name no network are invalid params and never reach the
	// engine (a leave would otherwise be a silent no-op).
	for _, bad := range []any{
		map[string]any{},
		api.NetworkJoin{Network: "net", Range: "10.20.0.0/16"},
		api.NetworkJoin{TwinID: 5, Range: "10.20.0.0/16"},
		api.NetworkJoin{TwinID: 5, Network: "net", Range: "10.20.0.0"},
	} {
		for _, m := range []string{api.MethodNetworkJoin, api.MethodNetworkLeave} {
			if err := a2.Call(ctx, g.a1.NodeID, m, bad, nil); !errors.As(err, &re) || re.Code != jsonrpc.CodeInvalidParams {
				t.Fatalf("%s %+v: %v", m, bad, err)
			}
		}
	}
	if len(nets.left) != 1 || len(nets.joined) != 1 {
		t.Fatalf("the engine was reached: left %v, joined %v", nets.left, nets.joined)
	}
	if h, err := NodeHost(regapi.Node{NodeID: 3, APIEndpoints: []string{"https://node.example/api/v1/rpc"}}); err == nil {
		t.Fatalf("a name gave host %v", h)
	}
}
