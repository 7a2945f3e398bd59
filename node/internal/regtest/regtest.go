// Package regtest runs a real registrar (package registrar on SQLite in a
// temporary directory, served on loopback) for the node packages' tests,
// and creates farms on it.
package regtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
	"github.com/grid4/grid4/store"
)

// Registrar is a registrar running for one test.
type Registrar struct {
	// URL is its base URL (http://127.0.0.1:port).
	URL string
	// Server is the registrar itself (tests run its billing with
	// Server.BillDue).
	Server *registrar.Server
	srv    *httptest.Server
	now    func() time.Time
	admin  *client.Client
}

// Options tune StartWith's registrar.
type Options struct {
	// ReportInterval is the uptime report interval (0: the registrar's
	// default, 40 minutes).
	ReportInterval time.Duration
	// Now is the registrar's clock, and the clock its clients made here
	// sign with (nil: time.Now).
	Now func() time.Time
	// Admin makes the first account, twin 1, the registrar's admin
	// (Admin returns a client signing as it).
	Admin bool
	// Configure, when set, changes the configuration before the registrar
	// starts (grace period, pricing notice...).
	Configure func(*registrar.Config)
}

// Start starts a registrar whose uptime report interval is
// reportInterval (the registrar's default, 40 minutes, when 0) and stops
// it when the test ends.
func Start(t testing.TB, reportInterval time.Duration) *Registrar {
	t.Helper()
	return StartWith(t, Options{ReportInterval: reportInterval})
}

// StartWith starts a registrar with o and stops it when the test ends.
func StartWith(t testing.TB, o Options) *Registrar {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatalf("registrar store: %v", err)
	}
	cfg := registrar.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	if o.Admin {
		cfg.AdminTwins = []uint64{adminTwin}
	}
	if o.ReportInterval > 0 {
		cfg.ReportInterval = o.ReportInterval
	}
	if o.Configure != nil {
		o.Configure(&cfg)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Now: o.Now})
	if err != nil {
		t.Fatalf("registrar: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		db.Close()
	})
	r := &Registrar{URL: ts.URL, Server: srv, srv: ts, now: o.Now}
	if o.Admin {
		_, c, acc := r.Account(t, "admin")
		if acc.TwinID != adminTwin {
			t.Fatalf("the admin's account is twin %d, want %d", acc.TwinID, adminTwin)
		}
		r.admin = c
	}
	return r
}

// adminTwin is the registrar's admin: its first account.
const adminTwin = 1

// Admin returns a client signing as the registrar's admin (credits);
// nil unless Options.Admin.
func (r *Registrar) Admin() *client.Client { return r.admin }

// Stop stops serving (connections are refused from then on).
func (r *Registrar) Stop() { r.srv.Close() }

// Client returns an unsigned client of the registrar.
func (r *Registrar) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(r.URL, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}), client.WithClock(r.now))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Account creates the account of a new ed25519 key and returns the key
// and a client signing with it (on the registrar's clock); who names it
// in failures.
func (r *Registrar) Account(t testing.TB, who string) (keys.KeyPair, *client.Client, api.Account) {
	t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(r.URL, client.WithIdentity(kp, 0), client.WithClock(r.now))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := c.EnsureAccount(context.Background(), client.AccountOptions{})
	if err != nil {
		t.Fatalf("%s account: %v", who, err)
	}
	return kp, c, acc
}

// Farm creates a farmer's account and a farm, and returns the farm id.
func (r *Registrar) Farm(t testing.TB) uint64 {
	t.Helper()
	id, _ := r.Farmer(t)
	return id
}

// Farmer creates a farmer's account and a farm, and returns the farm id
// and a client signing as the farmer.
func (r *Registrar) Farmer(t testing.TB) (uint64, *client.Client) {
	t.Helper()
	_, c, _ := r.Account(t, "farmer")
	id, err := c.CreateFarm(context.Background(), client.NewFarm{Name: fmt.Sprintf("farm%s", rand.Text()[:10])})
	if err != nil {
		t.Fatalf("farm: %v", err)
	}
	return id, c
}

// Twin creates a user's account with a new ed25519 key and returns the
// key and the twin id.
func (r *Registrar) Twin(t testing.TB) (keys.KeyPair, uint64) {
	t.Helper()
	kp, _, acc := r.Account(t, "user")
	return kp, acc.TwinID
}

// Node registers a node of a new ed25519 key in farm farmID, publishing
// endpoints as its zos-api-light endpoints, and returns the key (the node
// key) and the node's record.
func (r *Registrar) Node(t testing.TB, farmID uint64, endpoints ...string) (keys.KeyPair, api.Node) {
	t.Helper()
	kp, c, _ := r.Account(t, "node")
	ctx := context.Background()
	id, err := c.RegisterNode(ctx, api.RegisterNodeRequest{
		FarmID: farmID, SerialNumber: "test",
		Interfaces:   []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2/24"}}},
		APIEndpoints: endpoints,
	})
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	n, err := c.Node(ctx, id)
	if err != nil {
		t.Fatalf("node %d: %v", id, err)
	}
	return kp, n
}

// SetEndpoints replaces the published endpoints of the node of key.
func (r *Registrar) SetEndpoints(t testing.TB, key keys.KeyPair, n api.Node, endpoints ...string) {
	t.Helper()
	c, err := client.New(r.URL, client.WithIdentity(key, n.TwinID), client.WithClock(r.now))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateNode(context.Background(), n.NodeID, api.RegisterNodeRequest{FarmID: n.FarmID, SerialNumber: n.SerialNumber,
		Interfaces: n.Interfaces, APIEndpoints: endpoints}); err != nil {
		t.Fatalf("endpoints of node %d: %v", n.NodeID, err)
	}
}
