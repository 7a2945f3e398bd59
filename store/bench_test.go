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
	ctx := context.Background()
	db := mustOpen(b, op.url(b))
	owner := mkAccount(b, db)
	f := benchFleet{db: db, boot: time.Now().Add(-24 * time.Hour).Truncate(time.Second)}
	start := time.Now()
	seen := time.Now().Add(-time.Minute)
	for left := n; left > 0; left -= farmSize {
		farm := mkFarm(b, db, owner.TwinID)
		f.farms = append(f.farms, farm.FarmID)
		k := min(farmSize, left)
		ids, err := db.SeedNodes(ctx, farm.FarmID, k, func(i int) store.SeedNode {
			nd := sampleNode(0, 0)
			nd.LastSeen = &seen
			return store.SeedNode{PublicKey: pubKey(), Node: nd, Uptime: uint64(seen.Sub(f.boot) / time.Second)}
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
