package zosd

import (
	"context"
	"errors"
	"path/filepath"
	"strings"

	"github.com/grid4/grid4/node/noderpc"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/registrar/client"
)

// runNodeRPC runs the node-to-node API: the node's ids from
// registrar_light, node records and keys from the registrar, farm.v1.status
// from powerd, networks across nodes from provisiond.
func runNodeRPC(ctx context.Context, e env) error {
	reg, err := client.New(e.cfg.Registrar, client.WithUserAgent("zosd/noderpc"))
	if err != nil {
		return err
	}
	return noderpc.Run(ctx, noderpc.ModuleConfig{
		Bus: e.bus, Registrar: reg,
		Registration: lightSelf{light: registrarlight.NewLightStub(e.bus), version: e.cfg},
		Power:        powerStatus{powerd.NewStub(e.bus)},
		Networks:     provisiond.NewStub(e.bus),
		Clock:        e.clock, Logger: e.log,
	})
}

// lightSelf adapts registrar_light to noderpc.Registration.
type lightSelf struct {
	light   registrarlight.LightStub
	version Config
}

// Self implements noderpc.Registration: the ids of the last registration,
// an error until there is one.
func (r lightSelf) Self(ctx context.Context) (noderpc.Self, error) {
	s, err := r.light.State(ctx)
	if err != nil {
		return noderpc.Self{}, err
	}
	if s.NodeID == 0 || s.TwinID == 0 {
		return noderpc.Self{}, errors.New("the node is not registered yet (" + string(s.Phase) + ")")
	}
	version, _ := r.version.installed().RunningVersion(ctx)
	return noderpc.Self{NodeID: s.NodeID, FarmID: s.FarmID, TwinID: s.TwinID, Version: version}, nil
}

// powerKeeper is powerd's power keeper: the target from the registrar,
// the deployments from provisiond, the farm through noderpc.
func (e env) powerKeeper() (*powerd.KeeperDeps, error) {
	reg, err := client.New(e.cfg.Registrar, client.WithUserAgent("zosd/powerd"))
	if err != nil {
		return nil, err
	}
	rpc := noderpc.NewStub(e.bus)
	return &powerd.KeeperDeps{
		Self: lightSelf{light: registrarlight.NewLightStub(e.bus), version: e.cfg}, Targets: reg,
		Workloads: deployments{provisiond.NewStub(e.bus)}, Peers: farmPeers{rpc},
		PowerOff:   powerd.CommandPowerOff{Argv: strings.Fields(e.cfg.PowerOffCommand)},
		Waker:      powerd.WakeOnLAN{Address: e.cfg.WakeAddress},
		Interval:   e.cfg.HealthInterval,
		AsleepFile: filepath.Join(e.cfg.DataDir, "powerd-asleep.json"),
	}, nil
}

// NodeID implements powerd.Self.
func (r lightSelf) NodeID(ctx context.Context) (uint64, error) {
	s, err := r.Self(ctx)
	return s.NodeID, err
}

// deployments adapts provisiond to powerd.Workloads: the deployments not
// deleted.
type deployments struct{ engine provisiond.Stub }

// Deployments implements powerd.Workloads.
func (d deployments) Deployments(ctx context.Context) (int, error) {
	st, err := d.engine.Statistics(ctx)
	return st.Deployments, err
}

// farmPeers adapts noderpc to powerd.FarmPeers.
type farmPeers struct{ rpc noderpc.Stub }

// GoingDown implements powerd.FarmPeers.
func (f farmPeers) GoingDown(ctx context.Context) error {
	_, err := f.rpc.GoingDown(ctx)
	return err
}

// Reachable implements powerd.FarmPeers: the node answers a ping.
func (f farmPeers) Reachable(ctx context.Context, nodeID uint64) bool {
	_, err := f.rpc.Ping(ctx, nodeID)
	return err == nil
}

// powerStatus adapts powerd to noderpc.Power.
type powerStatus struct{ power powerd.Stub }

// PeerDown implements noderpc.Power.
func (p powerStatus) PeerDown(ctx context.Context, node uint64, macs []string) error {
	return p.power.PeerDown(ctx, node, macs)
}

// Status implements noderpc.Power.
func (p powerStatus) Status(ctx context.Context) (noderpc.PowerStatus, error) {
	st, err := p.power.Status(ctx)
	if err != nil {
		return noderpc.PowerStatus{}, err
	}
	out := noderpc.PowerStatus{Uptime: st.Uptime, Healthy: st.Health.Healthy}
	for _, c := range st.Health.Checks {
		if !c.OK {
			out.Reasons = append(out.Reasons, c.Name+": "+c.Reason)
		}
	}
	return out, nil
}
