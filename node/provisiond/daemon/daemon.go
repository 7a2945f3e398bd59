// Package daemon is provisiond as a program of its own, for development
// (on a node, zosd runs the same module, provisiond.Run, bound to the
// node's registration): the provisioning engine with every type manager,
// and its user API, zos-api-light
// (JSON-RPC 2.0 over HTTP, every call signed by the caller's twin, whose
// key is looked up on the registrar). cmd/provisiond only calls Main.
//
//	provisiond --registrar URL [--listen :2021] [--data /var/lib/grid4/provision] ...
//
// Every flag can also be set with an environment variable
// PROVISIOND_<FLAG> (PROVISIOND_REGISTRAR, PROVISIOND_LISTEN, ...); a flag
// wins over its variable. Disks, volumes and QSFS caches take their space
// from storaged, run in process on <data>/storage. The node's capacity is
// CPUs and memory probed (node/hostinfo) and storaged's SRU and HRU, unless
// --cru, --mru, --sru and --hru give it. See docs/provisioning.md and
// docs/zos-api.md.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/envflag"
	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/managers"
	"github.com/grid4/grid4/node/provisiond/volume"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/zosapi"
	"github.com/grid4/grid4/registrar/client"
)

// config is what the flags say.
type config struct {
	version                       string
	listen, data, registrar       string
	cru                           uint64
	mru, sru, hru                 string
	reserveMRU, reserveSRU        string
	publicIface, publicIPs, pubGW string
	volumeMode                    string
	nodeID, twinID                uint64
	logLevel                      slog.Level
	busURL                        string
	ready                         func(addr string)
}

// envPrefix prefixes the environment variable of every flag: --registrar
// is PROVISIOND_REGISTRAR.
const envPrefix = "PROVISIOND_"

// program is how provisiond reads its flags and variables and writes
// --help.
var program = envflag.Program{
	Prefix:  envPrefix,
	Usage:   "Usage: provisiond --registrar URL [flags]\n\nThe provisioning engine and its user API, zos-api-light, on their own, for\ndevelopment. On a node zosd runs them as its provisiond module (docs/node.md).\n",
	Example: "registrar",
}

func parse(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("provisiond", flag.ContinueOnError)
	fs.StringVar(&c.listen, "listen", ":2021", "address of the API (JSON-RPC at /api/v1/rpc, metrics at /metrics)")
	fs.StringVar(&c.data, "data", "/var/lib/grid4/provision", "data directory (queue, disks, volumes, logs)")
	fs.StringVar(&c.registrar, "registrar", "", "registrar URL, where twins' keys are looked up (required)")
	fs.Uint64Var(&c.cru, "cru", 0, "vCPUs for workloads (0: probe the host)")
	fs.StringVar(&c.mru, "mru", "", "memory for workloads, e.g. 16GiB (empty: probe the host)")
	fs.StringVar(&c.sru, "sru", "", "SSD storage for workloads, e.g. 500GiB (empty: probe the host)")
	fs.StringVar(&c.hru, "hru", "", "HDD storage for workloads (empty: probe the host)")
	fs.StringVar(&c.reserveMRU, "reserve-mru", "2GiB", "memory kept for the node itself when probing")
	fs.StringVar(&c.reserveSRU, "reserve-sru", "50GiB", "SSD storage of storaged's pools kept for the node itself when probing")
	fs.StringVar(&c.publicIface, "public-interface", "", "host interface facing the public network (for ipv4 workloads)")
	fs.StringVar(&c.publicIPs, "public-ips", "", "comma-separated public addresses with prefix length, e.g. 185.69.166.150/24")
	fs.StringVar(&c.pubGW, "public-gateway", "", "gateway of the public network")
	fs.StringVar(&c.volumeMode, "volume-enforcement", "", "loop-ext4 or accounting (empty: loop-ext4 when the host can)")
	fs.Uint64Var(&c.nodeID, "node-id", 0, "this node's id, reported by node.version")
	fs.Uint64Var(&c.twinID, "twin-id", 0, "this node's twin, reported by node.version")
	fs.Var((*logflag.Level)(&c.logLevel), "log-level", "debug, info, warn or error")
	fs.StringVar(&c.busURL, "bus", "", "Redis URL of the node's bus, to serve "+provisiond.Object+" to other modules (empty: not served)")
	if err := program.Parse(fs, args, getenv, out); err != nil {
		return c, err
	}
	if c.registrar == "" {
		return c, errors.New("--registrar is required (twins' keys are looked up there)")
	}
	return c, nil
}

// Main runs provisiond with args (without the program name) and the
// environment getenv until ctx ends, and returns the exit code: 0, 1 when
// it fails, 2 for bad flags. version is what node.version reports.
func Main(ctx context.Context, version string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	c, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "provisiond: %v\n", err)
		return 2
	}
	c.version = version
	if err := serve(ctx, c, stderr); err != nil {
		fmt.Fprintf(stderr, "provisiond: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, c config, stderr io.Writer) error {
	log := logflag.New(stderr, c.logLevel, "text")

	reg, err := client.New(c.registrar, client.WithUserAgent("provisiond/"+c.version))
	if err != nil {
		return fmt.Errorf("--registrar: %w", err)
	}
	// storaged in process: the disks' space for the storage managers, and
	// the SRU and HRU offered.
	storage, err := storaged.New(storaged.Config{Dir: filepath.Join(c.data, "storage"), Logger: log.With("module", storaged.Module)})
	if err != nil {
		return err
	}
	capacity, err := capacityOf(c, storage)
	if err != nil {
		return err
	}
	tms, ipv4, closeManagers, err := buildManagers(c, storage, log)
	if err != nil {
		return err
	}
	defer closeManagers()
	m := provisiond.ModuleConfig{
		Dir: filepath.Join(c.data, "engine"), Managers: tms, PublicIPv4: ipv4,
		Registration: flagNode{nodeID: c.nodeID, twinID: c.twinID, capacity: capacity},
		Keys:         zosapi.NewTwinKeyCache(reg, zosapi.KeyCacheConfig{}),
		Listen:       c.listen, Version: c.version, Ready: c.ready,
		Logger: log.With("module", "provisiond"),
	}
	if c.busURL != "" {
		b, err := bus.Open(c.busURL, bus.Options{Logger: log.With("module", "bus")})
		if err != nil {
			return fmt.Errorf("--bus: %w", err)
		}
		defer b.Close()
		m.Bus = b
		log.Info("serving on the bus", "object", provisiond.Object)
	}
	return provisiond.Run(ctx, m)
}

// flagNode is the node as the flags describe it: ids from --node-id and
// --twin-id, capacity from the flags or the probe.
type flagNode struct {
	nodeID, twinID uint64
	capacity       provisiond.CapacityProvider
}

// Node implements provisiond.Registration.
func (n flagNode) Node(ctx context.Context) (provisiond.Node, error) {
	r, err := n.capacity.Total(ctx)
	return provisiond.Node{NodeID: n.nodeID, TwinID: n.twinID, Resources: r}, err
}

// buildManagers makes one manager per workload type and returns them
// with the size of the public IPv4 pool (the node's IPv4 capacity).
func buildManagers(c config, storage *storaged.Service, log *slog.Logger) (map[gridtypes.WorkloadType]provisiond.Manager, uint64, func(), error) {
	nets, err := networkService(c, log)
	if err != nil {
		return nil, 0, nil, err
	}
	tms, closeManagers, err := managers.New(managers.Config{
		Dir: c.data, Storage: storage, Networks: nets, VolumeMode: volume.Enforcement(c.volumeMode),
		Logger: log,
	})
	if err != nil {
		return nil, 0, nil, err
	}
	return tms, nets.PoolSize(), closeManagers, nil
}

// networkService is netlightd in process: the networks and the public
// pool of the flags, the host table rebuilt from its state.
func networkService(c config, log *slog.Logger) (*netlightd.Service, error) {
	nc := netlightd.Config{Dir: filepath.Join(c.data, "netlight"), PublicInterface: c.publicIface, HostForwarding: true, Logger: log.With("module", netlightd.Module)}
	for _, s := range strings.Split(c.publicIPs, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("--public-ips: %w", err)
		}
		nc.PublicPool = append(nc.PublicPool, p)
	}
	if c.pubGW != "" {
		gw, err := netip.ParseAddr(c.pubGW)
		if err != nil {
			return nil, fmt.Errorf("--public-gateway: %w", err)
		}
		nc.PublicGateway = gw
	}
	nets, err := netlightd.New(nc)
	if err != nil {
		return nil, err
	}
	if err := nets.Start(); err != nil {
		// Not fatal: the other workload types still work, and the
		// network workloads fail with the reason.
		log.Warn("network rules not restored", "err", err)
	}
	return nets, nil
}

// capacityOf is the configured capacity, or the probed one: CPU and
// memory from the host, SRU and HRU from storage's pools.
func capacityOf(c config, storage *storaged.Service) (provisiond.CapacityProvider, error) {
	size := func(flagName, v string) (uint64, error) {
		if v == "" {
			return 0, nil
		}
		n, err := flagvalue.ParseSize(v)
		if err != nil {
			return 0, fmt.Errorf("--%s: %w", flagName, err)
		}
		return n, nil
	}
	var r gridtypes.Resources
	var err error
	r.CRU = c.cru
	if r.MRU, err = size("mru", c.mru); err != nil {
		return nil, err
	}
	if r.SRU, err = size("sru", c.sru); err != nil {
		return nil, err
	}
	if r.HRU, err = size("hru", c.hru); err != nil {
		return nil, err
	}
	if r.CRU != 0 || r.MRU != 0 || r.SRU != 0 || r.HRU != 0 {
		return provisiond.FixedCapacity(r), nil
	}
	var reserved gridtypes.Resources
	if reserved.MRU, err = size("reserve-mru", c.reserveMRU); err != nil {
		return nil, err
	}
	reserveSRU, err := size("reserve-sru", c.reserveSRU)
	if err != nil {
		return nil, err
	}
	prober, err := hostinfo.New(hostinfo.Config{})
	if err != nil {
		return nil, err
	}
	return storageCapacity{host: provisiond.NewHostCapacity(prober, reserved, 0, 0, nil), storage: storage, reserveSRU: reserveSRU}, nil
}

// storageCapacity is the host's probed CPU and memory with the SRU (less
// reserveSRU) and HRU of storaged's pools, as a node registers them.
type storageCapacity struct {
	host       provisiond.CapacityProvider
	storage    *storaged.Service
	reserveSRU uint64
}

// Total implements provisiond.CapacityProvider.
func (s storageCapacity) Total(ctx context.Context) (gridtypes.Resources, error) {
	r, err := s.host.Total(ctx)
	if err != nil {
		return r, err
	}
	c, err := s.storage.Capacity(ctx)
	if err != nil {
		return gridtypes.Resources{}, err
	}
	r.SRU, r.HRU = c.SRU-min(c.SRU, s.reserveSRU), c.HRU
	return r, nil
}
