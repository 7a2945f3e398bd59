package netlight

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"testing"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/noderpc/api"
	"github.com/grid4/grid4/node/provisiond"
)

// grid stands for the node-to-node API between the test's managers: a
// call reaches the other manager's Join or Leave as the engine would
// pass it on (the transport itself is node/noderpc's, tested there and
// end to end in cmd/zosd).
type grid struct {
	nodes map[uint64]*meshNode
}

// meshNode is one node's manager and the task of its part.
type meshNode struct {
	id   uint64
	m    *Manager
	task provisiond.Task
	made bool
	g    *grid
}

func (n *meshNode) JoinNetwork(ctx context.Context, node uint64, req api.NetworkJoin) (api.NetworkPart, netip.Addr, error) {
	o, ok := n.g.nodes[node]
	if !ok || !o.made {
		return api.NetworkPart{}, netip.Addr{}, fmt.Errorf("%w: no network there", gridtypes.ErrNotFound)
	}
	p, err := o.m.Join(ctx, o.task, n.id, netip.MustParseAddr("127.0.0.1"), req)
	return p, netip.MustParseAddr("127.0.0.1"), err
}

func (n *meshNode) LeaveNetwork(ctx context.Context, node uint64, req api.NetworkLeave) error {
	if o, ok := n.g.nodes[node]; ok && o.made {
		return o.m.Leave(ctx, o.task, n.id)
	}
	return nil
}

func (g *grid) node(t *testing.T, id uint64, twin uint64, subnet, rng string, others ...uint64) *meshNode {
	t.Helper()
	salt := fmt.Sprintf("t%x", rand.Uint64())
	port := uint16(40000 + rand.IntN(20000))
	svc, err := netlightd.New(netlightd.Config{Dir: t.TempDir(), Salt: salt, MeshPorts: netlightd.PortRange{First: port, Last: port}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	n := &meshNode{id: id, g: g}
	if n.m, err = New(Config{Networks: svc, Peers: n, NodeID: id}); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(gridtypes.NetworkLightData{Subnet: subnet, Mesh: &gridtypes.NetworkMesh{Range: rng, Nodes: others}})
	n.task = provisiond.Task{TwinID: twin, DeploymentID: id, Workload: gridtypes.Workload{Name: "net", Type: gridtypes.NetworkLightType, Data: data}}
	g.nodes[id] = n
	t.Cleanup(func() { _ = n.m.Deprovision(context.Background(), n.task) })
	return n
}

func (n *meshNode) provision(t *testing.T) Result {
	t.Helper()
	res, err := n.m.Provision(context.Background(), n.task)
	if err != nil {
		t.Fatal(err)
	}
	n.made = true
	return res.(Result)
}

// dialFrom runs the dial helper in ns against addr and returns its line.
func dialFrom(t *testing.T, ns, addr string) (string, error) {
	cli := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	cli.Env = append(os.Environ(), helperEnv+"=dial", "HELPER_ADDR="+addr)
	out, err := cli.CombinedOutput()
	return string(out), err
}

// listenIn runs the listen helper in ns on addr (one connection).
func listenIn(t *testing.T, ns, addr string) {
	t.Helper()
	srv := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	srv.Env = append(os.Environ(), helperEnv+"=listen", "HELPER_ADDR="+addr)
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("server in %s: %q", ns, line)
	}
}

func TestPartsOfANetworkJoinAcrossNodes(t *testing.T) {
	needNetAdmin(t)
	ctx := context.Background()
	x := rand.IntN(200) + 20
	rng := fmt.Sprintf("10.%d.0.0/16", x)
	twin := rand.Uint64N(1<<40) + 1
	g := &grid{nodes: map[uint64]*meshNode{}}
	a := g.node(t, 1, twin, fmt.Sprintf("10.%d.1.0/24", x), rng, 2)
	b := g.node(t, 2, twin, fmt.Sprintf("10.%d.2.0/24", x), rng, 1)

	// a first: b has no part yet, so a waits for it.
	ra := a.provision(t)
	if ra.Mesh == nil || len(ra.Mesh.Peers) != 0 || len(ra.Mesh.Waiting) != 1 || ra.Mesh.Waiting[0] != 2 {
		t.Fatalf("a alone: %+v", ra.Mesh)
	}
	// b joins a: both know each other.
	rb := b.provision(t)
	if len(rb.Mesh.Peers) != 1 || rb.Mesh.Peers[0].Node != 1 || rb.Mesh.Peers[0].Subnet != fmt.Sprintf("10.%d.1.0/24", x) || len(rb.Mesh.Waiting) != 0 {
		t.Fatalf("b: %+v", rb.Mesh)
	}
	meshA, err := a.m.nets.MeshOf(ctx, a.task.ID())
	if err != nil || len(meshA.Peers) != 1 || meshA.Peers[0].Node != 2 {
		t.Fatalf("a after b joined: %+v %v", meshA, err)
	}

	// A machine on a reaches b's gateway by its private address.
	id := iproute.ShortID(fmt.Sprint(rand.Uint64()))
	mns, mveth := "g4t-"+id, "g4t"+id
	sh(t, "ip", "netns", "add", mns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", "dev", mveth).Run()
		exec.Command("ip", "netns", "del", mns).Run()
	})
	sh(t, "ip", "link", "add", "name", mveth, "type", "veth", "peer", "name", "eth0", "netns", mns)
	sh(t, "ip", "link", "set", "dev", mveth, "master", ra.Bridge, "up")
	sh(t, "ip", "-n", mns, "addr", "add", fmt.Sprintf("10.%d.1.5/24", x), "dev", "eth0")
	sh(t, "ip", "-n", mns, "link", "set", "dev", "eth0", "up")
	sh(t, "ip", "-n", mns, "route", "add", "default", "via", fmt.Sprintf("10.%d.1.1", x))
	far := fmt.Sprintf("10.%d.2.1:7777", x)
	listenIn(t, rb.Namespace, far)
	if got, err := dialFrom(t, mns, far); err != nil || got != "hello from "+far+"\n" {
		t.Fatalf("machine on a -> b's gateway: %q %v", got, err)
	}

	// A node the part does not list may not join it.
	req := api.NetworkJoin{TwinID: twin, Network: "net", Range: rng, Part: api.NetworkPart{Subnet: fmt.Sprintf("10.%d.3.0/24", x), PublicKey: meshA.PublicKey, Port: 1}}
	if _, err := a.m.Join(ctx, a.task, 3, netip.MustParseAddr("127.0.0.1"), req); !errors.Is(err, gridtypes.ErrForbidden) {
		t.Fatalf("an unlisted node joined: %v", err)
	}
	// A listed node whose subnet overlaps is refused as a conflict
	// (-32013 on the node-to-node API), and nothing changes.
	req.Part.Subnet = fmt.Sprintf("10.%d.2.128/25", x)
	if _, err := b.m.Join(ctx, b.task, 1, netip.MustParseAddr("127.0.0.1"), req); !errors.Is(err, gridtypes.ErrConflict) {
		t.Fatalf("an overlapping part joined: %v", err)
	}
	if meshB, err := b.m.nets.MeshOf(ctx, b.task.ID()); err != nil || len(meshB.Peers) != 1 || meshB.Peers[0].Subnet.String() != fmt.Sprintf("10.%d.1.0/24", x) {
		t.Fatalf("b after a refused overlapping part: %+v %v", meshB, err)
	}
	// A part whose key is not a WireGuard key is invalid params (the
	// caller's mistake, not an internal error of this node), and nothing
	// changes either.
	req.Part.Subnet = fmt.Sprintf("10.%d.1.0/24", x)
	for _, key := range []string{"", "x", base64.StdEncoding.EncodeToString(make([]byte, 31))} {
		req.Part.PublicKey = key
		if _, err := b.m.Join(ctx, b.task, 1, netip.MustParseAddr("127.0.0.1"), req); !errors.Is(err, gridtypes.ErrInvalid) {
			t.Fatalf("a part with the key %q: %v", key, err)
		}
	}
	if meshB, err := b.m.nets.MeshOf(ctx, b.task.ID()); err != nil || len(meshB.Peers) != 1 || meshB.Peers[0].PublicKey != meshA.PublicKey {
		t.Fatalf("b after refused keys: %+v %v", meshB, err)
	}

	// b's part goes: a forgets it.
	if err := b.m.Deprovision(ctx, b.task); err != nil {
		t.Fatal(err)
	}
	b.made = false
	if meshA, err = a.m.nets.MeshOf(ctx, a.task.ID()); err != nil || len(meshA.Peers) != 0 {
		t.Fatalf("a after b left: %+v %v", meshA, err)
	}
}

func TestMeshNeedsTheNodeToNodeAPI(t *testing.T) {
	svc, err := netlightd.New(netlightd.Config{Dir: t.TempDir(), Salt: "x"})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(`{"subnet":"10.30.1.0/24","mesh":{"range":"10.30.0.0/16","nodes":[2]}}`)
	tk := provisiond.Task{TwinID: 1, DeploymentID: 1, Workload: gridtypes.Workload{Name: "net", Type: gridtypes.NetworkLightType, Data: data}}
	m, _ := New(Config{Networks: svc, NodeID: 2})
	if _, err := m.Provision(context.Background(), tk); err == nil || err.Error() != "network-light: this node cannot join networks across nodes (no node-to-node API)" {
		t.Fatalf("without peers: %v", err)
	}
	m, _ = New(Config{Networks: svc, NodeID: 2, Peers: &meshNode{}})
	if _, err := m.Provision(context.Background(), tk); err == nil || err.Error() != "network-light: mesh.nodes lists this node (2): list the other nodes only" {
		t.Fatalf("listing itself: %v", err)
	}
}
