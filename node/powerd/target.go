package powerd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/registrar/api"
)

// Self tells powerd which node it runs on (registrar_light, adapted by
// zosd); an error until the node is registered.
type Self interface {
	NodeID(ctx context.Context) (uint64, error)
}

// Targets reads power targets: the registrar's client.
type Targets interface {
	PowerTarget(ctx context.Context, nodeID uint64) (api.NodePower, error)
}

// Workloads counts the deployments the node hosts (provisiond).
type Workloads interface {
	Deployments(ctx context.Context) (int, error)
}

// FarmPeers is the node-to-node API as powerd uses it (the noderpc
// module): tell the farm this node goes down, and see whether a node
// answers.
type FarmPeers interface {
	GoingDown(ctx context.Context) error
	Reachable(ctx context.Context, nodeID uint64) bool
}

// PowerOff powers the host off. CommandPowerOff runs the host's
// poweroff; tests stop zosd instead.
type PowerOff interface {
	PowerOff(ctx context.Context) error
}

// Waker wakes a host by its MAC addresses (WakeOnLAN).
type Waker interface {
	Wake(ctx context.Context, macs []string) error
}

// CommandPowerOff powers off by running Argv (the host's poweroff, which
// stops the services, zosd among them, and the machine).
type CommandPowerOff struct{ Argv []string }

// PowerOff runs the command.
func (c CommandPowerOff) PowerOff(ctx context.Context) error {
	if len(c.Argv) == 0 {
		return fmt.Errorf("power off: no command")
	}
	out, err := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("power off: %s: %w: %s", strings.Join(c.Argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// DefaultWakeAddress is where Wake-on-LAN packets go: the limited
// broadcast of the segment, the discard port.
const DefaultWakeAddress = "255.255.255.255:9"

// WakeOnLAN sends magic packets (6 bytes 0xff, then the MAC 16 times) as
// UDP broadcasts to Address (DefaultWakeAddress when empty).
type WakeOnLAN struct{ Address string }

// MagicPacket is the Wake-on-LAN packet of mac.
func MagicPacket(mac net.HardwareAddr) []byte {
	p := make([]byte, 0, 6+16*len(mac))
	for range 6 {
		p = append(p, 0xff)
	}
	for range 16 {
		p = append(p, mac...)
	}
	return p
}

// Wake sends one magic packet per MAC.
func (w WakeOnLAN) Wake(ctx context.Context, macs []string) error {
	addr := w.Address
	if addr == "" {
		addr = DefaultWakeAddress
	}
	to, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return fmt.Errorf("wake-on-lan address %q: %w", addr, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := lc.ListenPacket(ctx, "udp4", ":0")
	if err != nil {
		return fmt.Errorf("wake-on-lan: %w", err)
	}
	defer conn.Close()
	sent := 0
	for _, m := range macs {
		mac, err := net.ParseMAC(m)
		if err != nil || len(mac) != 6 {
			continue
		}
		if _, err := conn.WriteTo(MagicPacket(mac), to); err != nil {
			return fmt.Errorf("wake-on-lan to %s: %w", addr, err)
		}
		sent++
	}
	if sent == 0 {
		return fmt.Errorf("wake-on-lan: no usable MAC address in %q", macs)
	}
	return nil
}

// KeeperDeps are what the power keeper works with.
type KeeperDeps struct {
	Self      Self
	Targets   Targets
	Workloads Workloads
	Peers     FarmPeers
	PowerOff  PowerOff
	Waker     Waker
	// Interval is how often the targets are read (DefaultCheckInterval
	// when 0).
	Interval time.Duration
	// AsleepFile keeps the peers that went down across restarts of the
	// keeper (zosd's handovers, the node's reboots): a keeper that
	// forgot them would never wake them. Empty: kept in memory only.
	AsleepFile string
	Clock      clock.Clock
	Logger     *slog.Logger
}

// Keeper follows the node's power target, set by the farmer on the
// registrar: a node whose target is off and which hosts no deployment
// tells its farm peers and powers off; one with deployments refuses and
// says so. It also wakes the peers that told it they went down, once
// their target is on again, until they answer.
type Keeper struct {
	d KeeperDeps

	mu     sync.Mutex
	state  PowerState
	asleep map[uint64][]string // peers that went down: their MACs
}

// PowerState is what the keeper last did (the Power bus method).
type PowerState struct {
	// Target is the node's power target as last read.
	Target string `json:"target"`
	// Refused says why the node did not power off (it hosts
	// deployments); empty otherwise.
	Refused string `json:"refused,omitempty"`
	// PoweringOff is set once the node started powering off.
	PoweringOff bool `json:"powering_off,omitempty"`
	// Asleep are the peers that went down, waited on to wake.
	Asleep []uint64 `json:"asleep,omitempty"`
}

// NewKeeper returns a keeper over d.
func NewKeeper(d KeeperDeps) *Keeper {
	if d.Interval <= 0 {
		d.Interval = DefaultCheckInterval
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	k := &Keeper{d: d, asleep: map[uint64][]string{}, state: PowerState{Target: api.PowerOn}}
	if d.AsleepFile != "" {
		b, err := os.ReadFile(d.AsleepFile)
		if err == nil {
			err = json.Unmarshal(b, &k.asleep)
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			d.Logger.Error("reading the sleeping peers: they are not woken", "file", d.AsleepFile, "err", err)
			k.asleep = map[uint64][]string{}
		}
	}
	return k
}

// PeerDown records that a node of the farm went down on purpose, with
// its MAC addresses, to wake it when its target is on again.
func (k *Keeper) PeerDown(_ context.Context, nodeID uint64, macs []string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.asleep[nodeID] = macs
	k.d.Logger.Info("a peer of the farm went down", "node", nodeID, "macs", macs)
	return k.saveAsleep()
}

// saveAsleep writes the sleeping peers to AsleepFile (k.mu held).
func (k *Keeper) saveAsleep() error {
	if k.d.AsleepFile == "" {
		return nil
	}
	b, err := json.Marshal(k.asleep)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(k.d.AsleepFile, b, 0o600); err != nil {
		return fmt.Errorf("powerd: keeping the sleeping peers: %w", err)
	}
	return nil
}

// State returns what the keeper last did.
func (k *Keeper) State(context.Context) (PowerState, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.state
	for id := range k.asleep {
		s.Asleep = append(s.Asleep, id)
	}
	return s, nil
}

// Run checks the targets every Interval until ctx ends.
func (k *Keeper) Run(ctx context.Context) error {
	for {
		k.Check(ctx)
		if clock.Sleep(ctx, k.d.Clock, k.d.Interval) != nil {
			return nil
		}
	}
}

// Check does one round: the node's own target, then its sleeping peers.
func (k *Keeper) Check(ctx context.Context) {
	k.own(ctx)
	k.wakePeers(ctx)
}

// own follows the node's own target.
func (k *Keeper) own(ctx context.Context) {
	log := k.d.Logger
	k.mu.Lock()
	off := k.state.PoweringOff
	k.mu.Unlock()
	if off {
		return
	}
	id, err := k.d.Self.NodeID(ctx)
	if err != nil {
		return // not registered yet: no target
	}
	t, err := k.d.Targets.PowerTarget(ctx, id)
	if err != nil {
		log.Warn("reading the power target", "err", err)
		return
	}
	refused := ""
	defer func() {
		k.mu.Lock()
		k.state.Target, k.state.Refused = t.PowerTarget, refused
		k.mu.Unlock()
	}()
	if t.PowerTarget != api.PowerOff {
		return
	}
	n, err := k.d.Workloads.Deployments(ctx)
	switch {
	case err != nil:
		refused = "cannot count the deployments: " + err.Error()
	case n > 0:
		refused = fmt.Sprintf("the node hosts %d deployment(s): it powers off only when idle", n)
	}
	if refused != "" {
		log.Warn("not powering off", "reason", refused)
		return
	}
	if err := k.d.Peers.GoingDown(ctx); err != nil {
		log.Warn("telling the farm the node goes down", "err", err)
	}
	log.Warn("powering off: the farmer's power target is off and the node is idle")
	k.mu.Lock()
	k.state.PoweringOff = true
	k.mu.Unlock()
	if err := k.d.PowerOff.PowerOff(ctx); err != nil {
		log.Error("powering off", "err", err)
		k.mu.Lock()
		k.state.PoweringOff = false
		k.mu.Unlock()
	}
}

// wakePeers sends Wake-on-LAN to the sleeping peers whose target is on,
// until they answer.
func (k *Keeper) wakePeers(ctx context.Context) {
	k.mu.Lock()
	asleep := make(map[uint64][]string, len(k.asleep))
	for id, m := range k.asleep {
		asleep[id] = m
	}
	k.mu.Unlock()
	for id, macs := range asleep {
		t, err := k.d.Targets.PowerTarget(ctx, id)
		if err != nil || t.PowerTarget != api.PowerOn {
			continue
		}
		if k.d.Peers.Reachable(ctx, id) {
			k.d.Logger.Info("a peer of the farm is back", "node", id)
			k.mu.Lock()
			delete(k.asleep, id)
			if err := k.saveAsleep(); err != nil {
				k.d.Logger.Warn("forgetting a peer that is back", "node", id, "err", err)
			}
			k.mu.Unlock()
			continue
		}
		if err := k.d.Waker.Wake(ctx, macs); err != nil {
			k.d.Logger.Warn("waking a peer", "node", id, "err", err)
			continue
		}
		k.d.Logger.Info("sent Wake-on-LAN", "node", id, "macs", macs)
	}
}
