package provisiond

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/noderpc/api"
)

// joiningRecorder records the joins and leaves the engine passes on.
type joiningRecorder struct{ *recorder }

func (r joiningRecorder) Join(_ context.Context, t Task, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error) {
	r.j.add(fmt.Sprintf("join %s from %d at %s", t.ID(), from, host))
	return api.NetworkPart{Subnet: "10.20.1.0/24"}, nil
}

func (r joiningRecorder) Leave(_ context.Context, t Task, from uint64) error {
	r.j.add(fmt.Sprintf("leave %s from %d", t.ID(), from))
	return nil
}

// TestJoinNetworkFindsTheTwinsMeshedNetwork: another node's join reaches
// the manager with the task of the twin's network of that name and range,
// and only that one.
func TestJoinNetworkFindsTheTwinsMeshedNetwork(t *testing.T) {
	te := newEngine(t, nil)
	te.c.Managers[gridtypes.NetworkLightType] = joiningRecorder{te.rec}
	ctx := context.Background()
	net := func(twin uint64, name, data string) gridtypes.Deployment {
		return gridtypes.Deployment{TwinID: twin, Workloads: []gridtypes.Workload{{Name: name, Type: gridtypes.NetworkLightType, Data: raw(data)}}}
	}
	plain := te.deploy(t, net(1, "net", `{"subnet":"10.20.1.0/24"}`))
	meshed := te.deploy(t, net(1, "net", `{"subnet":"10.20.1.0/24","mesh":{"range":"10.20.0.0/16","nodes":[7]}}`))
	te.deploy(t, net(2, "net", `{"subnet":"10.20.1.0/24","mesh":{"range":"10.20.0.0/16","nodes":[7]}}`))
	te.rec.j.reset()

	host := netip.MustParseAddr("192.0.2.7")
	req := api.NetworkJoin{TwinID: 1, Network: "net", Range: "10.20.0.0/16"}
	if p, err := te.JoinNetwork(ctx, 7, host, req); err != nil || p.Subnet != "10.20.1.0/24" {
		t.Fatalf("join: %+v %v", p, err)
	}
	want := fmt.Sprintf("join 1-%d-net from 7 at 192.0.2.7", meshed.Deployment.ID)
	if got := te.rec.j.list(); len(got) != 1 || got[0] != want {
		t.Fatalf("journal %q, want %q (not the plain network %d)", got, want, plain.Deployment.ID)
	}
	for _, bad := range []api.NetworkJoin{
		{TwinID: 1, Network: "net", Range: "10.21.0.0/16"},
		{TwinID: 1, Network: "other", Range: "10.20.0.0/16"},
		{TwinID: 3, Network: "net", Range: "10.20.0.0/16"},
	} {
		if _, err := te.JoinNetwork(ctx, 7, host, bad); !errors.Is(err, gridtypes.ErrNotFound) {
			t.Errorf("join %+v: %v, want not found", bad, err)
		}
	}
	if err := te.LeaveNetwork(ctx, 7, api.NetworkLeave{TwinID: 1, Network: "net", Range: "10.20.0.0/16"}); err != nil {
		t.Fatal(err)
	}
	if err := te.LeaveNetwork(ctx, 7, api.NetworkLeave{TwinID: 3, Network: "net", Range: "10.20.0.0/16"}); err != nil {
		t.Fatalf("leaving a network this node does not hold: %v", err)
	}
	// Once the deployment is deleted, its network takes no joins.
	if _, err := te.Delete(ctx, 1, meshed.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	te.wait(t, 1, meshed.Deployment.ID)
	if _, err := te.JoinNetwork(ctx, 7, host, req); !errors.Is(err, gridtypes.ErrNotFound) {
		t.Fatalf("join after delete: %v", err)
	}
}
