package noderpc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestProber: a node probes the other nodes of its farm, not itself nor
// other farms, a few a round and in turn; one that does not answer is
// named with the reason.
func TestProber(t *testing.T) {
	g := newTestGrid(t)
	ctx := context.Background()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	_, a3 := g.reg.Node(t, g.a1.FarmID, dead.URL+"/api/v1/rpc")
	a2 := g.peersOf(t, g.a2Key, g.a2.TwinID, nil)
	self := Self{NodeID: g.a2.NodeID, FarmID: g.a2.FarmID, TwinID: g.a2.TwinID}

	all, err := NewProber(a2, self, 5).Probe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all.Probed != 2 || all.Reached != 1 || len(all.Probes) != 2 {
		t.Fatalf("probes %+v", all)
	}
	for _, p := range all.Probes {
		switch p.NodeID {
		case g.a1.NodeID:
			if !p.Reached || p.Error != "" {
				t.Errorf("a1: %+v", p)
			}
		case a3.NodeID:
			if p.Reached || p.Error == "" {
				t.Errorf("a3 (dead): %+v", p)
			}
		default:
			t.Errorf("probed node %d, not of the farm or itself", p.NodeID)
		}
	}

	one := NewProber(a2, self, 1)
	var seen []uint64
	for range 3 {
		r, err := one.Probe(ctx)
		if err != nil || r.Probed != 1 {
			t.Fatalf("round: %+v %v", r, err)
		}
		seen = append(seen, r.Probes[0].NodeID)
	}
	if seen[0] == seen[1] || seen[0] != seen[2] {
		t.Fatalf("rounds probed %v: want the two peers in turn", seen)
	}

	// A farm of one probes nothing.
	alone := Self{NodeID: g.b1.NodeID, FarmID: g.b1.FarmID}
	if r, err := NewProber(a2, alone, 3).Probe(ctx); err != nil || r.Probed != 0 {
		t.Fatalf("farm of one: %+v %v", r, err)
	}
}

// TestProberLast: the status report's call answers at once with the last
// finished round (none at first) and starts the next.
func TestProberLast(t *testing.T) {
	g := newTestGrid(t)
	ctx := context.Background()
	a2 := g.peersOf(t, g.a2Key, g.a2.TwinID, nil)
	p := NewProber(a2, Self{NodeID: g.a2.NodeID, FarmID: g.a2.FarmID}, 3)
	if r, err := p.Last(ctx); err != nil || r.Probed != 0 {
		t.Fatalf("first: %+v %v", r, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := p.Last(ctx)
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("no round finished: %+v %v", r, err)
		}
		if r.Probed == 1 && r.Reached == 1 && r.Probes[0].NodeID == g.a1.NodeID {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
