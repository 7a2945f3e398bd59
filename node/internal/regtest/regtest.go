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
	srv *httptest.Server
}

// Start starts a registrar whose uptime report interval is
// reportInterval (the registrar's default, 40 minutes, when 0) and stops
// it when the test ends.
func Start(t testing.TB, reportInterval time.Duration) *Registrar {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "registrar.db"))
	if err != nil {
		t.Fatalf("registrar store: %v", err)
	}
	cfg := registrar.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	if reportInterval > 0 {
		cfg.ReportInterval = reportInterval
	}
	srv, err := registrar.New(cfg, registrar.Deps{Store: db})
	if err != nil {
		t.Fatalf("registrar: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		db.Close()
	})
	return &Registrar{URL: ts.URL, srv: ts}
}

// Stop stops serving (connections are refused from then on).
func (r *Registrar) Stop() { r.srv.Close() }

// Client returns an unsigned client of the registrar.
func (r *Registrar) Client(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(r.URL, client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// account creates the account of a new ed25519 key and returns the key
// and a client signing with it.
func (r *Registrar) account(t testing.TB, who string) (keys.KeyPair, *client.Client, api.Account) {
	t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(r.URL, client.WithIdentity(kp, 0))
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
	_, c, _ := r.account(t, "farmer")
	id, err := c.CreateFarm(context.Background(), client.NewFarm{Name: fmt.Sprintf("farm%s", rand.Text()[:10])})
	if err != nil {
		t.Fatalf("farm: %v", err)
	}
	return id
}

// Twin creates a user's account with a new ed25519 key and returns the
// key and the twin id.
func (r *Registrar) Twin(t testing.TB) (keys.KeyPair, uint64) {
	t.Helper()
	kp, _, acc := r.account(t, "user")
	return kp, acc.TwinID
}
