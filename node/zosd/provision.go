package zosd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
	"github.com/grid4/grid4/node/provisiond/publicip"
	"github.com/grid4/grid4/node/provisiond/qsfs"
	"github.com/grid4/grid4/node/provisiond/volume"
	"github.com/grid4/grid4/node/provisiond/zlogs"
	"github.com/grid4/grid4/node/provisiond/zmachine"
	"github.com/grid4/grid4/node/provisiond/zmount"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/zosapi"
	"github.com/grid4/grid4/registrar/client"
)

// ProvisionDir is provisiond's directory: the engine's queue and the
// workloads' files.
func (c Config) ProvisionDir() string { return filepath.Join(c.DataDir, "provision") }

// runProvision runs provisiond bound to the node: its ids and capacity
// come from registrar_light, twins' keys from the registrar.
func runProvision(ctx context.Context, e env) error {
	reg, err := client.New(e.cfg.Registrar, client.WithUserAgent("zosd/provisiond"))
	if err != nil {
		return err
	}
	managers, closeManagers, err := provisionManagers(e.cfg.ProvisionDir(), storaged.NewStub(e.bus), netlightd.NewStub(e.bus), e.log)
	if err != nil {
		return err
	}
	defer closeManagers()
	version, _ := e.cfg.installed().RunningVersion(ctx)
	return provisiond.Run(ctx, provisiond.ModuleConfig{
		Bus: e.bus, Dir: filepath.Join(e.cfg.ProvisionDir(), "engine"), Managers: managers,
		Registration: lightRegistration{registrarlight.NewLightStub(e.bus)},
		Keys:         zosapi.NewTwinKeyCache(reg, zosapi.KeyCacheConfig{}),
		Listen:       e.cfg.APIListen, Version: version,
		PublicIPv4: uint64(len(e.cfg.PublicIPs)),
		Clock:      e.clock, Logger: e.log,
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

// networks is what the network managers call: netlightd's stub.
type networks interface {
	netlight.Networks
	publicip.Addresses
}

// provisionManagers makes one manager per workload type, keeping their
// files under dir; zmounts, volumes and QSFS caches take their space from
// storaged, and the network ones call netlightd through nets (both over
// the bus).
func provisionManagers(dir string, storage storaged.Stub, nets networks, log *slog.Logger) (map[gridtypes.WorkloadType]provisiond.Manager, func(), error) {
	sub := func(name string) string { return filepath.Join(dir, name) }
	zm, err := zmount.New(storage)
	if err != nil {
		return nil, nil, err
	}
	vol, err := volume.New(volume.Config{Storage: storage})
	if err != nil {
		return nil, nil, err
	}
	qs, err := qsfs.New(qsfs.Config{Dir: sub("qsfs"), Storage: storage})
	if err != nil {
		return nil, nil, err
	}
	netl, err := netlight.New(nets)
	if err != nil {
		return nil, nil, err
	}
	pip, err := publicip.New(nets)
	if err != nil {
		return nil, nil, err
	}
	zl, err := zlogs.New(zlogs.Config{LogDir: sub("logs"), Logger: log.With("manager", "zlogs")})
	if err != nil {
		return nil, nil, err
	}
	zmach, err := zmachine.New(zmachine.Config{Dir: sub("machines"), LogDir: sub("logs")})
	if err != nil {
		return nil, nil, fmt.Errorf("zmachine: %w", err)
	}
	return map[gridtypes.WorkloadType]provisiond.Manager{
		gridtypes.ZMountType:        zm,
		gridtypes.VolumeType:        vol,
		gridtypes.QuantumSafeFSType: qs,
		gridtypes.NetworkLightType:  netl,
		gridtypes.PublicIPv4Type:    pip,
		gridtypes.ZMachineLightType: zmach,
		gridtypes.ZLogsType:         zl,
	}, zl.Close, nil
}
