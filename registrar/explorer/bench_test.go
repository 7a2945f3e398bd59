package explorer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
	"github.com/grid4/grid4/store/storetest"
)

// Benchmark settings: GRID4_EXPLORER_BENCH_DB is the database to measure
// (a store URL; seeded on first use and kept, so that a million nodes are
// seeded once), by default a fresh PostgreSQL schema; it is seeded up to
// GRID4_EXPLORER_BENCH_NODES nodes (default 10,000) in farms of 1,000.
func benchEnv(b *testing.B) (url string, nodes int) {
	nodes = 10_000
	if s := os.Getenv("GRID4_EXPLORER_BENCH_NODES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("GRID4_EXPLORER_BENCH_NODES=%q: want a positive integer", s)
		}
		nodes = n
	}
	url = os.Getenv("GRID4_EXPLORER_BENCH_DB")
	if url == "" {
		url = storetest.URL(b, storetest.Postgres)
	}
	return url, nodes
}

// benchStore opens the benchmark's store (see benchEnv), seeded, and
// returns it with its number of nodes.
func benchStore(b *testing.B) (*store.DB, int) {
	url, n := benchEnv(b)
	db, err := store.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	seedBench(b, db, n)
	return db, n
}

// benchFarmSize is the number of nodes of each benchmark farm.
const benchFarmSize = 1000

// seedBench grows db to n nodes: farms of benchFarmSize, node i on
// version v4.1.0 (70%), v4.0.0 (20%) or v4.2.0-rc1 (10%), in one of five
// countries (Egypt: 1%), seen a minute ago (90%) with a status report (a
// tenth unhealthy); the nodes of every other farm approved.
func seedBench(b *testing.B, db *store.DB, n int) {
	ctx := context.Background()
	have, err := db.CountNodes(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if int(have) >= n {
		return
	}
	owner, err := db.CreateAccount(ctx, api.Account{PublicKey: benchKey(-1)})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	seen := time.Now().UTC().Add(-time.Minute)
	countries := []string{"Belgium", "Germany", "France", "Kenya"}
	for base := int(have); base < n; base += benchFarmSize {
		farm, err := db.CreateFarm(ctx, api.Farm{FarmName: fmt.Sprintf("explorerbench%07d", base/benchFarmSize), TwinID: owner.TwinID})
		if err != nil {
			b.Fatal(err)
		}
		k := min(benchFarmSize, n-base)
		ids, err := db.SeedNodes(ctx, farm.FarmID, k, func(j int) store.SeedNode {
			i := base + j
			nd := api.Node{
				Location:   api.Location{Country: countries[i%len(countries)], City: "Ghent"},
				Resources:  api.Resources{CRU: 16, MRU: 64 << 30, SRU: 1 << 40, HRU: 4 << 40},
				Interfaces: []api.Interface{{Name: "zos", Mac: "02:00:00:00:00:01", IPs: api.IPList{"10.0.0.1/8"}}},
				ZosVersion: []string{"v4.1.0", "v4.1.0", "v4.1.0", "v4.1.0", "v4.1.0", "v4.1.0", "v4.1.0", "v4.0.0", "v4.0.0", "v4.2.0-rc1"}[i%10],
			}
			if i%100 == 50 {
				nd.Location.Country = "Egypt"
			}
			sn := store.SeedNode{PublicKey: benchKey(i), Node: nd}
			if i%10 != 9 {
				sn.Node.LastSeen, sn.Uptime = &seen, 3600
				total := api.Capacity{CRU: 16, MRU: 64 << 30, SRU: 1 << 40, HRU: 4 << 40, IPv4: 1}
				used := api.Capacity{CRU: uint64(i % 16), MRU: uint64(i%64) << 30}
				sn.Status = &api.NodeStatus{ReportedAt: seen, Healthy: i%10 != 3, Total: total, Used: used, Free: total.Sub(used)}
			}
			return sn
		})
		if err != nil {
			b.Fatal(err)
		}
		if (base/benchFarmSize)%2 == 0 {
			nodeIDs := make([]uint64, len(ids))
			for i, s := range ids {
				nodeIDs[i] = s.NodeID
			}
			if err := db.SetApproval(ctx, farm.FarmID, nodeIDs, true); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.2.0-rc1", TestFarms: []uint64{1, 2}}); err != nil && !errors.Is(err, store.ErrNotChanged) {
		b.Fatal(err)
	}
	if _, err := db.RefreshStatistics(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d nodes in %s", n-int(have), time.Since(start).Round(time.Second))
}

// benchKey is the (unique, not valid) public key of bench twin i.
func benchKey(i int) string { return fmt.Sprintf("explorer-bench-twin-%d", i) }

// BenchmarkPages measures each explorer page over loopback HTTP against a
// registrar on a seeded store, one request at a time, with the grid's
// counts cached (as a visitor finds them: they are recomputed in the
// background). It reports the median and 99th percentile latency.
func BenchmarkPages(b *testing.B) {
	db, n := benchStore(b)
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin = 0, 0
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	b.Cleanup(ts.Close)
	// One kept connection per client (the default keeps two).
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	warm := time.Now()
	if err := get(c, ts.URL+"/"); err != nil { // counts the grid once
		b.Fatal(err)
	}
	b.Logf("first count of %d nodes: %s", n, time.Since(warm).Round(time.Millisecond))
	for _, p := range benchPages(n) {
		b.Run(p.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t0 := time.Now()
				if err := get(c, ts.URL+p.path); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			reportLatency(b, lat)
		})
	}
	// Every page in turn from 8 clients at once.
	b.Run("mix_8_clients", func(b *testing.B) {
		pages := benchPages(n)
		var (
			mu   sync.Mutex
			lat  []time.Duration
			next atomic.Int64
		)
		b.SetParallelism(4) // 4 × GOMAXPROCS (2) clients
		b.RunParallel(func(pb *testing.PB) {
			var mine []time.Duration
			for pb.Next() {
				p := pages[int(next.Add(1))%len(pages)]
				t0 := time.Now()
				if err := get(c, ts.URL+p.path); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
		reportLatency(b, lat)
	})
}

// reportLatency reports the median and 99th percentile of lat.
func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)])/1e6, "p99-ms")
}

// benchPage is one page the benchmark loads.
type benchPage struct{ name, path string }

// benchPages are the pages measured on a grid of n nodes: each kind of
// page, and the node list with each filter on a page in the middle of
// the fleet.
func benchPages(n int) []benchPage {
	mid := strconv.Itoa(n / 2)
	return []benchPage{
		{"overview", "/"},
		{"farms", "/farms"},
		{"farms_last_page", "/farms?page=" + strconv.Itoa((n/benchFarmSize+49)/50)},
		{"farm", "/farms/" + strconv.Itoa(n/benchFarmSize/2+1)},
		{"nodes", "/nodes"},
		{"nodes_after_mid", "/nodes?after=" + mid},
		{"nodes_online", "/nodes?online=true&after=" + mid},
		{"nodes_offline", "/nodes?online=false&after=" + mid},
		{"nodes_approved", "/nodes?approved=true&after=" + mid},
		{"nodes_unhealthy", "/nodes?healthy=false&after=" + mid},
		{"nodes_version", "/nodes?version=v4.2.0-rc1&after=" + mid},
		{"nodes_country_1pct", "/nodes?country=Egypt&after=" + mid},
		{"nodes_country_none", "/nodes?country=Narnia"},
		{"nodes_farm_version", "/nodes?farm=" + strconv.Itoa(n/benchFarmSize/2+1) + "&version=v4.0.0"},
		{"node", "/nodes/" + mid},
		{"versions", "/versions"},
		{"search_farm_name", "/search?q=explorerbench0000123"},
		{"search_id", "/search?q=" + mid},
	}
}

// get fetches url, which must answer 200.
func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return nil
}

// BenchmarkCounts measures what the explorer's cache saves each visitor:
// the store's counts of the whole grid, computed once per TTL in the
// background.
func BenchmarkCounts(b *testing.B) {
	db, _ := benchStore(b)
	ctx := context.Background()
	since := time.Now().Add(-2 * time.Hour)
	b.Run("NodeCounts", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.NodeCounts(ctx, since); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("StatusTotals", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.StatusTotals(ctx, since); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CountFarms", func(b *testing.B) {
		for b.Loop() {
			if _, err := db.CountFarms(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
