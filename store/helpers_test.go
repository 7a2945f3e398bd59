package store_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
	"github.com/grid4/grid4/store/storetest"
)

// opener opens a fresh, empty store for one test; each call may be given
// the same t to get several handles on the same database (as several
// processes would).
type opener struct {
	name string
	// url returns the URL of a fresh empty database for t.
	url func(t testing.TB) string
}

func sqliteFileOpener() opener {
	return opener{name: storetest.SQLite, url: func(t testing.TB) string { return storetest.URL(t, storetest.SQLite) }}
}

func postgresOpener() opener {
	return opener{name: storetest.Postgres, url: storetest.PostgresURL}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mustOpen opens url and closes it when t ends.
func mustOpen(t testing.TB, url string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fixture helpers ------------------------------------------------------------

// pubKey returns a fresh random base64 public key.
func pubKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func mkAccount(t testing.TB, db *store.DB) api.Account {
	t.Helper()
	a, err := db.CreateAccount(context.Background(), api.Account{PublicKey: pubKey(), Relays: []string{"relay.grid.tf"}})
	if err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return a
}

func mkFarm(t testing.TB, db *store.DB, twin uint64) api.Farm {
	t.Helper()
	f, err := db.CreateFarm(context.Background(), api.Farm{FarmName: "farm" + randHex(6), TwinID: twin})
	if err != nil {
		t.Fatalf("CreateFarm: %v", err)
	}
	return f
}

func sampleNode(farm, twin uint64) api.Node {
	return api.Node{
		FarmID: farm, TwinID: twin,
		Location:  api.Location{Country: "Belgium", City: "Ghent", Longitude: "3.72", Latitude: "51.05"},
		Resources: api.Resources{HRU: 4 << 40, SRU: 1 << 40, CRU: 16, MRU: 64 << 30},
		Interfaces: []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56",
			IPs: api.IPList{"10.0.0.2/24", "2001:db8::2/64"}}},
		SecureBoot: true, Virtualized: false, SerialNumber: "SN-" + randHex(4), ZosVersion: "v4.0.0",
		APIEndpoints: []string{"http://10.0.0.2:2021/api/v1/rpc", "http://[2001:db8::2]:2021/api/v1/rpc"},
	}
}

func mkNode(t testing.TB, db *store.DB, farm uint64) api.Node {
	t.Helper()
	tw := mkAccount(t, db)
	n, err := db.CreateNode(context.Background(), sampleNode(farm, tw.TwinID))
	if err != nil {
		t.Fatalf("CreateNode: %v", err)
	}
	return n
}

func nodeIDs(ns []api.Node) []uint64 {
	out := make([]uint64, len(ns))
	for i, n := range ns {
		out[i] = n.NodeID
	}
	return out
}

func farmIDs(fs []api.Farm) []uint64 {
	out := make([]uint64, len(fs))
	for i, f := range fs {
		out[i] = f.FarmID
	}
	return out
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.TrimSpace(fmt.Sprint(err))
}
