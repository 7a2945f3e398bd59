package zosd

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/registrarlight"
	regapi "github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// TestNodeReportsIllHealth: a node whose health check keeps failing (its
// data directory has less free space than --min-free-disk asks) skips its
// uptime reports, but its status report tells the registrar, which shows
// the node unhealthy with the failing check named, and lists it among the
// unhealthy nodes.
func TestNodeReportsIllHealth(t *testing.T) {
	reg := regtest.Start(t, 2*time.Second)
	farm := reg.Farm(t)
	n := newTestNode(t, reg, farm, filepath.Join(t.TempDir(), "node"), bustest.Prefix(t), "--min-free-disk", "1000PiB")
	bustest.Open(t, n.prefix)
	n.start()
	rep := n.waitReport("registration and a status report", func(r Report) bool {
		return r.Registration != nil && r.Registration.Phase == registrarlight.Done && r.Registration.Status.Runs > 0 && r.Registration.Uptime.Runs > 0
	})
	st := rep.Registration
	if st.Uptime.OK || !strings.Contains(st.Uptime.Error, "node unhealthy") {
		t.Errorf("uptime task %+v: want skipped for ill health", st.Uptime)
	}
	if !st.Status.OK || st.Healthy || len(st.Reasons) == 0 {
		t.Fatalf("status task %+v healthy %v reasons %q", st.Status, st.Healthy, st.Reasons)
	}

	if text, _ := n.status("text"); !strings.Contains(text, "  status      last ") || !strings.Contains(text, "sent: UNHEALTHY: check disk_space: ") {
		t.Errorf("zosd status does not show the status report:\n%s", text)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := reg.Client(t)
	status, err := c.NodeStatus(ctx, st.NodeID, 0)
	if err != nil || status.Latest == nil {
		t.Fatalf("registrar's status: %+v %v", status, err)
	}
	l := status.Latest
	named := false
	for _, r := range l.Reasons {
		named = named || strings.HasPrefix(r, "check disk_space: ") && strings.Contains(r, "less than the")
	}
	if l.Healthy || !named {
		t.Errorf("registrar's status: healthy %v reasons %q", l.Healthy, l.Reasons)
	}
	node, err := c.Node(ctx, st.NodeID)
	if err != nil || node.Healthy || node.StatusAt == nil || node.Free == nil {
		t.Errorf("registrar's node: healthy %v status_at %v free %v (%v)", node.Healthy, node.StatusAt, node.Free, err)
	}
	unhealthy := false
	sick, err := c.ListNodes(ctx, regclient.NodeFilter{Healthy: &unhealthy, FreeAtLeast: regapi.Capacity{CRU: 1}}, regclient.Page{})
	if err != nil || len(sick) != 1 || sick[0].NodeID != st.NodeID {
		t.Errorf("unhealthy nodes: %+v %v", sick, err)
	}
}
