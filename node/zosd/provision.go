package zosd

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/contd"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/noderpc"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/managers"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/vmd"
	"github.com/grid4/grid4/node/zosapi"
	"github.com/grid4/grid4/registrar/client"
)

// ProvisionDir is provisiond's directory: the engine's queue and the
// workloads' files.
func (c Config) ProvisionDir() string { return filepath.Join(c.DataDir, "provision") }

// runProvision runs provisiond bound to the node: its ids and capacity
// come from registrar_light, twins' keys and contracts from the
// registrar; usage reports go through registrar_gateway.
func runProvision(ctx context.Context, e env) error {
	reg, err := client.New(e.cfg.Registrar, client.WithUserAgent("zosd/provisiond"))
	if err != nil {
		return err
	}
	// The managers need the node's id (networks across nodes).
	registration := lightRegistration{registrarlight.NewLightStub(e.bus)}
	node, err := provisiond.WaitRegistered(ctx, registration, e.clock, e.log)
	if err != nil || ctx.Err() != nil {
		return err
	}
	tms, closeManagers, err := managers.New(managers.Config{
		Dir: e.cfg.ProvisionDir(), Storage: storaged.NewStub(e.bus), Networks: netlightd.NewStub(e.bus),
		Peers: noderpc.NewStub(e.bus), NodeID: node.NodeID,
		Flists: flistd.NewStub(e.bus), Machines: vmd.NewStub(e.bus), Containers: contd.NewStub(e.bus),
		MachineBackends: e.cfg.machineKinds(), Logger: e.log,
	})
	if err != nil {
		return err
	}
	defer closeManagers()
	version, _ := e.cfg.installed().RunningVersion(ctx)
	var contracts *provisiond.ContractSetup
	if e.cfg.Contracts == ContractsRequired {
		// Contracts are public reads; usage reports are signed as the
		// node, which only registrar_gateway does.
		contracts = &provisiond.ContractSetup{Source: reg, Usage: registrarlight.NewGatewayStub(e.bus), Poll: e.cfg.ContractPoll}
	}
	return provisiond.Run(ctx, provisiond.ModuleConfig{
		Bus: e.bus, Dir: filepath.Join(e.cfg.ProvisionDir(), "engine"), Managers: tms,
		Registration: registration,
		Keys:         zosapi.NewTwinKeyCache(reg, zosapi.KeyCacheConfig{}),
		Listen:       e.cfg.APIListen, Version: version, NodeRPC: noderpc.NewStub(e.bus),
		PublicIPv4: uint64(len(e.cfg.PublicIPs)), Contracts: contracts,
		Clock: e.clock, Logger: e.log,
	})
}

// lightRegistration adapts registrar_light to provisiond.Registration.
type lightRegistration struct{ light registrarlight.LightStub }

// Node implements provisiond.Registration: the ids and the capacity of
// the last registration, an error until there is one.
func (r lightRegistration) Node(ctx context.Context) (provisiond.Node, error) {
	s, err := r.light.State(ctx)
	if err != nil {
		return provisiond.Node{}, err
	}
	if s.NodeID == 0 || s.TwinID == 0 || s.Resources == nil {
		return provisiond.Node{}, errors.New("the node is not registered yet (" + string(s.Phase) + ")")
	}
	res := s.Resources
	return provisiond.Node{NodeID: s.NodeID, TwinID: s.TwinID, Resources: gridtypes.Resources{CRU: res.CRU, MRU: res.MRU, SRU: res.SRU, HRU: res.HRU}}, nil
}
