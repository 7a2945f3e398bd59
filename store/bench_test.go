package store_test

import (
	"context"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// Benchmark sizes. GRID4_STORE_BENCH_NODES sets the number of nodes seeded
// (default 10,000; the registrar's target is 1,000,000), spread over farms
// of GRID4_STORE_BENCH_FARM_SIZE nodes (default 1,000).
func benchSizes(b *testing.B) (nodes, farmSize int) {
	nodes, farmSize = 10_000, 1_000
	for _, v := range []struct {
		env string
		p   *int
	}{{"GRID4_STORE_BENCH_NODES", &nodes}, {"GRID4_STORE_BENCH_FARM_SIZE", &farmSize}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				b.Fatalf("%s=%q: want a positive integer", v.env, s)
			}
			*v.p = n
		}
	}
	return nodes, min(farmSize, nodes)
}

// benchFleet is a seeded database.
type benchFleet struct {
	db    *store.DB
	farms []uint64
	nodes []store.SeededNode
	// boot is when every seeded node booted; a report at time t has
	// uptime t - boot.
	boot time.Time
}

// seedFleet seeds n nodes in farms of farmSize, every node seen once.
func seedFleet(b *testing.B, op opener, n, farmSize int) benchFleet {
	b.Helper()
	return seedFleetWith(b, op, n, farmSize, nil)
}

// seedFleetWith is seedFleet with status(i) (when not nil) recorded as
// the status report of node i.
func seedFleetWith(b *testing.B, op opener, n, farmSize int, status func(i int) *api.NodeStatus) benchFleet {
	b.Helper()
	ctx := context.Background()
	db := mustOpen(b, op.url(b))
	owner := mkAccount(b, db)
	f := benchFleet{db: db, boot: time.Now().Add(-24 * time.Hour).Truncate(time.Second)}
	start := time.Now()
	seen := time.Now().Add(-time.Minute)
	for left := n; left > 0; left -= farmSize {
		farm := mkFarm(b, db, owner.TwinID)
		f.farms = append(f.farms, farm.FarmID)
		k, base := min(farmSize, left), n-left
		ids, err := db.SeedNodes(ctx, farm.FarmID, k, func(i int) store.SeedNode {
			nd := sampleNode(0, 0)
			nd.LastSeen = &seen
			sn := store.SeedNode{PublicKey: pubKey(), Node: nd, Uptime: uint64(seen.Sub(f.boot) / time.Second)}
			if status != nil {
				sn.Status = status(base + i)
			}
			return sn
		})
		if err != nil {
			b.Fatalf("SeedNodes: %v", err)
		}
		f.nodes = append(f.nodes, ids...)
	}
	b.Logf("%s: seeded %d nodes in %d farms in %v", op.name, n, len(f.farms), time.Since(start).Round(time.Millisecond))
	return f
}

func benchOpeners() []opener { return []opener{sqliteFileOpener(), postgresOpener()} }

// BenchmarkRecordUptime measures a normal uptime report (same boot: one
// row update) from many goroutines at once, each op one report of a node
// of the seeded fleet.
func BenchmarkRecordUptime(b *testing.B) {
	n, farmSize := benchSizes(b)
	for _, op := range benchOpeners() {
		f := seedFleet(b, op, n, farmSize)
		b.Run(op.name, func(b *testing.B) {
			var next atomic.Uint64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					nd := f.nodes[next.Add(1)%uint64(len(f.nodes))]
					at := time.Now()
					r, err := f.db.RecordUptime(ctx, nd.NodeID, at, uint64(at.Sub(f.boot)/time.Second))
					if err != nil {
						b.Error(err)
						return
					}
					if r.Restarted {
						b.Error("restart seen in a normal report")
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

// BenchmarkListNodesByFarm measures GET /nodes?farm_id=F (page 1 of 50
// nodes with their liveness) on a random farm, from several goroutines,
// and reports the 99th percentile latency.
func BenchmarkListNodesByFarm(b *testing.B) {
	n, farmSize := benchSizes(b)
	for _, op := range benchOpeners() {
		f := seedFleet(b, op, n, farmSize)
		for _, deep := range []bool{false, true} {
			name := op.name
			if deep {
				name += "/last-page"
			}
			b.Run(name, func(b *testing.B) {
				var (
					mu  sync.Mutex
					lat []time.Duration
				)
				b.SetParallelism(4)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					var mine []time.Duration
					for pb.Next() {
						farm := f.farms[rand.IntN(len(f.farms))]
						page := store.Page{Number: 1, Size: 50}
						if deep {
							page.Number = uint64(max(1, farmSize/50))
						}
						t0 := time.Now()
						ns, err := f.db.ListNodes(ctx, store.NodeFilter{FarmID: farm}, page)
						mine = append(mine, time.Since(t0))
						if err != nil {
							b.Error(err)
							return
						}
						if len(ns) == 0 || ns[0].FarmID != farm || ns[0].LastSeen == nil {
							b.Errorf("farm %d page %d: %d nodes", farm, page.Number, len(ns))
							return
						}
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				b.StopTimer()
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
				}
			})
		}
	}
}

// BenchmarkNodeByID measures GET /nodes/{id}.
func BenchmarkNodeByID(b *testing.B) {
	n, farmSize := benchSizes(b)
	for _, op := range benchOpeners() {
		f := seedFleet(b, op, min(n, 10_000), farmSize)
		b.Run(op.name, func(b *testing.B) {
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := f.db.Node(ctx, f.nodes[rand.IntN(len(f.nodes))].NodeID); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkUseNonce measures replay protection: a fresh nonce per op.
func BenchmarkUseNonce(b *testing.B) {
	for _, op := range benchOpeners() {
		db := mustOpen(b, op.url(b))
		b.Run(op.name, func(b *testing.B) {
			var next atomic.Uint64
			prefix := randHex(4)
			exp := time.Now().Add(time.Minute)
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := db.UseNonce(ctx, "key", prefix+strconv.FormatUint(next.Add(1), 10), exp); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// benchStatus is the status of node i of a benchmark fleet: 32 GiB of
// memory of which a pseudo-random part (the same for i on every run) is
// free, a tenth of the fleet unhealthy, 14 modules and 4 checks as zosd
// sends them.
func benchStatus(i int, at time.Time) *api.NodeStatus {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	total := api.Capacity{CRU: 32, MRU: 32 << 30, SRU: 4 << 40, HRU: 16 << 40, IPv4: 4}
	used := api.Capacity{CRU: r.Uint64N(33), MRU: r.Uint64N(32<<30 + 1), SRU: r.Uint64N(4<<40 + 1), IPv4: r.Uint64N(5)}
	st := &api.NodeStatus{ReportedAt: at, Healthy: r.IntN(10) != 0, Version: "v4.1.2",
		Total: total, Used: used, Free: total.Sub(used), Deployments: 3, Workloads: map[string]uint64{"ok": 9}}
	for _, m := range []string{"redis", "identityd", "noded", "storaged", "flistd", "location", "powerd", "registrar_gateway",
		"registrar_light", "netlightd", "contd", "vmd", "provisiond", "upgrader"} {
		st.Modules = append(st.Modules, api.ModuleState{Name: m, State: "running"})
	}
	for _, c := range []string{"disk_space", "data_writable", "bus", "clock"} {
		st.Checks = append(st.Checks, api.HealthCheck{Name: c, OK: st.Healthy || c != "disk_space"})
	}
	return st
}

// BenchmarkRecordNodeStatus measures a node's status report (the latest
// status rewritten, one history slot overwritten) from many goroutines at
// once, on a fleet whose every node has reported once.
func BenchmarkRecordNodeStatus(b *testing.B) {
	n, farmSize := benchSizes(b)
	at := time.Now().Add(-time.Minute)
	for _, op := range benchOpeners() {
		f := seedFleetWith(b, op, n, farmSize, func(i int) *api.NodeStatus { return benchStatus(i, at) })
		b.Run(op.name, func(b *testing.B) {
			var next atomic.Uint64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					i := next.Add(1) % uint64(len(f.nodes))
					if err := f.db.RecordNodeStatus(ctx, f.nodes[i].NodeID, time.Now(), *benchStatus(int(i), at)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

// BenchmarkListNodesByStatus measures GET /nodes with the status filters
// (page 1 of 50) on a fleet with statuses (benchStatus): filters most
// nodes pass, within a farm and over the whole fleet, and selective ones,
// which walk the fleet in node_id order until a page is full.
func BenchmarkListNodesByStatus(b *testing.B) {
	n, farmSize := benchSizes(b)
	at := time.Now().Add(-time.Minute)
	since := at.Add(-time.Hour)
	cases := []struct {
		name  string
		farm  bool
		f     store.NodeFilter
		atEnd bool // the filter matches too few nodes to fill a page
	}{
		{"healthy+free_mru>=8GiB/farm", true, store.NodeFilter{Health: store.HealthHealthy, StatusSince: since, FreeAtLeast: api.Capacity{MRU: 8 << 30}}, false},
		{"healthy+free_mru>=8GiB/fleet", false, store.NodeFilter{Health: store.HealthHealthy, StatusSince: since, FreeAtLeast: api.Capacity{MRU: 8 << 30}}, false},
		{"free_mru>=31GiB/fleet", false, store.NodeFilter{FreeAtLeast: api.Capacity{MRU: 31 << 30}}, false},
		{"unhealthy+free_mru>=31GiB+free_ips>=4/fleet", false, store.NodeFilter{Health: store.HealthUnhealthy, StatusSince: since,
			FreeAtLeast: api.Capacity{MRU: 31 << 30, IPv4: 4}}, true},
	}
	for _, op := range benchOpeners() {
		f := seedFleetWith(b, op, n, farmSize, func(i int) *api.NodeStatus { return benchStatus(i, at) })
		for _, c := range cases {
			b.Run(op.name+"/"+c.name, func(b *testing.B) {
				var (
					mu    sync.Mutex
					lat   []time.Duration
					found atomic.Int64
				)
				b.SetParallelism(2)
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					ctx := context.Background()
					var mine []time.Duration
					for pb.Next() {
						filter := c.f
						if c.farm {
							filter.FarmID = f.farms[rand.IntN(len(f.farms))]
						}
						t0 := time.Now()
						ns, err := f.db.ListNodes(ctx, filter, store.Page{Number: 1, Size: 50})
						mine = append(mine, time.Since(t0))
						if err != nil {
							b.Error(err)
							return
						}
						if len(ns) == 0 || (len(ns) < 50 && !c.atEnd) || ns[0].Free == nil || ns[0].Free.MRU < c.f.FreeAtLeast.MRU {
							b.Errorf("%d nodes: %+v", len(ns), ns)
							return
						}
						found.Add(int64(len(ns)))
					}
					mu.Lock()
					lat = append(lat, mine...)
					mu.Unlock()
				})
				b.StopTimer()
				slices.Sort(lat)
				if len(lat) > 0 {
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(found.Load())/float64(len(lat)), "nodes/page")
				}
			})
		}
	}
}

// BenchmarkBill bills GRID4_STORE_BENCH_CONTRACTS active node contracts
// (default 10,000; the target is 1,000,000 within 60 s) with a usage
// report each, over GRID4_STORE_BENCH_NODES nodes and a tenth as many
// twins as contracts, for one period on PostgreSQL; with
// GRID4_STORE_BENCH_BILLERS (default 1) store handles billing at once, as
// that many registrar processes would. Each iteration bills the next
// period of every contract (the first with usage, later ones without,
// their wait for a report over), as a registrar with the default
// --usage-wait does.
func BenchmarkBill(b *testing.B) {
	contracts, billers := 10_000, 1
	for _, v := range []struct {
		env string
		p   *int
	}{{"GRID4_STORE_BENCH_CONTRACTS", &contracts}, {"GRID4_STORE_BENCH_BILLERS", &billers}} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 {
				b.Fatalf("%s=%q: want a positive integer", v.env, s)
			}
			*v.p = n
		}
	}
	nodes, farmSize := benchSizes(b)
	op := postgresOpener()
	f := seedFleet(b, op, nodes, farmSize)
	ids := make([]int64, len(f.nodes))
	for i, n := range f.nodes {
		ids[i] = int64(n.NodeID)
	}
	period := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	start := time.Now()
	if err := f.db.SeedContractsPG(context.Background(), contracts, max(contracts/10, 1), ids, period); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d contracts in %s", contracts, time.Since(start).Round(time.Millisecond))
	dbs := []*store.DB{f.db}
	for len(dbs) < billers {
		dbs = append(dbs, mustOpen(b, op.url(b)))
	}
	b.ResetTimer()
	for i := range b.N {
		var (
			wg    sync.WaitGroup
			bills atomic.Int64
		)
		// As a registrar with the default wait for usage reports bills:
		// the first period, reported, when it is due; a later one,
		// unreported, once its wait is over (then the contracts' next
		// periods are due too and a second pass finds them waiting).
		const wait = 24 * time.Hour
		p := period.Add(time.Duration(i) * time.Hour)
		through := p
		if i > 0 {
			through = p.Add(wait)
		}
		for _, db := range dbs {
			wg.Go(func() {
				r, err := db.Bill(context.Background(), store.BillingParams{Through: through, Now: through.Add(time.Hour + 10*time.Minute), Notice: 7 * 24 * time.Hour, UsageWait: wait})
				if err != nil {
					b.Error(err)
				}
				bills.Add(r.Bills)
			})
		}
		wg.Wait()
		if bills.Load() != int64(contracts) {
			b.Fatalf("period %d: %d periods billed, want %d", i, bills.Load(), contracts)
		}
	}
	b.ReportMetric(float64(contracts)*float64(b.N)/b.Elapsed().Seconds(), "contracts/s")
}
