package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/keys"
	rpcclient "github.com/grid4/grid4/node/noderpc/client"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/zosd"
	regapi "github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// TestNodesTalk is the node-to-node API end to end: two zosd nodes of one
// farm, each in a network namespace of its own on a shared segment (a
// bridge in the root namespace, where the registrar listens). They ping
// each other (their status reports on the registrar say whom they
// reached); a node answers a registered node, refuses a forged signature
// and a user's twin. The farmer sets node b's power target off: idle, it
// tells a and powers off (its power-off command stops its zosd: the
// process exit stands for "off"). The farmer sets it on again: node a
// sends Wake-on-LAN, and the magic packet for b's MAC arrives in b's
// namespace.
//
// Needs root, iproute2 and redis-server, like TestEndToEnd; traffic stays
// on the namespaces and bridge it creates.
func TestNodesTalk(t *testing.T) {
	e := newE2E(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seg := newSegment(t)
	farm := e.farm(t, "talk"+strings.ToLower(rand.Text()[:8]))

	// b's power-off: stop its zosd, the parent of powerd, which runs this.
	off := filepath.Join(e.dir, "poweroff.sh")
	if err := os.WriteFile(off, []byte("#!/bin/sh\nkill -TERM $(cut -d' ' -f4 /proc/$PPID/stat)\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	node := func(name string, i int) *zosdNode {
		n := e.node(t, name, farm, false, "--interface", seg.ifaces[i], "--api-listen", ":2021",
			"--health-interval", "500ms", "--power-off-command", "sh "+off)
		n.argv = append([]string{"ip", "netns", "exec", seg.ns[i]}, n.argv...)
		n.start(t)
		return n
	}
	a, b := node("talka", 0), node("talkb", 1)
	registeredNode := func(n *zosdNode) regapi.Node {
		r := n.waitStatus(t, "registered", func(r zosd.Report) bool {
			return r.Registration != nil && r.Registration.Phase == registrarlight.Done && r.Registration.Uptime.OK
		})
		nd, err := e.client.Node(ctx, r.Registration.NodeID)
		if err != nil {
			t.Fatal(err)
		}
		return nd
	}
	na, nb := registeredNode(a), registeredNode(b)
	s := time.Now()

	// They call each other: each one's status report says it reached the
	// other.
	for _, p := range []struct{ from, to regapi.Node }{{na, nb}, {nb, na}} {
		e.eventually(t, fmt.Sprintf("node %d to report reaching node %d", p.from.NodeID, p.to.NodeID), func() bool {
			st, err := e.client.NodeStatus(ctx, p.from.NodeID, 1)
			return err == nil && st.Latest != nil && st.Latest.Peers != nil &&
				slices.ContainsFunc(st.Latest.Peers.Probes, func(pr regapi.PeerProbe) bool { return pr.NodeID == p.to.NodeID && pr.Reached })
		})
	}
	t.Logf("%-58s %6.2fs", "a and b reach each other (node.v1.ping)", time.Since(s).Seconds())

	// A registered node of the farm calls b; a forged signature and a
	// user's twin are refused.
	url, err := rpcclient.Endpoint(nb.APIEndpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	third, thirdTwin := e.registerNode(t, farm)
	c, _ := rpcclient.New(third, thirdTwin, nil)
	if pong, err := c.Ping(ctx, url, nb.NodeID); err != nil || pong.NodeID != nb.NodeID {
		t.Fatalf("ping b: %+v %v", pong, err)
	}
	if st, err := c.FarmStatus(ctx, url, nb.NodeID); err != nil || st.NodeID != nb.NodeID {
		t.Fatalf("farm status of b: %+v %v", st, err)
	}
	forger, _ := keys.Generate(keys.Ed25519)
	fc, _ := rpcclient.New(forger, na.TwinID, nil)
	if _, err := fc.Ping(ctx, url, nb.NodeID); !errors.Is(err, jsonrpc.ErrUnauthorized) {
		t.Fatalf("forged as node a: %v", err)
	}
	uc, _ := rpcclient.New(forger, e.twin(t, forger), nil)
	if _, err := uc.Ping(ctx, url, nb.NodeID); !errors.Is(err, jsonrpc.ErrUnauthorized) {
		t.Fatalf("a user's twin: %v", err)
	}

	// Power: b off, idle; it tells a and stops.
	s = time.Now()
	wol := seg.listenIn(t, 1, 9)
	if _, err := e.farmer.SetPowerTarget(ctx, nb.NodeID, regapi.PowerOff); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.proc.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("node b did not power off; log:\n%s", b.logTail())
	}
	if !strings.Contains(string(readFile(b.log)), "powering off") {
		t.Fatalf("node b stopped without powering off; log:\n%s", b.logTail())
	}
	t.Logf("%-58s %6.2fs", "b powered off (target off, idle)", time.Since(s).Seconds())

	// b on again: a wakes it.
	s = time.Now()
	if _, err := e.farmer.SetPowerTarget(ctx, nb.NodeID, regapi.PowerOn); err != nil {
		t.Fatal(err)
	}
	mac, err := net.ParseMAC(nb.Interfaces[0].Mac)
	if err != nil {
		t.Fatal(err)
	}
	want := powerd.MagicPacket(mac)
	wol.SetReadDeadline(time.Now().Add(60 * time.Second))
	buf := make([]byte, 512)
	for {
		n, from, err := wol.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no Wake-on-LAN packet for %s in b's namespace: %v; log of a:\n%s", mac, err, a.logTail())
		}
		if bytes.Equal(buf[:n], want) {
			t.Logf("%-58s %6.2fs", fmt.Sprintf("Wake-on-LAN for %s from %s", mac, from), time.Since(s).Seconds())
			break
		}
	}
	if code := a.stop(t); code != 0 {
		t.Errorf("node a exited %d", code)
	}
}

// readFile is the file's content, or nothing.
func readFile(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// registerNode registers a node of a new key in farm, as a node does, and
// returns its key and twin.
func (e *e2e) registerNode(t *testing.T, farm uint64) (keys.KeyPair, uint64) {
	t.Helper()
	kp, _ := keys.Generate(keys.Ed25519)
	c, err := client.New("http://"+e.regAddr, client.WithIdentity(kp, 0))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.EnsureAccount(context.Background(), client.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterNode(context.Background(), regapi.RegisterNodeRequest{FarmID: farm, SerialNumber: "third",
		Interfaces: []regapi.Interface{{Name: "eth0", Mac: "52:54:00:00:00:33", IPs: regapi.IPList{"198.51.100.3"}}}}); err != nil {
		t.Fatal(err)
	}
	return kp, acc.TwinID
}

// twin makes kp an account (a user's twin) and returns its id.
func (e *e2e) twin(t *testing.T, kp keys.KeyPair) uint64 {
	t.Helper()
	c, err := client.New("http://"+e.regAddr, client.WithIdentity(kp, 0))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.EnsureAccount(context.Background(), client.AccountOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return acc.TwinID
}

// segment is two network namespaces on one Ethernet segment: a bridge in
// the root namespace (198.19.N.1/24, where the registrar is reached too:
// the namespaces' default route) and a veth into each namespace
// (198.19.N.10 and .11).
type segment struct {
	ns, ifaces [2]string
}

func newSegment(t *testing.T) *segment {
	t.Helper()
	tag := strings.ToLower(rand.Text()[:6])
	var n [1]byte
	rand.Read(n[:])
	net3 := int(n[0]%250) + 2
	br := "zbr" + tag
	mustIP(t, "link", "add", br, "type", "bridge")
	t.Cleanup(func() { _ = ip(t, "link", "del", br) })
	mustIP(t, "addr", "add", fmt.Sprintf("198.19.%d.1/24", net3), "dev", br)
	mustIP(t, "link", "set", br, "up")
	s := &segment{}
	for i := range 2 {
		s.ns[i] = fmt.Sprintf("zt%d-%s", i, tag)
		s.ifaces[i] = fmt.Sprintf("zt%d%s", i, tag)
		root := fmt.Sprintf("zh%d%s", i, tag)
		mustIP(t, "netns", "add", s.ns[i])
		ns := s.ns[i]
		t.Cleanup(func() { _ = ip(t, "netns", "del", ns) })
		mustIP(t, "link", "add", root, "type", "veth", "peer", "name", s.ifaces[i])
		t.Cleanup(func() { _ = ip(t, "link", "del", root) })
		mustIP(t, "link", "set", root, "master", br)
		mustIP(t, "link", "set", root, "up")
		mustIP(t, "link", "set", s.ifaces[i], "netns", s.ns[i])
		mustIP(t, "-n", s.ns[i], "addr", "add", fmt.Sprintf("198.19.%d.%d/24", net3, 10+i), "dev", s.ifaces[i])
		mustIP(t, "-n", s.ns[i], "link", "set", s.ifaces[i], "up")
		mustIP(t, "-n", s.ns[i], "link", "set", "lo", "up")
		mustIP(t, "-n", s.ns[i], "route", "add", "default", "via", fmt.Sprintf("198.19.%d.1", net3))
	}
	return s
}

// listenIn opens a UDP socket on port in namespace i (made there, it
// stays there), closed with the test.
func (s *segment) listenIn(t *testing.T, i, port int) net.PacketConn {
	t.Helper()
	type res struct {
		pc  net.PacketConn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		// The thread changes namespace and is not given back: it ends
		// with the goroutine.
		target, err := os.Open(filepath.Join("/run/netns", s.ns[i]))
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{err: fmt.Errorf("setns %s: %w", s.ns[i], err)}
			return
		}
		pc, err := net.ListenPacket("udp4", fmt.Sprintf("0.0.0.0:%d", port))
		ch <- res{pc, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { r.pc.Close() })
	return r.pc
}
