// Package managers makes the node's type managers, one per workload
// type, from the parts they work through: storaged for space, netlightd
// for networks. zosd's provisiond module gives it the bus stubs of those
// modules; the development program provisiond gives it the services in
// process. One place, so both run the same managers.
package managers

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/netlight"
	"github.com/grid4/grid4/node/provisiond/publicip"
	"github.com/grid4/grid4/node/provisiond/qsfs"
	"github.com/grid4/grid4/node/provisiond/volume"
	"github.com/grid4/grid4/node/provisiond/zlogs"
	"github.com/grid4/grid4/node/provisiond/zmachine"
	"github.com/grid4/grid4/node/provisiond/zmount"
	"github.com/grid4/grid4/node/storaged"
)

// Storage is storaged as the storage managers use it: storaged.Stub over
// the bus, *storaged.Service in process.
type Storage interface {
	zmount.Storage
}

// Networks is netlightd as the network managers use it: netlightd.Stub
// over the bus, *netlightd.Service in process.
type Networks interface {
	netlight.Networks
	publicip.Addresses
	zmachine.PublicIPs
}

// Config is what the managers work with.
type Config struct {
	// Dir holds what is not storaged's: QSFS processes' files, machine
	// logs, machine state.
	Dir string
	// Storage gives zmounts, volumes and QSFS caches their space.
	Storage Storage
	// Networks makes networks and public addresses.
	Networks Networks
	// Peers reach the other nodes of networks across nodes (noderpc.Stub
	// over the bus; nil: such networks fail with a clear error).
	Peers netlight.Peers
	// NodeID is this node's id.
	NodeID uint64
	// Flists mounts machines' flists (flistd.Stub over the bus; nil:
	// machines fail with "no flist mounter on this node").
	Flists zmachine.Flists
	// Machines and Containers run machines (vmd.Stub and contd.Stub over
	// the bus; nil: that kind is not available).
	Machines   zmachine.Machines
	Containers zmachine.Containers
	// MachineBackends are the kinds machines may run as, in order
	// (zmachine.DefaultBackends when empty).
	MachineBackends []zmachine.Kind
	// VolumeMode forces a volume enforcement ("": the best the host can).
	VolumeMode volume.Enforcement
	// Logger receives the managers' records.
	Logger *slog.Logger
}

// New makes one manager per workload type; close stops what they run in
// the process (log streams).
func New(c Config) (map[gridtypes.WorkloadType]provisiond.Manager, func(), error) {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	sub := func(name string) string { return filepath.Join(c.Dir, name) }
	zm, err := zmount.New(c.Storage)
	if err != nil {
		return nil, nil, err
	}
	vol, err := volume.New(volume.Config{Storage: c.Storage, Mode: c.VolumeMode})
	if err != nil {
		return nil, nil, err
	}
	if vol.Enforcement() == volume.Accounting {
		_, why := volume.Probe()
		c.Logger.Warn("volume sizes are measured, not enforced", "reason", why)
	}
	qs, err := qsfs.New(qsfs.Config{Dir: sub("qsfs"), Storage: c.Storage})
	if err != nil {
		return nil, nil, err
	}
	netl, err := netlight.New(netlight.Config{Networks: c.Networks, Peers: c.Peers, NodeID: c.NodeID, Logger: c.Logger.With("manager", "network-light")})
	if err != nil {
		return nil, nil, err
	}
	pip, err := publicip.New(c.Networks)
	if err != nil {
		return nil, nil, err
	}
	logDir := sub("logs")
	zl, err := zlogs.New(zlogs.Config{LogDir: logDir, Logger: c.Logger.With("manager", "zlogs")})
	if err != nil {
		return nil, nil, err
	}
	zmach, err := zmachine.New(zmachine.Config{
		Dir: sub("machines"), LogDir: logDir, Backends: c.MachineBackends,
		Machines: c.Machines, Containers: c.Containers, Flists: c.Flists,
		Storage: storageLocator{storage: c.Storage, qsfs: qs}, Public: c.Networks, Logger: c.Logger.With("manager", "zmachine"),
	})
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

// storageLocator finds the storage workloads machines mount: zmount
// images and volumes from storaged, QSFS mount points from their manager.
type storageLocator struct {
	storage Storage
	qsfs    *qsfs.Manager
}

// Locate implements zmachine.Storage.
func (s storageLocator) Locate(id string) (string, bool, error) {
	a, err := s.storage.Get(context.Background(), id)
	if err != nil {
		return "", false, err
	}
	switch a.Kind {
	case storaged.ZMount:
		return a.Path, true, nil
	case storaged.Volume:
		return volume.DataDir(a), false, nil
	}
	return s.qsfs.MountPoint(id), false, nil
}
