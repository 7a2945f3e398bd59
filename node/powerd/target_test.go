package powerd

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/registrar/api"
)

// nodeIs is a Self answering id.
type nodeIs uint64

func (n nodeIs) NodeID(context.Context) (uint64, error) { return uint64(n), nil }

// hosting is a Workloads answering n deployments.
type hosting struct {
	mu sync.Mutex
	n  int
}

func (h *hosting) Deployments(context.Context) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n, nil
}

// farm records what the keeper tells the farm, and says which nodes
// answer.
type farm struct {
	mu        sync.Mutex
	goingDown int
	up        map[uint64]bool
}

func (f *farm) GoingDown(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.goingDown++
	return nil
}

func (f *farm) Reachable(_ context.Context, id uint64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up[id]
}

// switchOff is the power-off action, recorded: the host's poweroff cannot
// run here.
type switchOff struct {
	mu    sync.Mutex
	times int
}

func (s *switchOff) PowerOff(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times++
	return nil
}

// TestKeeperFollowsTarget: with the farmer's target off, a node with
// deployments refuses and says why; once idle it tells the farm and
// powers off, once. A peer that went down is remembered across a restart
// of the keeper, woken with a real magic packet when its target is on
// again, and no more once it answers.
func TestKeeperFollowsTarget(t *testing.T) {
	reg := regtest.Start(t, 0)
	farmID, farmer := reg.Farmer(t)
	_, self := reg.Node(t, farmID)
	_, peer := reg.Node(t, farmID)
	ctx := context.Background()
	set := func(node uint64, target string) {
		t.Helper()
		if _, err := farmer.SetPowerTarget(ctx, node, target); err != nil {
			t.Fatal(err)
		}
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	work := &hosting{n: 2}
	f := &farm{up: map[uint64]bool{}}
	off := &switchOff{}
	deps := KeeperDeps{Self: nodeIs(self.NodeID), Targets: reg.Client(t), Workloads: work, Peers: f,
		PowerOff: off, Waker: WakeOnLAN{Address: pc.LocalAddr().String()}, AsleepFile: filepath.Join(t.TempDir(), "asleep.json")}
	k := NewKeeper(deps)

	k.Check(ctx)
	if st, _ := k.State(ctx); st.Target != api.PowerOn || st.Refused != "" || off.times != 0 {
		t.Fatalf("target on: %+v, powered off %d times", st, off.times)
	}
	set(self.NodeID, api.PowerOff)
	k.Check(ctx)
	if st, _ := k.State(ctx); st.Target != api.PowerOff || st.Refused == "" || off.times != 0 || f.goingDown != 0 {
		t.Fatalf("with deployments: %+v, powered off %d times, told the farm %d times", st, off.times, f.goingDown)
	}
	work.mu.Lock()
	work.n = 0
	work.mu.Unlock()
	k.Check(ctx)
	k.Check(ctx)
	if st, _ := k.State(ctx); !st.PoweringOff || off.times != 1 || f.goingDown != 1 {
		t.Fatalf("idle: %+v, powered off %d times, told the farm %d times", st, off.times, f.goingDown)
	}

	// The peer went down; its target is off: nothing is sent.
	if err := k.PeerDown(ctx, peer.NodeID, []string{"52:54:00:aa:bb:cc"}); err != nil {
		t.Fatal(err)
	}
	set(peer.NodeID, api.PowerOff)
	k.Check(ctx)
	pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 200)
	if n, _, err := pc.ReadFrom(buf); err == nil {
		t.Fatalf("a packet while the peer's target is off: %x", buf[:n])
	}
	// The keeper restarts (zosd's handover, a reboot): it still knows
	// the sleeping peer. Its target on: a magic packet for its MAC.
	k = NewKeeper(deps)
	if st, _ := k.State(ctx); len(st.Asleep) != 1 || st.Asleep[0] != peer.NodeID {
		t.Fatalf("after a restart the keeper waits for %v, want [%d]", st.Asleep, peer.NodeID)
	}
	set(peer.NodeID, api.PowerOn)
	k.Check(ctx)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no Wake-on-LAN packet: %v", err)
	}
	mac, _ := net.ParseMAC("52:54:00:aa:bb:cc")
	if !bytes.Equal(buf[:n], MagicPacket(mac)) || n != 102 {
		t.Fatalf("packet %x", buf[:n])
	}
	// It answers: forgotten, nothing more sent.
	f.mu.Lock()
	f.up[peer.NodeID] = true
	f.mu.Unlock()
	k.Check(ctx)
	if st, _ := k.State(ctx); len(st.Asleep) != 0 {
		t.Fatalf("still waiting for %v", st.Asleep)
	}
	if st, _ := NewKeeper(deps).State(ctx); len(st.Asleep) != 0 {
		t.Fatalf("a restarted keeper still waits for %v", st.Asleep)
	}
	pc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, _, err := pc.ReadFrom(buf); err == nil {
		t.Fatal("a packet to a peer that is back")
	}
}

// TestWakeOnLANRefusesBadMACs: nothing usable to send is an error.
func TestWakeOnLANRefusesBadMACs(t *testing.T) {
	err := WakeOnLAN{Address: "127.0.0.1:9"}.Wake(context.Background(), []string{"not-a-mac", ""})
	if err == nil {
		t.Fatal("sent to no MAC without an error")
	}
}
