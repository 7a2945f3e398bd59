package explorer_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
	"github.com/grid4/grid4/store/storetest"
)

// grid is a registrar on loopback over a real store holding a small grid
// whose figures the tests know.
type grid struct {
	db  *store.DB
	url string
	now time.Time
	// Alpha is a farm of three nodes (one online, approved, healthy,
	// on v4.1.0 in Belgium; one online, unhealthy, on v4.0.0 in Egypt;
	// one never seen), Beta a test farm of one offline node. Evil is a
	// farm whose node's city is markup.
	alpha, beta, evil      api.Farm
	good, sick, silent, bn uint64
	evilNode               uint64
}

// Strings a page must show escaped, never as markup.
const (
	evilCity    = `<script>alert("city")</script>`
	evilCountry = `Evil<b>land</b>`
)

// newGrid seeds a grid on a fresh store of backend and serves a
// registrar on it, with its clock fixed at the seed's now: five days
// after the store stamped the registrations (it stamps them with the
// real time), so that the nodes have days of uptime history.
func newGrid(t testing.TB, backend string) *grid {
	t.Helper()
	ctx := context.Background()
	g := &grid{db: storetest.Open(t, backend), now: time.Now().UTC().Add(5 * 24 * time.Hour).Truncate(time.Second)}
	account := func() uint64 {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		a, err := g.db.CreateAccount(ctx, api.Account{PublicKey: base64.StdEncoding.EncodeToString(b)})
		if err != nil {
			t.Fatal(err)
		}
		return a.TwinID
	}
	owner := account()
	farm := func(name string) api.Farm {
		f, err := g.db.CreateFarm(ctx, api.Farm{FarmName: name, TwinID: owner})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	g.alpha, g.beta, g.evil = farm("AlphaFarm"), farm("BetaFarm"), farm("EvilFarm")
	node := func(f api.Farm, version, country, city string, cru uint64) uint64 {
		n, err := g.db.CreateNode(ctx, api.Node{
			FarmID: f.FarmID, TwinID: account(), ZosVersion: version,
			Location:   api.Location{Country: country, City: city, Latitude: "51.05", Longitude: "3.72"},
			Resources:  api.Resources{CRU: cru, MRU: 64 << 30, SRU: 1 << 40, HRU: 4 << 40},
			Interfaces: []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2/24"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return n.NodeID
	}
	g.good = node(g.alpha, "v4.1.0", "Belgium", "Ghent", 16)
	g.sick = node(g.alpha, "v4.0.0", "Egypt", "Cairo", 8)
	g.silent = node(g.alpha, "v4.0.0", "Belgium", "Brussels", 4)
	g.bn = node(g.beta, "v4.1.0", "Belgium", "Ghent", 4)
	g.evilNode = node(g.evil, "v4.0.0", evilCountry, evilCity, 2)
	if err := g.db.SetApproval(ctx, g.alpha.FarmID, []uint64{g.good}, true); err != nil {
		t.Fatal(err)
	}
	// The good node was up for the last two days and down for a day
	// before; the sick one is up since an hour; the beta node was seen
	// long ago.
	for _, r := range []struct {
		node   uint64
		at     time.Time
		uptime time.Duration
	}{
		{g.good, g.now.Add(-72 * time.Hour), 12 * time.Hour},
		{g.good, g.now.Add(-2 * time.Minute), 47 * time.Hour},
		{g.sick, g.now.Add(-time.Minute), time.Hour},
		{g.bn, g.now.Add(-30 * 24 * time.Hour), time.Hour},
		{g.evilNode, g.now.Add(-time.Minute), time.Hour},
	} {
		if _, err := g.db.RecordUptime(ctx, r.node, r.at, uint64(r.uptime/time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	total := api.Capacity{CRU: 16, MRU: 64 << 30, SRU: 1 << 40, HRU: 4 << 40, IPv4: 2}
	status := func(node uint64, healthy bool, used api.Capacity) {
		st := api.NodeStatus{Healthy: healthy, Version: "v4.1.0", Total: total, Used: used, Free: total.Sub(used), Deployments: 3,
			Checks: []api.HealthCheck{{Name: "disks", OK: healthy, Reason: map[bool]string{false: "pool degraded"}[healthy]}}}
		if !healthy {
			st.Reasons = []string{"check disks: pool degraded"}
		}
		if err := g.db.RecordNodeStatus(ctx, node, g.now.Add(-time.Minute), st); err != nil {
			t.Fatal(err)
		}
	}
	status(g.good, true, api.Capacity{CRU: 4, MRU: 16 << 30, SRU: 1 << 38, IPv4: 1})
	status(g.sick, false, api.Capacity{CRU: 8, MRU: 32 << 30})
	for _, v := range []api.ZosVersion{
		{Version: "v4.0.0", SafeToUpgrade: true, TestFarms: []uint64{}},
		{Version: "v4.1.0", SafeToUpgrade: false, TestFarms: []uint64{g.beta.FarmID}},
	} {
		if _, err := g.db.SetZosVersion(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin, cfg.AdminTwins = 0, 0, nil
	srv, err := registrar.New(cfg, registrar.Deps{Store: g.db, Now: func() time.Time { return g.now },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	g.url = ts.URL
	return g
}
