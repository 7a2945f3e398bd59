package client_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
	"github.com/grid4/grid4/store"
)

// validStellar is a Stellar public key with a correct checksum.
const validStellar = "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ"

// startRegistrar runs the real registrar on a fresh SQLite database behind
// an httptest server on loopback. Twin 1 (the first account created) is the
// admin.
func startRegistrar(t *testing.T, mutate func(*registrar.Config)) string {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin = 0, 0
	cfg.AdminTwins = []uint64{1}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("registrar.New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

// newClient makes a client with a new key of scheme (no key when scheme is
// empty).
func newClient(t *testing.T, url string, scheme keys.Scheme, opts ...client.Option) *client.Client {
	t.Helper()
	if scheme != "" {
		kp, err := keys.Generate(scheme)
		if err != nil {
			t.Fatal(err)
		}
		opts = append([]client.Option{client.WithIdentity(kp, 0)}, opts...)
	}
	c, err := client.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// result holds what a client call returned, so that one line can check it:
// try(c.Farm(ctx, id)).must(t).
type result[T any] struct {
	v   T
	err error
}

func try[T any](v T, err error) result[T] { return result[T]{v, err} }

// must fails the test on an error and returns the value.
func (r result[T]) must(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

func wantIs(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("err = %v, want %v", err, target)
	}
}

// TestAgainstRegistrar walks every client method through the real
// registrar: an admin, a farmer with a farm, and a node that registers,
// reports and gets approved.
func TestAgainstRegistrar(t *testing.T) {
	url := startRegistrar(t, nil)
	ctx := context.Background()

	admin := newClient(t, url, keys.Ed25519)
	farmer := newClient(t, url, keys.Sr25519)
	node := newClient(t, url, keys.Ed25519)
	anon := newClient(t, url, "")

	// Accounts.
	adminAcc := try(admin.CreateAccount(ctx, client.AccountOptions{})).must(t)
	if adminAcc.TwinID != 1 || adminAcc.PublicKey != admin.PublicKey() {
		t.Fatalf("admin account %+v", adminAcc)
	}
	farmerAcc := try(farmer.CreateAccount(ctx, client.AccountOptions{Relays: []string{"relay.example.org"}})).must(t)
	if farmer.KnownTwinID() != farmerAcc.TwinID {
		t.Fatal("twin not learnt")
	}
	_, err := farmer.CreateAccount(ctx, client.AccountOptions{})
	wantIs(t, err, client.ErrConflict)
	nodeAcc := try(node.EnsureAccount(ctx, client.AccountOptions{})).must(t)
	if again := try(node.EnsureAccount(ctx, client.AccountOptions{})).must(t); again.TwinID != nodeAcc.TwinID {
		t.Fatalf("EnsureAccount twice: %d then %d", nodeAcc.TwinID, again.TwinID)
	}
	got := try(anon.AccountByTwin(ctx, farmerAcc.TwinID)).must(t)
	if got.PublicKey != farmer.PublicKey() || !slices.Equal(got.Relays, []string{"relay.example.org"}) {
		t.Errorf("AccountByTwin = %+v", got)
	}
	pub, _ := base64.StdEncoding.DecodeString(node.PublicKey())
	if got := try(anon.AccountByPublicKey(ctx, pub)).must(t); got.TwinID != nodeAcc.TwinID {
		t.Errorf("AccountByPublicKey = %+v", got)
	}
	_, err = anon.AccountByTwin(ctx, 999)
	wantIs(t, err, client.ErrNotFound)
	if err := farmer.UpdateAccount(ctx, api.UpdateAccountRequest{Relays: []string{"r1.example.org", "r2.example.org"}, RMBEncKey: "enc"}); err != nil {
		t.Fatal(err)
	}
	if got := try(anon.AccountByTwin(ctx, farmerAcc.TwinID)).must(t); got.RMBEncKey != "enc" || len(got.Relays) != 2 {
		t.Errorf("after update: %+v", got)
	}
	// A fresh client of the same key finds its twin by itself.
	same := try(client.New(url, client.WithIdentity(farmer.KeyPair(), 0))).must(t)
	if id := try(same.TwinID(ctx)).must(t); id != farmerAcc.TwinID {
		t.Errorf("TwinID = %d, want %d", id, farmerAcc.TwinID)
	}
	_, err = newClient(t, url, keys.Ed25519).TwinID(ctx)
	wantIs(t, err, client.ErrNoAccount)

	// Farms.
	farmID := try(farmer.CreateFarm(ctx, client.NewFarm{Name: "alpha", StellarAddress: validStellar})).must(t)
	farm := try(anon.Farm(ctx, farmID)).must(t)
	if farm.FarmName != "alpha" || farm.TwinID != farmerAcc.TwinID || farm.StellarAddress != validStellar {
		t.Errorf("farm %+v", farm)
	}
	_, err = farmer.CreateFarm(ctx, client.NewFarm{Name: "ALPHA"})
	wantIs(t, err, client.ErrConflict)
	_, err = farmer.CreateFarm(ctx, client.NewFarm{Name: "not valid!"})
	var ae *client.APIError
	if !errors.Is(err, client.ErrInvalid) || !errors.As(err, &ae) || ae.Message == "" {
		t.Fatalf("invalid name: %v", err)
	}
	beta := try(farmer.CreateFarm(ctx, client.NewFarm{Name: "beta", Dedicated: true})).must(t)
	_, err = anon.Farm(ctx, 999)
	wantIs(t, err, client.ErrNotFound)
	if l := try(anon.ListFarms(ctx, client.FarmFilter{Name: "ALP"}, client.Page{})).must(t); len(l) != 1 || l[0].FarmID != farmID {
		t.Errorf("ListFarms by name = %+v", l)
	}
	var ids []uint64
	for f, err := range anon.Farms(ctx, client.FarmFilter{TwinID: farmerAcc.TwinID}) {
		ids = append(ids, try(f, err).must(t).FarmID)
	}
	if !slices.Equal(ids, []uint64{farmID, beta}) {
		t.Errorf("Farms = %v", ids)
	}
	newName, dedicated := "gamma", true
	if err := farmer.UpdateFarm(ctx, beta, api.UpdateFarmRequest{FarmName: &newName, Dedicated: &dedicated}); err != nil {
		t.Fatal(err)
	}
	if f := try(anon.Farm(ctx, beta)).must(t); f.FarmName != "gamma" || !f.Dedicated {
		t.Errorf("after update: %+v", f)
	}
	err = node.UpdateFarm(ctx, beta, api.UpdateFarmRequest{FarmName: &newName})
	wantIs(t, err, client.ErrUnauthorized)

	// Nodes.
	reg := api.RegisterNodeRequest{
		FarmID:       farmID,
		Resources:    api.Resources{CRU: 8, MRU: 16 << 30, SRU: 512 << 30, HRU: 2 << 40},
		Location:     api.Location{Country: "Belgium", City: "Ghent", Latitude: "51.05", Longitude: "3.72"},
		Interfaces:   []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2/24"}}},
		SerialNumber: "SN-1",
		ZosVersion:   "v4.1.0",
	}
	nodeID := try(node.RegisterNode(ctx, reg)).must(t)
	_, err = node.RegisterNode(ctx, reg)
	wantIs(t, err, client.ErrConflict)
	n := try(anon.Node(ctx, nodeID)).must(t)
	if n.TwinID != nodeAcc.TwinID || n.FarmID != farmID || n.Approved || n.LastSeen != nil || n.Resources != reg.Resources {
		t.Errorf("node %+v", n)
	}
	if n2 := try(anon.NodeByTwin(ctx, nodeAcc.TwinID)).must(t); n2.NodeID != nodeID {
		t.Errorf("NodeByTwin = %+v", n2)
	}
	_, err = anon.NodeByTwin(ctx, farmerAcc.TwinID)
	wantIs(t, err, client.ErrNotFound)
	_, err = anon.Node(ctx, 999)
	wantIs(t, err, client.ErrNotFound)
	_, err = farmer.RegisterNode(ctx, api.RegisterNodeRequest{FarmID: 999, SerialNumber: "x", Interfaces: reg.Interfaces})
	if err == nil {
		t.Fatal("registering in a missing farm succeeded")
	}

	// Uptime.
	rep := try(node.ReportUptime(ctx, nodeID, time.Hour)).must(t)
	if rep.Message == "" || rep.NextReportIn <= 0 {
		t.Errorf("uptime reply %+v", rep)
	}
	_, err = farmer.ReportUptime(ctx, nodeID, time.Hour)
	wantIs(t, err, client.ErrUnauthorized)
	if n := try(anon.Node(ctx, nodeID)).must(t); n.LastSeen == nil || !n.Online {
		t.Errorf("after report: last seen %v online %v", n.LastSeen, n.Online)
	}
	sessions := try(anon.UptimeHistory(ctx, nodeID, time.Now().Add(-24*time.Hour), time.Time{})).must(t)
	if len(sessions) != 1 || sessions[0].Uptime != 3600 {
		t.Errorf("uptime history %+v", sessions)
	}
	online := true
	if l := try(anon.ListNodes(ctx, client.NodeFilter{FarmID: farmID, Online: &online}, client.Page{})).must(t); len(l) != 1 {
		t.Errorf("online nodes %+v", l)
	}
	online = false
	if l := try(anon.ListNodes(ctx, client.NodeFilter{FarmID: farmID, Online: &online}, client.Page{})).must(t); len(l) != 0 {
		t.Errorf("offline nodes %+v", l)
	}

	// Status.
	if st := try(anon.NodeStatus(ctx, nodeID, 0)).must(t); st.Latest != nil || st.History == nil {
		t.Errorf("status before reports %+v", st)
	}
	report := api.NodeStatusReport{Healthy: true, Version: "v4.2.0",
		Total: api.Capacity{CRU: 8, MRU: 16 << 30}, Used: api.Capacity{CRU: 2, MRU: 4 << 30},
		Modules: []api.ModuleState{{Name: "provisiond", State: "running"}}}
	if err := node.ReportStatus(ctx, nodeID, report); err != nil {
		t.Fatal(err)
	}
	wantIs(t, farmer.ReportStatus(ctx, nodeID, report), client.ErrUnauthorized)
	wantIs(t, node.ReportStatus(ctx, 999, report), client.ErrNotFound)
	bad := report
	bad.Version = "four"
	wantIs(t, node.ReportStatus(ctx, nodeID, bad), client.ErrInvalid)
	st := try(anon.NodeStatus(ctx, nodeID, 1)).must(t)
	if st.Latest == nil || !st.Latest.Healthy || st.Latest.Free != (api.Capacity{CRU: 6, MRU: 12 << 30}) || len(st.History) != 1 {
		t.Errorf("status %+v", st)
	}
	_, err = anon.NodeStatus(ctx, 999, 0)
	wantIs(t, err, client.ErrNotFound)
	healthy := true
	if l := try(anon.ListNodes(ctx, client.NodeFilter{Healthy: &healthy, FreeAtLeast: api.Capacity{MRU: 12 << 30}}, client.Page{})).must(t); len(l) != 1 || !l[0].Healthy {
		t.Errorf("healthy nodes with 12 GiB free %+v", l)
	}
	if l := try(anon.ListNodes(ctx, client.NodeFilter{FreeAtLeast: api.Capacity{MRU: 12<<30 + 1}}, client.Page{})).must(t); len(l) != 0 {
		t.Errorf("nodes with more than 12 GiB free %+v", l)
	}
	healthy = false
	if l := try(anon.ListNodes(ctx, client.NodeFilter{Healthy: &healthy}, client.Page{})).must(t); len(l) != 0 {
		t.Errorf("unhealthy nodes %+v", l)
	}

	// Approval.
	if err := farmer.ApproveNodes(ctx, farmID, nodeID); err != nil {
		t.Fatal(err)
	}
	if !try(anon.Node(ctx, nodeID)).must(t).Approved {
		t.Error("not approved")
	}
	wantIs(t, node.ApproveNodes(ctx, farmID, nodeID), client.ErrUnauthorized)
	wantIs(t, farmer.ApproveNodes(ctx, beta, nodeID), client.ErrNotFound)
	if err := farmer.RejectNodes(ctx, farmID, nodeID); err != nil {
		t.Fatal(err)
	}
	if try(anon.Node(ctx, nodeID)).must(t).Approved {
		t.Error("still approved")
	}

	// Moving the node clears its approval; the update is applied whole.
	if err := farmer.ApproveNodes(ctx, farmID, nodeID); err != nil {
		t.Fatal(err)
	}
	reg.FarmID, reg.SerialNumber = beta, "SN-2"
	if err := node.UpdateNode(ctx, nodeID, reg); err != nil {
		t.Fatal(err)
	}
	if n := try(anon.Node(ctx, nodeID)).must(t); n.FarmID != beta || n.SerialNumber != "SN-2" || n.Approved {
		t.Errorf("after move: %+v", n)
	}
	wantIs(t, farmer.UpdateNode(ctx, nodeID, reg), client.ErrUnauthorized)
	var nodes []uint64
	for n, err := range anon.Nodes(ctx, client.NodeFilter{}) {
		nodes = append(nodes, try(n, err).must(t).NodeID)
	}
	if !slices.Equal(nodes, []uint64{nodeID}) {
		t.Errorf("Nodes = %v", nodes)
	}

	// ZOS version.
	_, err = admin.ZosVersion(ctx)
	wantIs(t, err, client.ErrNotFound)
	_, err = anon.LegacyZosVersion(ctx)
	wantIs(t, err, client.ErrNotFound)
	_, err = farmer.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.2"})
	wantIs(t, err, client.ErrUnauthorized)
	v1 := try(admin.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.2", TestFarms: []uint64{farmID, beta}})).must(t)
	if v1.Serial == 0 || v1.SetBy != 1 || v1.SafeToUpgrade || !slices.Equal(v1.TestFarms, []uint64{farmID, beta}) {
		t.Errorf("set %+v", v1)
	}
	_, err = admin.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.2", TestFarms: []uint64{farmID, beta}})
	wantIs(t, err, client.ErrConflict)
	v2 := try(admin.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.2", SafeToUpgrade: true})).must(t)
	if cur := try(anon.ZosVersion(ctx)).must(t); cur.Serial != v2.Serial || !cur.SafeToUpgrade {
		t.Errorf("current %+v", cur)
	}
	if lv := try(anon.LegacyZosVersion(ctx)).must(t); lv.Version != "v4.1.2" || !lv.SafeToUpgrade {
		t.Errorf("legacy %+v", lv)
	}
	if err := admin.SetLegacyZosVersion(ctx, "v4.1.3", false); err != nil {
		t.Fatal(err)
	}
	wantIs(t, admin.SetLegacyZosVersion(ctx, "v4.1.3", false), client.ErrConflict)
	wantIs(t, farmer.SetLegacyZosVersion(ctx, "v4.1.4", false), client.ErrUnauthorized)
	if cur := try(anon.ZosVersion(ctx)).must(t); cur.Version != "v4.1.3" || cur.SafeToUpgrade {
		t.Errorf("after compat PUT: %+v", cur)
	}
	hist := try(anon.ZosVersionHistory(ctx, client.Page{Number: 1, Size: 2})).must(t)
	if len(hist) != 2 || hist[0].Version != "v4.1.3" || hist[1].Serial != v2.Serial {
		t.Errorf("history page %+v", hist)
	}
	var serials []uint64
	for v, err := range anon.ZosVersions(ctx) {
		serials = append(serials, try(v, err).must(t).Serial)
	}
	if len(serials) != 3 || serials[0] <= serials[1] || serials[1] <= serials[2] {
		t.Errorf("history serials %v", serials)
	}
}

func TestAgainstRegistrarLegacyAuth(t *testing.T) {
	// The admin routes take X-Auth only with --admin-legacy-auth.
	url := startRegistrar(t, func(c *registrar.Config) { c.AdminLegacyAuth = true })
	ctx := context.Background()
	admin := newClient(t, url, keys.Ed25519, client.WithAuthScheme(client.AuthLegacy))
	try(admin.CreateAccount(ctx, client.AccountOptions{})).must(t)
	farmID := try(admin.CreateFarm(ctx, client.NewFarm{Name: "legacy"})).must(t)
	name := "renamed"
	if err := admin.UpdateFarm(ctx, farmID, api.UpdateFarmRequest{FarmName: &name}); err != nil {
		t.Fatal(err)
	}
	if err := admin.SetLegacyZosVersion(ctx, "v4.0.1", true); err != nil {
		t.Fatal(err)
	}
	// A node reports its status with X-Auth as it reports its uptime.
	node := newClient(t, url, keys.Ed25519, client.WithAuthScheme(client.AuthLegacy))
	try(node.CreateAccount(ctx, client.AccountOptions{})).must(t)
	nodeID := try(node.RegisterNode(ctx, api.RegisterNodeRequest{FarmID: farmID,
		Interfaces: []api.Interface{{Name: "zos", Mac: "52:54:00:00:00:01", IPs: api.IPList{"10.0.0.1"}}}})).must(t)
	if err := node.ReportStatus(ctx, nodeID, api.NodeStatusReport{Healthy: true}); err != nil {
		t.Fatalf("status with X-Auth: %v", err)
	}
	strict := startRegistrar(t, nil)
	strictAdmin := newClient(t, strict, keys.Ed25519, client.WithAuthScheme(client.AuthLegacy))
	try(strictAdmin.CreateAccount(ctx, client.AccountOptions{})).must(t)
	wantIs(t, strictAdmin.SetLegacyZosVersion(ctx, "v4.0.1", true), client.ErrUnauthorized)

	// A registrar with legacy auth off refuses it, with its reason.
	off := startRegistrar(t, func(c *registrar.Config) { c.LegacyAuth = false })
	c := newClient(t, off, keys.Ed25519, client.WithAuthScheme(client.AuthLegacy))
	try(c.CreateAccount(ctx, client.AccountOptions{})).must(t)
	_, err := c.CreateFarm(ctx, client.NewFarm{Name: "x"})
	var ae *client.APIError
	if !errors.Is(err, client.ErrUnauthorized) || !errors.As(err, &ae) || ae.Message == "" {
		t.Fatalf("legacy on a v2-only registrar: %v", err)
	}
}

func TestAgainstRegistrarRateLimit(t *testing.T) {
	url := startRegistrar(t, func(c *registrar.Config) { c.RateIP, c.RateIPBurst = 0.001, 2 })
	var slept []time.Duration
	c := newClient(t, url, "", client.WithSleep(func(ctx context.Context, d time.Duration) error {
		slept = append(slept, d)
		return ctx.Err()
	}), client.WithRetry(client.RetryPolicy{MaxAttempts: 2}))
	ctx := context.Background()
	var err error
	for range 5 {
		if _, err = c.ListFarms(ctx, client.FarmFilter{}, client.Page{}); err != nil {
			break
		}
	}
	var ae *client.APIError
	if !errors.Is(err, client.ErrRateLimited) || !errors.As(err, &ae) || ae.Status != 429 {
		t.Fatalf("err = %v", err)
	}
	// The registrar's Retry-After (about 1000s at this rate) exceeds the
	// policy's limit: the client gives up at once instead of sleeping.
	if ae.RetryAfter <= 0 || len(slept) != 0 {
		t.Errorf("RetryAfter %v, slept %v", ae.RetryAfter, slept)
	}
}
