package zosd

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/vmd"
	"github.com/grid4/grid4/node/zosapi/api"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
	regapi "github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestNodeHostsWorkloads: provisiond runs inside zosd, bound to the
// node's registration: the node publishes its API's URL in the
// registration (a user reaches the API through it), node.version names
// the registered node, the capacity offered is what was registered (the
// farmer's --mru override included; SRU from storaged's pool, no --sru),
// and a user's deployment is hosted under a contract (refused without
// one): its disk is an image in storaged's pool; the contract cancelled,
// the node removes it.
func TestNodeHostsWorkloads(t *testing.T) {
	reg := regtest.Start(t, 2*time.Second)
	farm := reg.Farm(t)
	addr := freeAddr(t)
	n := newTestNode(t, reg, farm, filepath.Join(t.TempDir(), "node"), bustest.Prefix(t), "--api-listen", addr, "--mru", "3GiB", "--contract-poll", "1s")
	bustest.Open(t, n.prefix)
	n.start()
	st := n.waitReport("registration", registered).Registration

	// The node published where its API listens: users find it by id.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := reg.Client(t).Node(ctx, st.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if want := "http://" + addr + "/api/v1/rpc"; len(node.APIEndpoints) != 1 || node.APIEndpoints[0] != want {
		t.Fatalf("registered endpoints %q, want [%s]", node.APIEndpoints, want)
	}
	key, user, acc := reg.Account(t, "user")
	twin := acc.TwinID
	c, err := zosclient.New(node.APIEndpoints[0], key, twin, nil)
	if err != nil {
		t.Fatal(err)
	}
	var v api.NodeVersion
	for {
		if v, err = c.Version(ctx); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("zos-api-light never answered: %v\nlog:\n%s", err, n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v.NodeID != st.NodeID || v.TwinID != st.TwinID {
		t.Fatalf("node.version says node %d twin %d, registered as node %d twin %d", v.NodeID, v.TwinID, st.NodeID, st.TwinID)
	}
	capa, err := c.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if node.Resources.MRU != 3<<30 || node.Resources.SRU == 0 || capa.Total.MRU != node.Resources.MRU || capa.Total.CRU != node.Resources.CRU || capa.Total.SRU != node.Resources.SRU {
		t.Fatalf("registered %+v, offered %+v: want the override registered and offered", node.Resources, capa.Total)
	}

	d := gridtypes.Deployment{TwinID: twin, Workloads: []gridtypes.Workload{
		{Name: "disk", Type: gridtypes.ZMountType, Data: json.RawMessage(`{"size":1048576}`)},
	}}
	if err := d.Sign(twin, key); err != nil {
		t.Fatal(err)
	}
	// The node enforces contracts (zosd's default): refused without one,
	// accepted under a node contract for the deployment's hash.
	if _, err := c.Deploy(ctx, d); !errors.Is(err, gridtypes.ErrContract) || !strings.Contains(err.Error(), "names no contract_id") {
		t.Fatalf("deploy without a contract: %v, want refused (-32007)", err)
	}
	hash, err := d.HashHex()
	if err != nil {
		t.Fatal(err)
	}
	need, _ := d.Resources()
	k, err := user.CreateNodeContract(ctx, st.NodeID, hash, regapi.Capacity{SRU: need.SRU})
	if err != nil {
		t.Fatal(err)
	}
	d.ContractID = k.ContractID
	r, err := c.Deploy(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if r, err = c.Get(ctx, r.Deployment.ID); err != nil {
			t.Fatal(err)
		}
		if w, _ := r.Deployment.Get("disk"); w.Result != nil && w.Result.State != gridtypes.StateInit {
			if w.Result.State != gridtypes.StateOk {
				t.Fatalf("disk: %s %s", w.Result.State, w.Result.Message)
			}
			var disk struct{ Path string }
			if err := json.Unmarshal(w.Result.Data, &disk); err != nil || !strings.HasPrefix(disk.Path, filepath.Join(n.data, "storage", "pools")+"/") {
				t.Fatalf("disk at %q (%v): want an image in storaged's pool", disk.Path, err)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("deployment never settled")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The node's status report carries what it hosts: the registrar's
	// figures are node.capacity's once a report after the deployment
	// arrived, and the node is healthy.
	capa, err = c.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	regc := reg.Client(t)
	var status regapi.NodeStatusHistory
	for {
		if status, err = regc.NodeStatus(ctx, st.NodeID, 0); err != nil {
			t.Fatal(err)
		}
		if l := status.Latest; l != nil && l.Deployments == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no status report with the deployment reached the registrar: %+v", status.Latest)
		}
		time.Sleep(50 * time.Millisecond)
	}
	l := status.Latest
	asCap := func(r gridtypes.Resources) regapi.Capacity {
		return regapi.Capacity{CRU: r.CRU, MRU: r.MRU, SRU: r.SRU, HRU: r.HRU, IPv4: r.IPv4}
	}
	if l.Total != asCap(capa.Total) || l.Used != asCap(capa.Used) || l.Free != asCap(capa.Free) || capa.Used.SRU < 1<<20 {
		t.Errorf("registrar's figures: total %+v used %+v free %+v\nnode.capacity:      total %+v used %+v free %+v", l.Total, l.Used, l.Free, capa.Total, capa.Used, capa.Free)
	}
	if !l.Healthy || l.Workloads["ok"] != 1 || len(l.Modules) == 0 {
		t.Errorf("registrar's status: healthy %v reasons %q workloads %v modules %d", l.Healthy, l.Reasons, l.Workloads, len(l.Modules))
	}
	free, healthy := capa.Free.MRU, true
	if ids, err := regc.ListNodes(ctx, regclient.NodeFilter{Healthy: &healthy, FreeAtLeast: regapi.Capacity{MRU: free}}, regclient.Page{}); err != nil || len(ids) != 1 {
		t.Errorf("healthy nodes with %d bytes of memory free: %+v %v", free, ids, err)
	}
	if ids, err := regc.ListNodes(ctx, regclient.NodeFilter{FreeAtLeast: regapi.Capacity{MRU: free + 1}}, regclient.Page{}); err != nil || len(ids) != 0 {
		t.Errorf("nodes with more memory free than the node has: %+v %v", ids, err)
	}

	rep := n.waitReport("provisiond in the status", func(r Report) bool { return r.Provision != nil && r.Provision.Statistics.Deployments == 1 })
	if rep.Provision.API != addr {
		t.Errorf("status: API on %q, want %q", rep.Provision.API, addr)
	}
	text, _ := n.status("text")
	if want := "workloads     API on " + addr + "; deployments 1, twins 1; workloads 1 ok; queued 0"; !strings.Contains(text, want) {
		t.Errorf("status lacks %q:\n%s", want, text)
	}
	// vmd says which hypervisor machines get: QEMU without KVM at least
	// on a host where make test installed QEMU.
	if m := rep.Machines; m == nil || len(m.Backends) != len(vmd.Backends) {
		t.Errorf("status: machines %+v (errors %v)", m, rep.Errors)
	} else if want := "machines      " + m.Backend; m.Backend == "" || !strings.Contains(text, want) {
		t.Errorf("status lacks %q (backends %+v):\n%s", want, m.Backends, text)
	}

	// The twin cancels the contract: the node removes the deployment
	// within a poll (--contract-poll).
	if _, err := user.CancelContract(ctx, k.ContractID); err != nil {
		t.Fatal(err)
	}
	for {
		if r, err = c.Get(ctx, r.Deployment.ID); err != nil {
			t.Fatal(err)
		}
		if w, _ := r.Deployment.Get("disk"); r.Deleted && w.Result.State == gridtypes.StateDeleted {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the deployment of a cancelled contract is still there: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
