package zosd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/envflag"
	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/contd"
	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/internal/geoip"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/location"
	"github.com/grid4/grid4/node/netlightd"
	"github.com/grid4/grid4/node/noded"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/node/vmd"
	"github.com/grid4/grid4/registrar/api"
)

// Values of --contracts.
const (
	// ContractsRequired: deployments need a contract (the default).
	ContractsRequired = "required"
	// ContractsOff: any twin may deploy anything the node can hold, and
	// nothing is reported or billed.
	ContractsOff = "off"
)

// EnvPrefix prefixes the environment variable of every flag: --farm is
// ZOSD_FARM.
const EnvPrefix = "ZOSD_"

// EnvName returns the environment variable read for flag name.
func EnvName(flagName string) string { return envflag.Name(EnvPrefix, flagName) }

// Defaults of Config that are not another package's.
const (
	DefaultDataDir   = "/var/lib/zosd"
	DefaultGeoIPURL  = "https://geoip.grid.tf/"
	DefaultBusPrefix = "bus:"
)

// ErrUsage marks a command-line error (exit status 2).
var ErrUsage = errors.New("usage")

// errHelp is returned when -h or --help was given (exit status 0).
var errHelp = flag.ErrHelp

// Config is every setting of zosd and its modules.
type Config struct {
	// Registrar is the registrar's URL.
	Registrar string
	// Farm is the node's farm id.
	Farm uint64
	// DataDir holds the identity, the private Redis and the run file.
	DataDir string
	// DataDisks get a copy of the identity each.
	DataDisks []string
	// Interface is the management interface ("": the default route's).
	Interface string
	// Redis is the bus's Redis URL ("": a private redis-server).
	Redis string
	// BusPrefix prefixes every bus key (nodes sharing a Redis need one
	// each).
	BusPrefix string
	// RedisServer is the redis-server program for the private Redis.
	RedisServer string
	// HostRoot is where /proc and /sys are read (tests use fixture trees).
	HostRoot string

	// GeoIPURL is the geoip service ("" or "none": fallback only).
	GeoIPURL string
	// Fallback is the location used when geoip fails.
	Fallback api.Location
	// LocationRefresh is how long a geoip answer is reused.
	LocationRefresh time.Duration

	// The registration schedule (registrar_light).
	AccountCheck, Update, Uptime, UptimeMin, RetryMin, RetryMax time.Duration
	// AuthScheme is "v2" (signed requests v2) or "legacy" (X-Auth).
	AuthScheme string
	// ZosVersion is reported to the registrar when set.
	ZosVersion string

	// AddressPoll is how often noded re-reads the management addresses.
	AddressPoll time.Duration
	// HealthInterval is how often powerd re-evaluates health for its log.
	HealthInterval time.Duration
	// PowerOffCommand is what powerd runs to power the host off (its
	// fields: no shell), when the farmer's power target is off and the
	// node is idle.
	PowerOffCommand string
	// WakeAddress is where powerd sends Wake-on-LAN packets to wake a
	// peer of the farm (the segment's broadcast, port 9).
	WakeAddress string
	// MinFreeDisk is the least free space of the data directory for a
	// healthy node, in bytes; storaged keeps it out of the pool on the
	// data directory's disk.
	MinFreeDisk uint64
	// DiskTypes forces the kind of disks by name (storaged), for disks
	// whose rotational flag and seek benchmark mislead.
	DiskTypes map[string]hostinfo.DiskKind
	// ClaimDisks are whole disks storaged may format as pools of their
	// own (only empty ones).
	ClaimDisks []string

	// Hub is the hub releases are installed from ("": the node does not
	// upgrade).
	Hub string
	// UpgradePublisher and UpgradeRepo name the hub repository whose tags
	// are the ZOS versions; UpgradePublisherKey is the publisher's public
	// key (hex, base64 or SS58), the only key a release is accepted from.
	UpgradePublisher, UpgradeRepo, UpgradePublisherKey string
	// UpgradeFirstCheck, UpgradeInterval and UpgradeJitter are the
	// upgrader's schedule: the first check after a start, then every
	// interval plus up to the jitter.
	UpgradeFirstCheck, UpgradeInterval, UpgradeJitter time.Duration
	// UpgradeHealthDeadline bounds the wait for a new generation to be
	// healthy; UpgradeHealthStable is how long every module must have run
	// on it.
	UpgradeHealthDeadline, UpgradeHealthStable time.Duration

	// RestartMin and RestartMax bound the backoff of module restarts.
	RestartMin, RestartMax time.Duration
	// APIListen is where zos-api-light listens (provisiond).
	APIListen string
	// Contracts is ContractsRequired (a deployment runs only under a
	// registrar contract that allows it; the node follows its contracts
	// and reports their usage) or ContractsOff (any twin may deploy).
	Contracts string
	// ContractPoll is how often provisiond reads the node's contracts and
	// reports usage (at most provisiond.MaxContractPoll).
	ContractPoll time.Duration
	// PublicInterface, PublicIPs (addresses with their prefix length)
	// and PublicGateway are the node's public IPv4 network, given out by
	// netlightd to ipv4 workloads; the pool's size is the IPv4 capacity.
	PublicInterface string
	PublicIPs       []string
	PublicGateway   string
	// NetSalt is mixed into the names of netlightd's namespaces, links
	// and nftables table: only nodes sharing a host (tests) need one.
	NetSalt string
	// MeshPorts are the UDP ports networks across nodes listen on, one
	// per network (netlightd.DefaultMeshPorts).
	MeshPorts netlightd.PortRange
	// MachineBackends are what machines may run on, in order of
	// preference: vmd's cloud-hypervisor, qemu-kvm, qemu-tcg, and
	// container (contd), which isolates less and runs only where named
	// (empty: DefaultMachineBackends).
	MachineBackends []string
	// MachineKernel is the kernel directory virtual machines boot when
	// their image brings none (vmd.Config.Kernel; "": vmd.DefaultKernel).
	MachineKernel string
	// MachineInit is the guest init (cmd/g4init) put in every virtual
	// machine ("": g4init next to zosd, then in PATH).
	MachineInit string
	// APIURL is zos-api-light's public URL, published in the node's
	// registration ("": derived from APIListen and the management
	// interface's addresses, see registrarlight.APIEndpoints).
	APIURL string
	// Capacity overrides the measured capacity field by field (zero: the
	// measured figure); the node registers it and offers it to workloads.
	Capacity api.Resources

	// InProcess runs the modules as goroutines of zosd instead of
	// processes.
	InProcess bool

	LogLevel  slog.Level
	LogFormat string
}

// DefaultConfig returns the defaults: the seed's schedule.
func DefaultConfig() Config {
	return Config{
		DataDir:               DefaultDataDir,
		BusPrefix:             DefaultBusPrefix,
		RedisServer:           "redis-server",
		HostRoot:              "/",
		GeoIPURL:              DefaultGeoIPURL,
		LocationRefresh:       location.DefaultTTL,
		AccountCheck:          registrarlight.DefaultAccountCheck,
		Update:                registrarlight.DefaultUpdate,
		Uptime:                registrarlight.DefaultUptime,
		UptimeMin:             registrarlight.DefaultUptimeMin,
		RetryMin:              registrarlight.DefaultRetryMin,
		RetryMax:              registrarlight.DefaultRetryMax,
		AuthScheme:            "v2",
		AddressPoll:           noded.DefaultPollInterval,
		HealthInterval:        powerd.DefaultCheckInterval,
		PowerOffCommand:       "poweroff",
		WakeAddress:           powerd.DefaultWakeAddress,
		MinFreeDisk:           powerd.DefaultMinFree,
		UpgradePublisher:      upgrader.DefaultPublisher,
		UpgradeRepo:           upgrader.DefaultRepo,
		UpgradeInterval:       upgrader.DefaultInterval,
		UpgradeJitter:         upgrader.DefaultMaxJitter,
		UpgradeHealthDeadline: upgrader.DefaultHealthDeadline,
		UpgradeHealthStable:   upgrader.DefaultStable,
		RestartMin:            supervisor.DefaultRestartMin,
		RestartMax:            supervisor.DefaultRestartMax,
		APIListen:             provisiond.DefaultListen,
		MeshPorts:             netlightd.DefaultMeshPorts,
		Contracts:             ContractsRequired,
		ContractPoll:          provisiond.DefaultContractPoll,
		LogLevel:              slog.LevelInfo,
		LogFormat:             "text",
	}
}

// SeedFile is the primary seed file of the identity.
func (c Config) SeedFile() string { return filepath.Join(c.DataDir, "identity.seed") }

// RunFile is where a running zosd says how to reach its bus.
func (c Config) RunFile() string { return filepath.Join(c.DataDir, "zosd.run") }

// LockFile keeps two zosd off one data directory.
func (c Config) LockFile() string { return filepath.Join(c.DataDir, "zosd.lock") }

// StorageDir is storaged's directory: its state and the data
// directory's pool.
func (c Config) StorageDir() string { return filepath.Join(c.DataDir, "storage") }

// storageConfig is storaged's configuration.
func (c Config) storageConfig() storaged.Config {
	return storaged.Config{Dir: c.StorageDir(), HostRoot: c.HostRoot, Types: c.DiskTypes, Claims: c.ClaimDisks, Reserve: c.MinFreeDisk}
}

// UpgradeDir is the upgrader's directory: generations, packages, the
// current link and its state.
func (c Config) UpgradeDir() string { return filepath.Join(c.DataDir, "upgrade") }

// FlistDir is flistd's directory: the block cache the upgrader shares,
// the flists' read-only trees, the mounts' writable layers and their
// record.
func (c Config) FlistDir() string { return filepath.Join(c.DataDir, "flist") }

// flistConfig is flistd's configuration: mount targets are under the data
// directory (provisiond's machines).
func (c Config) flistConfig(log *slog.Logger) flistd.ModuleConfig {
	return flistd.ModuleConfig{
		Flists: flistd.Config{HubURL: c.Hub, CacheDir: filepath.Join(c.FlistDir(), "cache")},
		Mounts: flistd.MounterConfig{Dir: c.FlistDir(), Root: c.DataDir},
		Logger: log,
	}
}

// installed reads what the upgrade directory says the node runs.
func (c Config) installed() upgrader.Installed {
	return upgrader.Installed{Dir: c.UpgradeDir(), Base: c.ZosVersion}
}

// RedisSocket is the private Redis's socket.
func (c Config) RedisSocket() string { return filepath.Join(c.DataDir, "redis.sock") }

// LocationConfig is the location module's configuration.
func (c Config) LocationConfig() geoip.Config {
	fb := c.Fallback
	return geoip.Config{URL: c.GeoIPURL, Fallback: &fb}
}

// publicNetwork parses the public IPv4 settings.
func (c Config) publicNetwork() (netlightd.Config, error) {
	nc := netlightd.Config{PublicInterface: c.PublicInterface}
	if c.PublicInterface != "" && !validIfName(c.PublicInterface) {
		return nc, fmt.Errorf("--public-interface %q is not a network interface name", c.PublicInterface)
	}
	for _, s := range c.PublicIPs {
		p, err := netip.ParsePrefix(s)
		if err != nil || !p.Addr().Is4() {
			return nc, fmt.Errorf("--public-ip %q: want an IPv4 address with its prefix length (185.69.166.150/24)", s)
		}
		nc.PublicPool = append(nc.PublicPool, p)
	}
	if c.PublicGateway != "" {
		gw, err := netip.ParseAddr(c.PublicGateway)
		if err != nil || !gw.Is4() {
			return nc, fmt.Errorf("--public-gateway %q: want an IPv4 address", c.PublicGateway)
		}
		nc.PublicGateway = gw
	}
	return nc, nil
}

// networkConfig is netlightd's configuration (validate checked it).
func (c Config) networkConfig(log *slog.Logger) netlightd.Config {
	nc, _ := c.publicNetwork()
	nc.Dir, nc.Salt, nc.HostForwarding, nc.Logger = filepath.Join(c.DataDir, "netlight"), c.NetSalt, true, log
	nc.MeshPorts = c.MeshPorts
	return nc
}

// containersConfig is contd's configuration: its directory, and
// netlightd's salt in its names (nodes sharing a host keep apart).
func (c Config) containersConfig() contd.Config {
	return contd.Config{Dir: filepath.Join(c.DataDir, "contd"), Salt: c.NetSalt}
}

// machinesConfig is vmd's configuration: its directory, the virtual
// machine backends of --machine-backends, netlightd's salt in its names.
func (c Config) machinesConfig() vmd.Config {
	return vmd.Config{
		Dir: filepath.Join(c.DataDir, "vmd"), Backends: c.vmBackends(), Kernel: c.MachineKernel, Init: c.MachineInit, Salt: c.NetSalt,
	}
}

// flagSet declares the node's flags on fs, bound to c.
func (c *Config) flagSet(fs *flag.FlagSet) {
	fs.StringVar(&c.Registrar, "registrar", c.Registrar, "registrar URL, e.g. https://registrar.example.org (required)")
	fs.Var((*uintValue)(&c.Farm), "farm", "farm id of the node (required)")
	fs.StringVar(&c.DataDir, "data", c.DataDir, "data directory: identity, private Redis, run file")
	fs.Var((*listValue)(&c.DataDisks), "data-disk", "mount point of a data disk that keeps a copy of the identity (repeatable, or comma separated)")
	fs.StringVar(&c.Interface, "interface", c.Interface, "management interface (default: the interface of the default route)")
	fs.StringVar(&c.Redis, "redis", c.Redis, "Redis of the bus: redis://host:port/db or unix:///path.sock (default: a private redis-server in the data directory)")
	fs.StringVar(&c.BusPrefix, "bus-prefix", c.BusPrefix, "prefix of every bus key in Redis (give each node sharing a Redis its own)")
	fs.StringVar(&c.RedisServer, "redis-server", c.RedisServer, "redis-server program for the private Redis")
	fs.StringVar(&c.HostRoot, "host-root", c.HostRoot, "directory /proc and /sys are read under")
	fs.StringVar(&c.GeoIPURL, "geoip-url", c.GeoIPURL, `geoip service URL ("none": use the fallback location only)`)
	fs.StringVar(&c.Fallback.Country, "country", c.Fallback.Country, "fallback location: country")
	fs.StringVar(&c.Fallback.City, "city", c.Fallback.City, "fallback location: city")
	fs.StringVar(&c.Fallback.Latitude, "latitude", c.Fallback.Latitude, "fallback location: latitude (decimal)")
	fs.StringVar(&c.Fallback.Longitude, "longitude", c.Fallback.Longitude, "fallback location: longitude (decimal)")
	fs.Var((*flagvalue.Duration)(&c.LocationRefresh), "location-refresh", "how long a geoip answer is reused")
	fs.Var((*flagvalue.Duration)(&c.AccountCheck), "account-check-interval", "how often the account and the registration are checked")
	fs.Var((*flagvalue.Duration)(&c.Update), "update-interval", "how often the node's information is sent again")
	fs.Var((*flagvalue.Duration)(&c.Uptime), "uptime-interval", "how often uptime is reported when the registrar does not say (next_report_in)")
	fs.Var((*flagvalue.Duration)(&c.UptimeMin), "uptime-min-interval", "shortest wait between uptime reports, whatever the registrar says")
	fs.Var((*flagvalue.Duration)(&c.RetryMin), "retry-min", "first wait after a failed registrar call (doubles up to --retry-max)")
	fs.Var((*flagvalue.Duration)(&c.RetryMax), "retry-max", "longest wait between retries of a failed registrar call")
	fs.StringVar(&c.AuthScheme, "auth", c.AuthScheme, "how requests to the registrar are signed: v2 or legacy (X-Auth)")
	fs.StringVar(&c.ZosVersion, "zos-version", c.ZosVersion, "version reported to the registrar (vMAJOR.MINOR.PATCH; empty: none)")
	fs.Var((*flagvalue.Duration)(&c.AddressPoll), "address-poll", "how often the management addresses are re-read (netlink wakes it sooner)")
	fs.Var((*flagvalue.Duration)(&c.HealthInterval), "health-interval", "how often powerd re-evaluates health for its log")
	fs.StringVar(&c.PowerOffCommand, "power-off-command", c.PowerOffCommand, "command powerd runs to power the host off when the farmer's power target is off and the node hosts no deployment (split on spaces, no shell)")
	fs.StringVar(&c.WakeAddress, "wake-address", c.WakeAddress, "UDP address powerd sends Wake-on-LAN packets to, to wake a node of the farm (the segment's broadcast)")
	fs.Var((*flagvalue.Size)(&c.MinFreeDisk), "min-free-disk", "least free space in the data directory for a healthy node (e.g. 100MiB)")
	fs.Var((*diskTypesValue)(&c.DiskTypes), "disk-type", "kind of a disk by its /sys/block name, NAME=ssd or NAME=hdd (repeatable, or comma separated): overrides its rotational flag and seek benchmark")
	fs.Var((*listValue)(&c.ClaimDisks), "claim-disk", "block device (/dev/sdb) storaged may format and use whole as a storage pool; only a disk with no partitions, file system or other signature is formatted (repeatable, or comma separated)")
	fs.StringVar(&c.Hub, "hub", c.Hub, "hub URL releases are installed from (empty: the node does not upgrade)")
	fs.StringVar(&c.UpgradePublisher, "upgrade-publisher", c.UpgradePublisher, "hub publisher of the ZOS releases")
	fs.StringVar(&c.UpgradeRepo, "upgrade-repo", c.UpgradeRepo, "hub repository of the ZOS releases (its tags are the versions)")
	fs.StringVar(&c.UpgradePublisherKey, "upgrade-publisher-key", c.UpgradePublisherKey, "public key of the publisher (hex, base64 or SS58): a release is installed only if it signed it (required with --hub)")
	fs.Var((*flagvalue.Duration)(&c.UpgradeFirstCheck), "upgrade-first-check", "wait before the first version check after a start")
	fs.Var((*flagvalue.Duration)(&c.UpgradeInterval), "upgrade-interval", "how often the registrar's version is checked")
	fs.Var((*flagvalue.Duration)(&c.UpgradeJitter), "upgrade-jitter", "longest random wait added to each --upgrade-interval")
	fs.Var((*flagvalue.Duration)(&c.UpgradeHealthDeadline), "upgrade-health-deadline", "how long a new generation has to come up healthy before the node switches back")
	fs.Var((*flagvalue.Duration)(&c.UpgradeHealthStable), "upgrade-health-stable", "how long every module must have run on a new generation for it to be healthy")
	fs.Var((*flagvalue.Duration)(&c.RestartMin), "restart-min", "first wait before restarting a module that died (doubles up to --restart-max)")
	fs.Var((*flagvalue.Duration)(&c.RestartMax), "restart-max", "longest wait before restarting a module that died")
	fs.StringVar(&c.APIListen, "api-listen", c.APIListen, "address zos-api-light (the users' API) listens on")
	fs.StringVar(&c.Contracts, "contracts", c.Contracts, "required: a deployment runs only under a registrar contract that allows it, and the node follows its contracts and reports their usage; off: any twin may deploy (docs/contracts.md)")
	fs.Var((*flagvalue.Duration)(&c.ContractPoll), "contract-poll", "how often the node reads its contracts from the registrar and reports usage (at most 5m)")
	fs.StringVar(&c.PublicInterface, "public-interface", c.PublicInterface, "host interface facing the public IPv4 network (ipv4 workloads get macvlans of it)")
	fs.Var((*listValue)(&c.PublicIPs), "public-ip", "public IPv4 address with its prefix length given to ipv4 workloads, e.g. 185.69.166.150/24 (repeatable, or comma separated)")
	fs.StringVar(&c.PublicGateway, "public-gateway", c.PublicGateway, "router of the public IPv4 network")
	fs.StringVar(&c.NetSalt, "net-salt", c.NetSalt, "mixed into the names of network namespaces, links and the nftables table (only nodes sharing a host need one)")
	fs.Var(&c.MeshPorts, "mesh-ports", "UDP ports (FIRST-LAST) of networks across nodes, one per network")
	fs.StringVar(&c.APIURL, "api-url", c.APIURL, "public URL of zos-api-light published in the registration, e.g. https://node.example.org/api/v1/rpc (default: http://ADDRESS:PORT/api/v1/rpc for each address of the management interface)")
	fs.Var((*listValue)(&c.MachineBackends), "machine-backends", "what machines may run on, in order of preference: cloud-hypervisor, qemu-kvm, qemu-tcg (emulated: slow, on any host), container (weaker isolation: only where named); comma separated (default cloud-hypervisor,qemu-kvm,qemu-tcg)")
	fs.StringVar(&c.MachineKernel, "machine-kernel", c.MachineKernel, "kernel directory virtual machines boot when their image brings none: boot/vmlinuz-VERSION and lib/modules/VERSION/ (default "+vmd.DefaultKernel+", where scripts/machine-kernel.sh unpacks one)")
	fs.StringVar(&c.MachineInit, "machine-init", c.MachineInit, "guest init put in every virtual machine, a static build of cmd/g4init (default: g4init next to zosd, then in PATH)")
	fs.Var((*uintValue)(&c.Capacity.CRU), "cru", "vCPUs registered and offered to workloads (0: measured)")
	fs.Var((*flagvalue.Size)(&c.Capacity.MRU), "mru", "memory registered and offered to workloads, e.g. 16GiB (0: measured)")
	fs.Var((*flagvalue.Size)(&c.Capacity.SRU), "sru", "SSD storage registered and offered to workloads (0: measured)")
	fs.Var((*flagvalue.Size)(&c.Capacity.HRU), "hru", "HDD storage registered and offered to workloads (0: measured)")
	fs.BoolVar(&c.InProcess, "in-process", c.InProcess, "run the modules as goroutines of zosd instead of one process each")
	logflag.Flags(fs, &c.LogLevel, &c.LogFormat)
}

// parse reads args and the environment into c with fs; a flag given on
// the command line wins over its variable.
func parse(fs *flag.FlagSet, args []string, getenv func(string) string, out io.Writer, usage string) error {
	p := envflag.Program{Prefix: EnvPrefix, Usage: usage + "\n", Example: "farm"}
	err := p.Parse(fs, args, getenv, out)
	if errors.Is(err, flag.ErrHelp) {
		return errHelp
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	return nil
}

// args renders fs's current values as flags, for a child process.
func args(fs *flag.FlagSet) []string {
	var out []string
	fs.VisitAll(func(f *flag.Flag) {
		out = append(out, "--"+f.Name+"="+f.Value.String())
	})
	return out
}

// validate checks the settings needed by what will run: "node" (all),
// or one module.
func (c *Config) validate(what string) error {
	needs := func(mods ...string) bool { return what == "node" || slices.Contains(mods, what) }
	if c.DataDir == "" {
		return fmt.Errorf("%w: --data must not be empty", ErrUsage)
	}
	abs, err := filepath.Abs(c.DataDir)
	if err != nil {
		return fmt.Errorf("--data: %w", err)
	}
	c.DataDir = abs
	for _, d := range c.ClaimDisks {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("%w: --claim-disk %q: want a block device path such as /dev/sdb", ErrUsage, d)
		}
	}
	for i, d := range c.DataDisks {
		if c.DataDisks[i], err = filepath.Abs(d); err != nil {
			return fmt.Errorf("--data-disk: %w", err)
		}
	}
	if needs(ModuleGateway) {
		if c.Registrar == "" {
			return fmt.Errorf("%w: --registrar is required (or %s)", ErrUsage, EnvName("registrar"))
		}
		if err := checkHTTPURL("registrar", c.Registrar); err != nil {
			return err
		}
	}
	if err := c.validateMachines(); err != nil {
		return err
	}
	if needs(ModuleIdentity) && c.Farm == 0 {
		return fmt.Errorf("%w: --farm is required (or %s): the id of the farm the node belongs to", ErrUsage, EnvName("farm"))
	}
	if c.Interface != "" && !validIfName(c.Interface) {
		return fmt.Errorf("%w: --interface %q is not a network interface name", ErrUsage, c.Interface)
	}
	if needs(ModuleNetwork) {
		if _, err := c.publicNetwork(); err != nil {
			return fmt.Errorf("%w: %w", ErrUsage, err)
		}
	}
	if c.GeoIPURL == "none" {
		c.GeoIPURL = ""
	}
	if needs(ModuleLocation) {
		if err := geoip.Validate(c.Fallback); err != nil {
			return fmt.Errorf("%w: fallback location: %v", ErrUsage, err)
		}
	}
	if err := c.validateAPI(); err != nil {
		return err
	}
	if c.Contracts != ContractsRequired && c.Contracts != ContractsOff {
		return fmt.Errorf("%w: --contracts %q: want required or off", ErrUsage, c.Contracts)
	}
	if c.ContractPoll <= 0 || c.ContractPoll > provisiond.MaxContractPoll {
		return fmt.Errorf("%w: --contract-poll %s: want a positive duration up to %s", ErrUsage, c.ContractPoll, provisiond.MaxContractPoll)
	}
	if c.ZosVersion != "" {
		// The registrar refuses a registration with another version:
		// a node started so would retry it forever.
		if err := api.CheckVersion(c.ZosVersion); err != nil {
			return fmt.Errorf("%w: --zos-version: %v", ErrUsage, err)
		}
	}
	if c.AuthScheme != "v2" && c.AuthScheme != "legacy" {
		return fmt.Errorf("%w: --auth %q: want v2 or legacy", ErrUsage, c.AuthScheme)
	}
	if err := logflag.CheckFormat(c.LogFormat); err != nil {
		return fmt.Errorf("%w: %w", ErrUsage, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"account-check-interval", c.AccountCheck}, {"update-interval", c.Update}, {"uptime-interval", c.Uptime},
		{"uptime-min-interval", c.UptimeMin}, {"retry-min", c.RetryMin}, {"retry-max", c.RetryMax},
		{"address-poll", c.AddressPoll}, {"health-interval", c.HealthInterval}, {"location-refresh", c.LocationRefresh},
		{"restart-min", c.RestartMin}, {"restart-max", c.RestartMax},
		{"upgrade-interval", c.UpgradeInterval}, {"upgrade-health-deadline", c.UpgradeHealthDeadline}, {"upgrade-health-stable", c.UpgradeHealthStable},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%w: --%s must be positive", ErrUsage, d.name)
		}
	}
	if err := c.validateUpgrade(needs(ModuleUpgrader)); err != nil {
		return err
	}
	if c.Redis == "" && needs() && len(c.RedisSocket()) > 100 {
		return fmt.Errorf("%w: the private Redis socket %s is longer than a unix socket path may be: use a shorter --data or give --redis", ErrUsage, c.RedisSocket())
	}
	return nil
}

// validateUpgrade checks the upgrader's settings; the hub and the
// release key only when the upgrader will run (running).
func (c *Config) validateUpgrade(running bool) error {
	if c.UpgradeFirstCheck < 0 || c.UpgradeJitter < 0 {
		return fmt.Errorf("%w: --upgrade-first-check and --upgrade-jitter must not be negative", ErrUsage)
	}
	if !running || c.Hub == "" {
		return nil
	}
	if err := checkHTTPURL("hub", c.Hub); err != nil {
		return err
	}
	if c.UpgradePublisherKey == "" {
		return fmt.Errorf("%w: --upgrade-publisher-key is required with --hub (or %s): the key releases must be signed with", ErrUsage, EnvName("upgrade-publisher-key"))
	}
	if _, err := keys.ParsePublicKey(c.UpgradePublisherKey); err != nil {
		return fmt.Errorf("%w: --upgrade-publisher-key: %v", ErrUsage, err)
	}
	for _, n := range []struct{ flag, v string }{{"upgrade-publisher", c.UpgradePublisher}, {"upgrade-repo", c.UpgradeRepo}} {
		if err := flist.ValidName(n.v); err != nil {
			return fmt.Errorf("%w: --%s: %v", ErrUsage, n.flag, err)
		}
	}
	return nil
}

// checkHTTPURL checks that the value v of --flag is an http or https URL
// with a host.
func checkHTTPURL(flag, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: --%s %q: want an http or https URL", ErrUsage, flag, v)
	}
	return nil
}

// validateAPI checks --api-listen (host:port, port 0 meaning any) and
// --api-url (what the registrar accepts as an endpoint).
func (c *Config) validateAPI() error {
	_, port, err := net.SplitHostPort(c.APIListen)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("%w: --api-listen %q: want host:port or :port", ErrUsage, c.APIListen)
	}
	if c.APIURL != "" {
		if err := api.CheckAPIEndpoint(c.APIURL); err != nil {
			return fmt.Errorf("%w: --api-url: %v", ErrUsage, err)
		}
	}
	return nil
}

// lightConfig is registrar_light's configuration.
func (c Config) lightConfig() registrarlight.Config {
	return registrarlight.Config{
		AccountCheck: c.AccountCheck, Update: c.Update, Uptime: c.Uptime,
		UptimeMin: c.UptimeMin, RetryMin: c.RetryMin, RetryMax: c.RetryMax,
		ZosVersion: c.ZosVersion, Capacity: c.Capacity,
		APIListen: c.APIListen, APIURL: c.APIURL,
	}
}

// Flag values.

type uintValue uint64

func (v *uintValue) String() string { return strconv.FormatUint(uint64(*v), 10) }
func (v *uintValue) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return errors.New("want a positive integer")
	}
	*v = uintValue(n)
	return nil
}

// diskTypesValue is --disk-type: NAME=ssd or NAME=hdd, repeatable.
type diskTypesValue map[string]hostinfo.DiskKind

func (v *diskTypesValue) String() string {
	var out []string
	for name, k := range *v {
		out = append(out, name+"="+string(k))
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func (v *diskTypesValue) Set(s string) error {
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		name, kind, ok := strings.Cut(p, "=")
		k := hostinfo.DiskKind(strings.ToLower(strings.TrimSpace(kind)))
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.Contains(name, "/") || (k != hostinfo.SSD && k != hostinfo.HDD) {
			return fmt.Errorf("%q: want NAME=ssd or NAME=hdd (NAME as in /sys/block)", p)
		}
		if *v == nil {
			*v = map[string]hostinfo.DiskKind{}
		}
		(*v)[name] = k
	}
	return nil
}

type listValue []string

func (v *listValue) String() string { return strings.Join(*v, ",") }
func (v *listValue) Set(s string) error {
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(*v, p) {
			*v = append(*v, p)
		}
	}
	return nil
}

// validIfName reports whether s can be a Linux interface name: 1 to 15
// bytes, no slash, colon or white space, not "." or "..".
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	return !strings.ContainsAny(s, "/: \t\n")
}
