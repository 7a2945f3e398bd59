package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/zosd"
)

// TestFailingModuleMakesNodeUnhealthy: a module of a running node dies and
// stays down (a restart backoff of minutes stands for one that keeps
// failing); within a report interval the registrar shows the node
// unhealthy, naming the module.
func TestFailingModuleMakesNodeUnhealthy(t *testing.T) {
	e := newE2E(t)
	farm := e.farm(t, fmt.Sprintf("sick%d", rand.N[uint64](1<<40)))
	n := e.node(t, "sick", farm, false, "--interface", e.vethRoot, "--restart-min", "5m", "--restart-max", "5m")
	n.start(t)
	r := n.waitStatus(t, "registered, every module running", func(r zosd.Report) bool {
		if r.Registration == nil || r.Registration.Phase != registrarlight.Done || r.Registration.Status.Runs == 0 {
			return false
		}
		for _, m := range r.Modules {
			if m.Name == zosd.ModuleNoded && m.PID != 0 {
				return true
			}
		}
		return false
	})
	id := r.Registration.NodeID
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if st, err := e.client.NodeStatus(ctx, id, 0); err != nil || st.Latest == nil || !st.Latest.Healthy {
		t.Fatalf("before: %+v %v", st.Latest, err)
	}
	for _, m := range r.Modules {
		if m.Name == zosd.ModuleNoded {
			if err := syscall.Kill(m.PID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.eventually(t, "the registrar shows the node unhealthy, naming noded", func() bool {
		st, err := e.client.NodeStatus(ctx, id, 0)
		if err != nil || st.Latest == nil || st.Latest.Healthy {
			return false
		}
		for _, why := range st.Latest.Reasons {
			if strings.HasPrefix(why, "module "+zosd.ModuleNoded+": ") {
				return true
			}
		}
		return false
	})
	node, err := e.client.Node(ctx, id)
	if err != nil || node.Healthy {
		t.Errorf("the node record: healthy %v (%v)", node.Healthy, err)
	}
}
