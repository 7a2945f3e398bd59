package load

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// FleetBoot returns when every node of a benchmark fleet booted. It is
// fixed, so that the uptime a node reports (now - FleetBoot) keeps going up
// across runs and processes: a report is then the registrar's common case,
// a report of the current boot, not a restart.
func FleetBoot() time.Time { return time.Date(2025, time.January, 1, 0, 0, 0, 0, time.UTC) }

// DefaultFarmSize is the default number of nodes per farm.
const DefaultFarmSize = 1000

// FleetConfig says which fleet PrepareFleet makes.
type FleetConfig struct {
	// Nodes is the number of nodes wanted (at least 1).
	Nodes int
	// FarmSize is the number of nodes per farm (0: DefaultFarmSize). A
	// reused database must have been seeded with the same farm size.
	FarmSize int
	// Logger receives progress records (nil: none).
	Logger *slog.Logger
}

// Node is one node of a fleet: Index derives its key (NodeKey).
type Node struct {
	Index  int
	NodeID uint64
	TwinID uint64
}

// Fleet is a seeded fleet: Nodes in index order, and the farms holding
// them.
type Fleet struct {
	Nodes []Node
	Farms []uint64
	// Seeded is how many nodes this PrepareFleet added (0: all reused).
	Seeded int

	// uptimeNext is the least unix time a later uptime run may report
	// from: a run on a fleet smaller than its request count reports some
	// nodes several times, claiming one more second each time, and the
	// next run must not report less (that would be a restart).
	uptimeNext int64
}

// farmName names farm k of the fleet (farm names are alphanumeric).
func farmName(k int) string { return fmt.Sprintf("bench%07d", k) }

// PrepareFleet makes sure db holds a fleet of at least cfg.Nodes nodes and
// returns its first cfg.Nodes nodes. Node i belongs to farm i / FarmSize
// (farm k is the k-th farm of the fleet's farmer, by farm id) and has a
// twin of its own whose key is NodeKey(i); its liveness says it was seen
// ten minutes before seeding, up since FleetBoot, and it sent its status
// then (fleetStatus: a tenth of the fleet unhealthy, free capacity drawn
// from i).
//
// A database seeded by an earlier run is reused: the farmer's farms and
// nodes are read back (node i is at position i % FarmSize of its farm in
// node_id order) and their keys checked on a sample; a smaller fleet is
// extended. Seeding uses store.SeedNodes, one farm per batch.
func PrepareFleet(ctx context.Context, db *store.DB, cfg FleetConfig) (*Fleet, error) {
	if cfg.Nodes < 1 {
		return nil, fmt.Errorf("load: prepare fleet: %d nodes: want at least 1", cfg.Nodes)
	}
	if cfg.FarmSize == 0 {
		cfg.FarmSize = DefaultFarmSize
	}
	if cfg.FarmSize < 1 {
		return nil, fmt.Errorf("load: prepare fleet: farm size %d: want at least 1", cfg.FarmSize)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	farmer, err := ensureFarmer(ctx, db)
	if err != nil {
		return nil, err
	}
	f, err := loadFleet(ctx, db, farmer, cfg.FarmSize)
	if err != nil {
		return nil, err
	}
	if len(f.Nodes) > 0 {
		log.Info("reusing seeded fleet", "nodes", len(f.Nodes), "farms", len(f.Farms))
	}
	if missing := cfg.Nodes - len(f.Nodes); missing > 0 {
		start := time.Now()
		log.Info("seeding", "nodes", missing, "dialect", db.Dialect())
		if err := extendFleet(ctx, db, farmer, f, cfg.Nodes, cfg.FarmSize, log); err != nil {
			return nil, err
		}
		f.Seeded = missing
		log.Info("seeded", "nodes", missing, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	if len(f.Nodes) > cfg.Nodes {
		f.Nodes = f.Nodes[:cfg.Nodes]
		f.Farms = f.Farms[:(cfg.Nodes+cfg.FarmSize-1)/cfg.FarmSize]
	}
	return f, nil
}

// ensureFarmer returns the twin id of the fleet's farmer, creating its
// account if needed.
func ensureFarmer(ctx context.Context, db *store.DB) (uint64, error) {
	k, err := FarmerKey()
	if err != nil {
		return 0, err
	}
	pub := publicKeyB64(k)
	acc, err := db.AccountByPublicKey(ctx, pub)
	if errors.Is(err, store.ErrNotFound) {
		acc, err = db.CreateAccount(ctx, api.Account{PublicKey: pub})
	}
	if err != nil {
		return 0, fmt.Errorf("load: farmer account: %w", err)
	}
	return acc.TwinID, nil
}

// loadFleet reads back the farms and nodes of farmer, checking that they
// form a fleet of farmSize nodes per farm whose keys match.
func loadFleet(ctx context.Context, db *store.DB, farmer uint64, farmSize int) (*Fleet, error) {
	f := &Fleet{}
	for page := uint64(1); ; page++ {
		farms, err := db.ListFarms(ctx, store.FarmFilter{TwinID: farmer}, store.Page{Number: page, Size: store.MaxPageSize})
		if err != nil {
			return nil, fmt.Errorf("load: reading the fleet's farms: %w", err)
		}
		for _, fm := range farms {
			f.Farms = append(f.Farms, fm.FarmID)
		}
		if len(farms) < store.MaxPageSize {
			break
		}
	}
	for k, farm := range f.Farms {
		if k > 0 && len(f.Nodes) != k*farmSize {
			return nil, fmt.Errorf("load: farm %d of the fleet holds %d nodes before farm %d, want %d: seeded with another farm size, or damaged; use a fresh database",
				k-1, len(f.Nodes)-(k-1)*farmSize, k, farmSize)
		}
		for page := uint64(1); ; page++ {
			nodes, err := db.ListNodes(ctx, store.NodeFilter{FarmID: farm}, store.Page{Number: page, Size: store.MaxPageSize})
			if err != nil {
				return nil, fmt.Errorf("load: reading the nodes of farm %d: %w", farm, err)
			}
			for _, n := range nodes {
				f.Nodes = append(f.Nodes, Node{Index: len(f.Nodes), NodeID: n.NodeID, TwinID: n.TwinID})
			}
			if len(nodes) < store.MaxPageSize {
				break
			}
		}
		if len(f.Nodes) > (k+1)*farmSize {
			return nil, fmt.Errorf("load: farm %d of the fleet holds more than %d nodes: seeded with another farm size; use a fresh database", k, farmSize)
		}
	}
	// Check the keys of a sample: the first node of the first, a middle
	// and the last farm, and the last node.
	if n := len(f.Nodes); n > 0 {
		last := (n - 1) / farmSize * farmSize
		for _, i := range []int{0, last / farmSize / 2 * farmSize, last, n - 1} {
			if err := checkKey(ctx, db, f.Nodes[i]); err != nil {
				return nil, err
			}
		}
	}
	return f, nil
}

// checkKey verifies that node n's twin has the key NodeKey(n.Index).
func checkKey(ctx context.Context, db *store.DB, n Node) error {
	k, err := NodeKey(n.Index)
	if err != nil {
		return err
	}
	acc, err := db.AccountByTwin(ctx, n.TwinID)
	if err != nil {
		return fmt.Errorf("load: checking the key of node %d: %w", n.NodeID, err)
	}
	if acc.PublicKey != publicKeyB64(k) {
		return fmt.Errorf("load: node %d (twin %d) is not node %d of a benchmark fleet (its key differs); use a fresh database",
			n.NodeID, n.TwinID, n.Index)
	}
	return nil
}

// extendFleet seeds nodes len(f.Nodes) .. want-1, filling the last farm
// first and then creating farms.
func extendFleet(ctx context.Context, db *store.DB, farmer uint64, f *Fleet, want, farmSize int, log *slog.Logger) error {
	seen := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	uptime := uint64(seen.Sub(FleetBoot()) / time.Second)
	nextLog := len(f.Nodes) + want/10
	for len(f.Nodes) < want {
		k := len(f.Nodes) / farmSize
		if k == len(f.Farms) {
			fm, err := db.CreateFarm(ctx, api.Farm{FarmName: farmName(k), TwinID: farmer})
			if err != nil {
				return fmt.Errorf("load: creating farm %d: %w", k, err)
			}
			f.Farms = append(f.Farms, fm.FarmID)
		}
		first := len(f.Nodes)
		n := min((k+1)*farmSize, want) - first
		pubs, err := publicKeys(ctx, first, n)
		if err != nil {
			return err
		}
		ids, err := db.SeedNodes(ctx, f.Farms[k], n, func(i int) store.SeedNode {
			return store.SeedNode{PublicKey: pubs[i], Node: benchNode(first+i, seen), Uptime: uptime, Status: seedStatus(first+i, seen)}
		})
		if err != nil {
			return fmt.Errorf("load: seeding nodes %d..%d: %w", first, first+n-1, err)
		}
		for i, id := range ids {
			f.Nodes = append(f.Nodes, Node{Index: first + i, NodeID: id.NodeID, TwinID: id.TwinID})
		}
		if len(f.Nodes) >= nextLog && len(f.Nodes) < want {
			log.Info("seeding", "done", len(f.Nodes), "of", want)
			nextLog += want / 10
		}
	}
	return nil
}

// publicKeys derives the public keys (account form) of nodes first ..
// first+n-1 on every CPU.
func publicKeys(ctx context.Context, first, n int) ([]string, error) {
	out := make([]string, n)
	err := onEveryCPU(ctx, n, "deriving keys", func(i int) error {
		k, err := NodeKey(first + i)
		if err != nil {
			return err
		}
		out[i] = publicKeyB64(k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// onEveryCPU calls do(i) for i from 0 to n-1 on GOMAXPROCS goroutines,
// each taking every GOMAXPROCS-th i. A goroutine stops at its first error
// or when ctx ends (the error then says what was being done); the errors
// are joined.
func onEveryCPU(ctx context.Context, n int, what string, do func(i int) error) error {
	workers := min(runtime.GOMAXPROCS(0), n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if err := ctx.Err(); err != nil {
					errs[w] = fmt.Errorf("load: %s: %w", what, err)
					return
				}
				if err := do(i); err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// benchNode describes node i as a plausible ZOS node: location, capacity,
// one interface with an IPv4 and an IPv6 address, a serial number.
func benchNode(i int, seen time.Time) api.Node {
	return api.Node{
		Location:  api.Location{Country: "Belgium", City: "Ghent", Longitude: "3.7174", Latitude: "51.0543"},
		Resources: api.Resources{HRU: 4 << 40, SRU: 1 << 40, CRU: 16, MRU: 64 << 30},
		Interfaces: []api.Interface{{
			Name: "zos",
			Mac:  fmt.Sprintf("02:00:%02x:%02x:%02x:%02x", byte(i>>24), byte(i>>16), byte(i>>8), byte(i)),
			IPs: []string{
				fmt.Sprintf("10.%d.%d.%d/8", byte(i>>16), byte(i>>8), byte(i)),
				fmt.Sprintf("2001:db8::%x:%x/64", uint16(i>>16), uint16(i)),
			},
		}},
		SerialNumber: fmt.Sprintf("GRID4-BENCH-%08d", i),
		ZosVersion:   "v4.1.0",
		LastSeen:     &seen,
	}
}
