package store_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// TestConformance runs the same behavioural suite against every dialect:
// SQLite in a temporary file, SQLite in memory, and PostgreSQL in a
// schema of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	for _, op := range []opener{
		sqliteFileOpener(),
		{name: "sqlite-memory", url: func(testing.TB) string { return "sqlite::memory:" }},
		postgresOpener(),
	} {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			runConformance(t, func(t *testing.T) *store.DB { return mustOpen(t, op.url(t)) })
		})
	}
}

// runConformance is the conformance suite: open gives each subtest a fresh
// empty database.
func runConformance(t *testing.T, open func(t *testing.T) *store.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"Open", testOpen},
		{"Accounts", testAccounts},
		{"Farms", testFarms},
		{"ListFarms", testListFarms},
		{"Nodes", testNodes},
		{"ListNodes", testListNodes},
		{"UpdateNode", testUpdateNode},
		{"Approval", testApproval},
		{"Uptime", testUptime},
		{"UptimeSessions", testUptimeSessions},
		{"ZosVersion", testZosVersion},
		{"Nonces", testNonces},
		{"UptimeOnce", testUptimeOnce},
		{"BadInput", testBadInput},
		{"SeedNodes", testSeedNodes},
		{"Stats", testStats},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// wantErr fails t unless err wraps target.
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one wrapping %v", what, errText(err), target)
	}
}

// must returns v, failing the test given to the returned function if err
// is not nil: must(db.Node(ctx, id))(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func testOpen(t *testing.T, db *store.DB) {
	ctx := context.Background()
	if d := db.Dialect(); d != store.DialectSQLite && d != store.DialectPostgres {
		t.Fatalf("Dialect() = %q", d)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	v, err := db.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("SchemaVersion = %d, %v; want >= 1", v, err)
	}
}

func testAccounts(t *testing.T, db *store.DB) {
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	pk := pubKey()
	a, err := db.CreateAccount(ctx, api.Account{TwinID: 999, PublicKey: pk, Relays: []string{"r1", "r2"}, RMBEncKey: "enc"})
	if err != nil {
		t.Fatal(err)
	}
	if a.TwinID == 0 {
		t.Fatalf("TwinID not assigned: %+v", a)
	}
	if a.PublicKey != pk || !slices.Equal(a.Relays, []string{"r1", "r2"}) || a.RMBEncKey != "enc" {
		t.Fatalf("CreateAccount returned %+v", a)
	}
	if a.CreatedAt.Before(start) || !a.CreatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("timestamps: %+v", a)
	}
	b := must(db.CreateAccount(ctx, api.Account{PublicKey: pubKey()}))(t)
	if b.TwinID <= a.TwinID {
		t.Fatalf("twin ids not increasing: %d then %d", a.TwinID, b.TwinID)
	}
	if b.Relays == nil || len(b.Relays) != 0 {
		t.Fatalf("nil relays should read back as []: %#v", b.Relays)
	}

	_, err = db.CreateAccount(ctx, api.Account{PublicKey: pk})
	wantErr(t, err, store.ErrConflict, "duplicate public key")

	got := must(db.AccountByTwin(ctx, a.TwinID))(t)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("AccountByTwin = %+v, want %+v", got, a)
	}
	got = must(db.AccountByPublicKey(ctx, pk))(t)
	if !reflect.DeepEqual(got, a) {
		t.Fatalf("AccountByPublicKey = %+v, want %+v", got, a)
	}
	_, err = db.AccountByTwin(ctx, b.TwinID+100)
	wantErr(t, err, store.ErrNotFound, "AccountByTwin unknown")
	_, err = db.AccountByPublicKey(ctx, pubKey())
	wantErr(t, err, store.ErrNotFound, "AccountByPublicKey unknown")

	// nil, nil changes nothing but updated_at.
	u := must(db.UpdateAccount(ctx, a.TwinID, nil, nil))(t)
	if !slices.Equal(u.Relays, a.Relays) || u.RMBEncKey != a.RMBEncKey || u.UpdatedAt.Before(a.UpdatedAt) {
		t.Fatalf("UpdateAccount(nil, nil) = %+v", u)
	}
	key := "newkey"
	u = must(db.UpdateAccount(ctx, a.TwinID, []string{"r3"}, &key))(t)
	if !slices.Equal(u.Relays, []string{"r3"}) || u.RMBEncKey != "newkey" || !u.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("UpdateAccount = %+v", u)
	}
	u = must(db.UpdateAccount(ctx, a.TwinID, []string{}, nil))(t)
	if len(u.Relays) != 0 || u.RMBEncKey != "newkey" {
		t.Fatalf("UpdateAccount(empty relays) = %+v", u)
	}
	if got := must(db.AccountByTwin(ctx, a.TwinID))(t); !reflect.DeepEqual(got, u) {
		t.Fatalf("after update AccountByTwin = %+v, want %+v", got, u)
	}
	_, err = db.UpdateAccount(ctx, b.TwinID+100, nil, &key)
	wantErr(t, err, store.ErrNotFound, "UpdateAccount unknown")
}

func testFarms(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	f, err := db.CreateFarm(ctx, api.Farm{FarmID: 77, FarmName: "MyFarm", TwinID: owner.TwinID,
		StellarAddress: "GABC", Dedicated: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.FarmID == 0 || f.FarmName != "MyFarm" || f.TwinID != owner.TwinID || f.StellarAddress != "GABC" || !f.Dedicated ||
		f.CreatedAt.IsZero() || !f.CreatedAt.Equal(f.UpdatedAt) {
		t.Fatalf("CreateFarm = %+v", f)
	}
	if got := must(db.Farm(ctx, f.FarmID))(t); !reflect.DeepEqual(got, f) {
		t.Fatalf("Farm = %+v, want %+v", got, f)
	}
	_, err = db.Farm(ctx, f.FarmID+100)
	wantErr(t, err, store.ErrNotFound, "Farm unknown")

	for _, name := range []string{"MyFarm", "myfarm", "MYFARM"} {
		_, err = db.CreateFarm(ctx, api.Farm{FarmName: name, TwinID: owner.TwinID})
		wantErr(t, err, store.ErrConflict, "duplicate farm name "+name)
	}
	_, err = db.CreateFarm(ctx, api.Farm{FarmName: "Orphan", TwinID: owner.TwinID + 100})
	wantErr(t, err, store.ErrNotFound, "farm of an unknown twin")
	if n := len(must(db.ListFarms(ctx, store.FarmFilter{}, store.Page{}))(t)); n != 1 {
		t.Fatalf("refused creations left %d farms, want 1", n)
	}

	// Partial update.
	other := must(db.CreateFarm(ctx, api.Farm{FarmName: "Other", TwinID: owner.TwinID}))(t)
	addr := "GXYZ"
	u := must(db.UpdateFarm(ctx, f.FarmID, api.UpdateFarmRequest{StellarAddress: &addr}))(t)
	if u.FarmName != "MyFarm" || u.StellarAddress != "GXYZ" || !u.Dedicated || !u.CreatedAt.Equal(f.CreatedAt) {
		t.Fatalf("UpdateFarm(stellar) = %+v", u)
	}
	no := false
	u = must(db.UpdateFarm(ctx, f.FarmID, api.UpdateFarmRequest{Dedicated: &no}))(t)
	if u.Dedicated || u.StellarAddress != "GXYZ" {
		t.Fatalf("UpdateFarm(dedicated=false) = %+v", u)
	}
	// Renaming onto another farm's name (any case) is refused and changes nothing.
	taken := "oTHER"
	_, err = db.UpdateFarm(ctx, f.FarmID, api.UpdateFarmRequest{FarmName: &taken, StellarAddress: &taken})
	wantErr(t, err, store.ErrConflict, "rename onto a taken name")
	if got := must(db.Farm(ctx, f.FarmID))(t); !reflect.DeepEqual(got, u) {
		t.Fatalf("refused rename changed the farm: %+v, want %+v", got, u)
	}
	// Changing the case of its own name is fine.
	own := "MYFARM"
	u = must(db.UpdateFarm(ctx, f.FarmID, api.UpdateFarmRequest{FarmName: &own}))(t)
	if u.FarmName != "MYFARM" {
		t.Fatalf("rename = %+v", u)
	}
	// The old name's other case is free for another farm now? No: MYFARM holds it.
	_, err = db.CreateFarm(ctx, api.Farm{FarmName: "myFarm", TwinID: owner.TwinID})
	wantErr(t, err, store.ErrConflict, "name held by a renamed farm")
	_, err = db.UpdateFarm(ctx, other.FarmID+100, api.UpdateFarmRequest{FarmName: &own})
	wantErr(t, err, store.ErrNotFound, "UpdateFarm unknown")
}

func testListFarms(t *testing.T, db *store.DB) {
	ctx := context.Background()
	a, b := mkAccount(t, db), mkAccount(t, db)
	names := []string{"Alpha", "alphabet", "Beta", "GAMMA", "gammaray", "Delta", "under_score", "percent%1"}
	var all []api.Farm
	for i, n := range names {
		owner := a.TwinID
		if i%2 == 1 {
			owner = b.TwinID
		}
		all = append(all, must(db.CreateFarm(ctx, api.Farm{FarmName: n, TwinID: owner}))(t))
	}
	list := func(f store.FarmFilter, p store.Page) []uint64 {
		t.Helper()
		fs, err := db.ListFarms(ctx, f, p)
		if err != nil {
			t.Fatal(err)
		}
		if fs == nil {
			t.Fatal("ListFarms returned nil")
		}
		return farmIDs(fs)
	}
	if got, want := list(store.FarmFilter{}, store.Page{}), farmIDs(all); !slices.Equal(got, want) {
		t.Fatalf("all farms = %v, want %v", got, want)
	}
	if got := list(store.FarmFilter{FarmID: all[2].FarmID}, store.Page{}); !slices.Equal(got, []uint64{all[2].FarmID}) {
		t.Fatalf("by id = %v", got)
	}
	if got := list(store.FarmFilter{TwinID: b.TwinID}, store.Page{}); !slices.Equal(got,
		[]uint64{all[1].FarmID, all[3].FarmID, all[5].FarmID, all[7].FarmID}) {
		t.Fatalf("by twin = %v", got)
	}
	if got := list(store.FarmFilter{NameContains: "ALPHA"}, store.Page{}); !slices.Equal(got, []uint64{all[0].FarmID, all[1].FarmID}) {
		t.Fatalf("name contains ALPHA = %v", got)
	}
	if got := list(store.FarmFilter{NameContains: "mMa"}, store.Page{}); !slices.Equal(got, []uint64{all[3].FarmID, all[4].FarmID}) {
		t.Fatalf("name contains mMa = %v", got)
	}
	if got := list(store.FarmFilter{NameContains: "mma", TwinID: a.TwinID}, store.Page{}); !slices.Equal(got, []uint64{all[4].FarmID}) {
		t.Fatalf("name and twin = %v", got)
	}
	// LIKE wildcards in the filter are literal.
	if got := list(store.FarmFilter{NameContains: "_"}, store.Page{}); !slices.Equal(got, []uint64{all[6].FarmID}) {
		t.Fatalf("name contains _ = %v", got)
	}
	if got := list(store.FarmFilter{NameContains: "%"}, store.Page{}); !slices.Equal(got, []uint64{all[7].FarmID}) {
		t.Fatalf("name contains %% = %v", got)
	}
	if got := list(store.FarmFilter{NameContains: "zzz"}, store.Page{}); len(got) != 0 {
		t.Fatalf("no match = %v", got)
	}
	// Pagination.
	var paged []uint64
	for p := uint64(1); p <= 3; p++ {
		got := list(store.FarmFilter{}, store.Page{Number: p, Size: 3})
		if p < 3 && len(got) != 3 || p == 3 && len(got) != 2 {
			t.Fatalf("page %d = %v", p, got)
		}
		paged = append(paged, got...)
	}
	if !slices.Equal(paged, farmIDs(all)) {
		t.Fatalf("pages = %v, want %v", paged, farmIDs(all))
	}
	if got := list(store.FarmFilter{}, store.Page{Number: 4, Size: 3}); len(got) != 0 {
		t.Fatalf("page past the end = %v", got)
	}
	if got := list(store.FarmFilter{}, store.Page{Number: 0, Size: 2}); !slices.Equal(got, farmIDs(all[:2])) {
		t.Fatalf("page 0 = %v, want page 1", got)
	}
	if got := list(store.FarmFilter{}, store.Page{Number: math.MaxUint64, Size: 100}); len(got) != 0 {
		t.Fatalf("huge page = %v", got)
	}
}

func testNodes(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	tw := mkAccount(t, db)
	in := sampleNode(farm.FarmID, tw.TwinID)
	in.NodeID, in.Approved, in.Online = 555, true, true
	seen := time.Now()
	in.LastSeen = &seen
	n, err := db.CreateNode(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if n.NodeID == 0 || n.Approved || n.Online || n.LastSeen != nil || n.CreatedAt.IsZero() || !n.CreatedAt.Equal(n.UpdatedAt) {
		t.Fatalf("CreateNode = %+v", n)
	}
	want := in
	want.NodeID, want.Approved, want.Online, want.LastSeen, want.CreatedAt, want.UpdatedAt = n.NodeID, false, false, nil, n.CreatedAt, n.UpdatedAt
	if !reflect.DeepEqual(n, want) {
		t.Fatalf("CreateNode = %+v\nwant %+v", n, want)
	}
	if got := must(db.Node(ctx, n.NodeID))(t); !reflect.DeepEqual(got, n) {
		t.Fatalf("Node = %+v\nwant %+v", got, n)
	}
	_, err = db.Node(ctx, n.NodeID+100)
	wantErr(t, err, store.ErrNotFound, "Node unknown")

	// One node per twin.
	_, err = db.CreateNode(ctx, sampleNode(farm.FarmID, tw.TwinID))
	wantErr(t, err, store.ErrConflict, "second node of a twin")
	// Unknown farm, unknown twin.
	tw2 := mkAccount(t, db)
	_, err = db.CreateNode(ctx, sampleNode(farm.FarmID+100, tw2.TwinID))
	wantErr(t, err, store.ErrFarmNotFound, "node in an unknown farm")
	_, err = db.CreateNode(ctx, sampleNode(0, tw2.TwinID))
	wantErr(t, err, store.ErrFarmNotFound, "node in farm 0")
	_, err = db.CreateNode(ctx, sampleNode(farm.FarmID, tw2.TwinID+100))
	wantErr(t, err, store.ErrNotFound, "node of an unknown twin")
	if errors.Is(err, store.ErrFarmNotFound) {
		t.Fatalf("unknown twin reported as unknown farm: %v", err)
	}
	// A resource beyond int64 is refused and stores nothing.
	big := sampleNode(farm.FarmID, tw2.TwinID)
	big.Resources.MRU = math.MaxUint64
	_, err = db.CreateNode(ctx, big)
	wantErr(t, err, store.ErrInvalid, "huge resource")
	if c := must(db.CountNodes(ctx))(t); c != 1 {
		t.Fatalf("CountNodes = %d after refused creations, want 1", c)
	}
	// Nil interfaces read back as [], no endpoints as nil (absent from
	// the JSON).
	n2 := must(db.CreateNode(ctx, api.Node{FarmID: farm.FarmID, TwinID: tw2.TwinID}))(t)
	if n2.Interfaces == nil || len(n2.Interfaces) != 0 || n2.APIEndpoints != nil || n2.NodeID <= n.NodeID {
		t.Fatalf("bare node = %+v", n2)
	}
	if c := must(db.CountNodes(ctx))(t); c != 2 {
		t.Fatalf("CountNodes = %d, want 2", c)
	}
}

func testListNodes(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	f1, f2 := mkFarm(t, db, owner.TwinID), mkFarm(t, db, owner.TwinID)
	var ns []api.Node
	for i := range 7 {
		f := f1
		if i%3 == 2 {
			f = f2
		}
		ns = append(ns, mkNode(t, db, f.FarmID))
	}
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	// Node i (i < 5) last reported at base + i minutes; 5 and 6 never did.
	for i := range 5 {
		must(db.RecordUptime(ctx, ns[i].NodeID, base.Add(time.Duration(i)*time.Minute), 1000))(t)
	}
	list := func(f store.NodeFilter, p store.Page) []uint64 {
		t.Helper()
		got, err := db.ListNodes(ctx, f, p)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil {
			t.Fatal("ListNodes returned nil")
		}
		return nodeIDs(got)
	}
	ids := func(idx ...int) []uint64 {
		out := []uint64{}
		for _, i := range idx {
			out = append(out, ns[i].NodeID)
		}
		return out
	}
	if got := list(store.NodeFilter{}, store.Page{}); !slices.Equal(got, nodeIDs(ns)) {
		t.Fatalf("all = %v", got)
	}
	if got := list(store.NodeFilter{FarmID: f2.FarmID}, store.Page{}); !slices.Equal(got, ids(2, 5)) {
		t.Fatalf("farm 2 = %v", got)
	}
	if got := list(store.NodeFilter{FarmID: f1.FarmID}, store.Page{Number: 2, Size: 2}); !slices.Equal(got, ids(3, 4)) {
		t.Fatalf("farm 1 page 2 = %v", got)
	}
	// Keyset pages: the nodes after a node id, in order; a page number
	// still applies on top.
	if got := list(store.NodeFilter{FarmID: f1.FarmID, AfterNodeID: ns[1].NodeID}, store.Page{Size: 2}); !slices.Equal(got, ids(3, 4)) {
		t.Fatalf("farm 1 after node 1 = %v", got)
	}
	if got := list(store.NodeFilter{FarmID: f1.FarmID, AfterNodeID: ns[4].NodeID}, store.Page{Size: 2}); !slices.Equal(got, ids(6)) {
		t.Fatalf("farm 1 after node 4 = %v", got)
	}
	if got := list(store.NodeFilter{FarmID: f1.FarmID, AfterNodeID: ns[6].NodeID}, store.Page{}); len(got) != 0 {
		t.Fatalf("farm 1 after its last node = %v", got)
	}
	if got := list(store.NodeFilter{AfterNodeID: ns[0].NodeID}, store.Page{Number: 2, Size: 2}); !slices.Equal(got, ids(3, 4)) {
		t.Fatalf("all after node 0, page 2 = %v", got)
	}
	if got := list(store.NodeFilter{AfterNodeID: math.MaxUint64}, store.Page{}); len(got) != 0 {
		t.Fatalf("after the largest id = %v", got)
	}
	cut0 := base.Add(2 * time.Minute)
	if got := list(store.NodeFilter{FarmID: f1.FarmID, AfterNodeID: ns[0].NodeID, SeenSince: &cut0}, store.Page{Size: 1}); !slices.Equal(got, ids(3)) {
		t.Fatalf("farm 1 online after node 0 = %v", got)
	}
	if got := list(store.NodeFilter{NodeID: ns[3].NodeID}, store.Page{}); !slices.Equal(got, ids(3)) {
		t.Fatalf("by node id = %v", got)
	}
	if got := list(store.NodeFilter{TwinID: ns[4].TwinID}, store.Page{}); !slices.Equal(got, ids(4)) {
		t.Fatalf("by twin = %v", got)
	}
	if got := list(store.NodeFilter{TwinID: ns[4].TwinID, FarmID: f2.FarmID}, store.Page{}); len(got) != 0 {
		t.Fatalf("twin in the wrong farm = %v", got)
	}
	cut := base.Add(2 * time.Minute)
	if got := list(store.NodeFilter{SeenSince: &cut}, store.Page{}); !slices.Equal(got, ids(2, 3, 4)) {
		t.Fatalf("seen since = %v", got)
	}
	if got := list(store.NodeFilter{NotSeenSince: &cut}, store.Page{}); !slices.Equal(got, ids(0, 1, 5, 6)) {
		t.Fatalf("not seen since = %v", got)
	}
	if got := list(store.NodeFilter{NotSeenSince: &cut, FarmID: f2.FarmID}, store.Page{}); !slices.Equal(got, ids(5)) {
		t.Fatalf("not seen since in farm 2 = %v", got)
	}
	later := base.Add(3 * time.Minute)
	if got := list(store.NodeFilter{SeenSince: &cut, NotSeenSince: &later}, store.Page{}); !slices.Equal(got, ids(2)) {
		t.Fatalf("seen in [cut, later) = %v", got)
	}
	got := must(db.ListNodes(ctx, store.NodeFilter{NodeID: ns[1].NodeID}, store.Page{}))(t)
	if len(got) != 1 || got[0].LastSeen == nil || !got[0].LastSeen.Equal(base.Add(time.Minute)) {
		t.Fatalf("LastSeen in list = %+v", got)
	}
	got = must(db.ListNodes(ctx, store.NodeFilter{NodeID: ns[6].NodeID}, store.Page{}))(t)
	if len(got) != 1 || got[0].LastSeen != nil {
		t.Fatalf("LastSeen of a silent node = %+v", got)
	}
	if n := must(db.Node(ctx, ns[1].NodeID))(t); !reflect.DeepEqual(n, got0(t, db, ns[1].NodeID)) {
		t.Fatalf("Node and ListNodes disagree: %+v", n)
	}
}

// got0 returns the node nodeID as ListNodes gives it.
func got0(t *testing.T, db *store.DB, nodeID uint64) api.Node {
	t.Helper()
	ns := must(db.ListNodes(context.Background(), store.NodeFilter{NodeID: nodeID}, store.Page{}))(t)
	if len(ns) != 1 {
		t.Fatalf("ListNodes(node %d) = %d nodes", nodeID, len(ns))
	}
	return ns[0]
}

func testUpdateNode(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	f1, f2 := mkFarm(t, db, owner.TwinID), mkFarm(t, db, owner.TwinID)
	n := mkNode(t, db, f1.FarmID)
	if err := db.SetApproval(ctx, f1.FarmID, []uint64{n.NodeID}, true); err != nil {
		t.Fatal(err)
	}
	must(db.RecordUptime(ctx, n.NodeID, time.Now(), 60))(t)

	// Same farm: approval kept; zero values overwrite.
	upd := api.Node{FarmID: f1.FarmID, TwinID: 12345, NodeID: 999,
		Location:   api.Location{Country: "Egypt", City: "Cairo", Longitude: "31.2", Latitude: "30.0"},
		Resources:  api.Resources{CRU: 2},
		Interfaces: []api.Interface{{Name: "zos", Mac: "aa:bb:cc:dd:ee:ff", IPs: api.IPList{"192.168.1.5"}}},
	}
	u := must(db.UpdateNode(ctx, n.NodeID, upd))(t)
	if !u.Approved || u.TwinID != n.TwinID || u.NodeID != n.NodeID || u.SecureBoot || u.SerialNumber != "" || u.ZosVersion != "" || u.APIEndpoints != nil ||
		u.Resources != upd.Resources || u.Location != upd.Location || !reflect.DeepEqual(u.Interfaces, upd.Interfaces) ||
		u.LastSeen == nil || !u.CreatedAt.Equal(n.CreatedAt) || u.UpdatedAt.Before(n.UpdatedAt) {
		t.Fatalf("UpdateNode same farm = %+v", u)
	}
	if got := must(db.Node(ctx, n.NodeID))(t); !reflect.DeepEqual(got, u) {
		t.Fatalf("Node after update = %+v\nwant %+v", got, u)
	}
	// Endpoints are replaced whole.
	upd.APIEndpoints = []string{"https://n.example/api/v1/rpc"}
	u = must(db.UpdateNode(ctx, n.NodeID, upd))(t)
	if !reflect.DeepEqual(u.APIEndpoints, upd.APIEndpoints) || !reflect.DeepEqual(must(db.Node(ctx, n.NodeID))(t), u) {
		t.Fatalf("UpdateNode endpoints = %+v", u)
	}
	// Moving to another farm clears approval.
	upd.FarmID = f2.FarmID
	u = must(db.UpdateNode(ctx, n.NodeID, upd))(t)
	if u.Approved || u.FarmID != f2.FarmID {
		t.Fatalf("UpdateNode move = %+v", u)
	}
	// Unknown farm: refused, nothing changes.
	before := must(db.Node(ctx, n.NodeID))(t)
	upd.FarmID = f2.FarmID + 100
	upd.SerialNumber = "changed"
	_, err := db.UpdateNode(ctx, n.NodeID, upd)
	wantErr(t, err, store.ErrFarmNotFound, "move to an unknown farm")
	upd.FarmID = f2.FarmID
	upd.Resources.HRU = math.MaxUint64
	_, err = db.UpdateNode(ctx, n.NodeID, upd)
	wantErr(t, err, store.ErrInvalid, "huge resource")
	if got := must(db.Node(ctx, n.NodeID))(t); !reflect.DeepEqual(got, before) {
		t.Fatalf("refused updates changed the node: %+v\nwas %+v", got, before)
	}
	upd.Resources.HRU = 1
	_, err = db.UpdateNode(ctx, n.NodeID+100, upd)
	wantErr(t, err, store.ErrNotFound, "UpdateNode unknown")
}

func testApproval(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	f1, f2 := mkFarm(t, db, owner.TwinID), mkFarm(t, db, owner.TwinID)
	a, b, c := mkNode(t, db, f1.FarmID), mkNode(t, db, f1.FarmID), mkNode(t, db, f1.FarmID)
	x := mkNode(t, db, f2.FarmID)
	approved := func() []uint64 {
		var out []uint64
		for _, n := range must(db.ListNodes(ctx, store.NodeFilter{}, store.Page{}))(t) {
			if n.Approved {
				out = append(out, n.NodeID)
			}
		}
		return out
	}
	if err := db.SetApproval(ctx, f1.FarmID, []uint64{a.NodeID, b.NodeID, a.NodeID}, true); err != nil {
		t.Fatal(err)
	}
	if got := approved(); !slices.Equal(got, []uint64{a.NodeID, b.NodeID}) {
		t.Fatalf("approved = %v", got)
	}
	// All or nothing: x is in another farm, 1e9 does not exist.
	err := db.SetApproval(ctx, f1.FarmID, []uint64{c.NodeID, x.NodeID, 1e9}, true)
	wantErr(t, err, store.ErrNotFound, "approve a foreign node")
	for _, id := range []uint64{x.NodeID, 1e9} {
		if !strings.Contains(err.Error(), " "+itoa(id)) {
			t.Errorf("error %q does not name node %d", err, id)
		}
	}
	if strings.Contains(err.Error(), itoa(c.NodeID)+",") {
		t.Errorf("error %q names node %d which is in the farm", err, c.NodeID)
	}
	if got := approved(); !slices.Equal(got, []uint64{a.NodeID, b.NodeID}) {
		t.Fatalf("refused approval changed approvals: %v", got)
	}
	err = db.SetApproval(ctx, f1.FarmID, []uint64{a.NodeID, x.NodeID}, false)
	wantErr(t, err, store.ErrNotFound, "reject a foreign node")
	if got := approved(); !slices.Equal(got, []uint64{a.NodeID, b.NodeID}) {
		t.Fatalf("refused rejection changed approvals: %v", got)
	}
	if err := db.SetApproval(ctx, f1.FarmID, []uint64{a.NodeID}, false); err != nil {
		t.Fatal(err)
	}
	if got := approved(); !slices.Equal(got, []uint64{b.NodeID}) {
		t.Fatalf("after reject = %v", got)
	}
	// Re-approving an approved node is fine.
	if err := db.SetApproval(ctx, f1.FarmID, []uint64{b.NodeID, c.NodeID}, true); err != nil {
		t.Fatal(err)
	}
	if got := approved(); !slices.Equal(got, []uint64{b.NodeID, c.NodeID}) {
		t.Fatalf("after approve = %v", got)
	}
	if err := db.SetApproval(ctx, f1.FarmID, nil, true); err != nil {
		t.Fatalf("empty approval: %v", err)
	}
	err = db.SetApproval(ctx, f1.FarmID+100, []uint64{a.NodeID}, true)
	wantErr(t, err, store.ErrNotFound, "approval in an unknown farm")
	// Many ids in one call (more than one statement's batch).
	var many []uint64
	for i := range 1200 {
		many = append(many, uint64(i)+1e6)
	}
	many = append(many, c.NodeID)
	err = db.SetApproval(ctx, f1.FarmID, many, false)
	wantErr(t, err, store.ErrNotFound, "approval of 1200 unknown nodes")
	if got := approved(); !slices.Equal(got, []uint64{b.NodeID, c.NodeID}) {
		t.Fatalf("refused big rejection changed approvals: %v", got)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func testUptime(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	n := mkNode(t, db, farm.FarmID)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

	r := must(db.RecordUptime(ctx, n.NodeID, t0, 3600))(t)
	if r.Restarted || r.Previous != nil {
		t.Fatalf("first report = %+v", r)
	}
	node := must(db.Node(ctx, n.NodeID))(t)
	if node.LastSeen == nil || !node.LastSeen.Equal(t0) {
		t.Fatalf("LastSeen = %v, want %v", node.LastSeen, t0)
	}
	// Normal reports: same boot (with a few seconds of jitter).
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i)*40*time.Minute + 3*time.Second)
		r := must(db.RecordUptime(ctx, n.NodeID, at, 3600+uint64(i)*2400))(t)
		if r.Restarted {
			t.Fatalf("report %d seen as a restart", i)
		}
	}
	ss := must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t)
	if len(ss) != 1 || ss[0].Reports != 4 || ss[0].Uptime != 3600+3*2400 || !ss[0].LastReport.Equal(t0.Add(120*time.Minute+3*time.Second)) {
		t.Fatalf("sessions after 4 reports = %+v", ss)
	}
	boot1 := ss[0].BootTime
	if d := boot1.Sub(t0.Add(-time.Hour)); d < 0 || d > 5*time.Second {
		t.Fatalf("boot time %v, want about %v", boot1, t0.Add(-time.Hour))
	}
	// A report that lost a race (received before the last one, lower
	// uptime) is counted, not a reboot, and does not move LastReport back.
	last := t0.Add(120*time.Minute + 3*time.Second)
	r = must(db.RecordUptime(ctx, n.NodeID, last.Add(-time.Second), 3600+3*2400-1))(t)
	if r.Restarted {
		t.Fatalf("stale report seen as a restart")
	}
	ss = must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t)
	if len(ss) != 1 || ss[0].Reports != 5 || ss[0].Uptime != 3600+3*2400 || !ss[0].LastReport.Equal(last) || !ss[0].BootTime.Equal(boot1) {
		t.Fatalf("sessions after a stale report = %+v", ss)
	}
	// Reboot: the uptime went down.
	t1 := t0.Add(3 * time.Hour)
	r = must(db.RecordUptime(ctx, n.NodeID, t1, 120))(t)
	if !r.Restarted || r.Previous == nil || r.Previous.Reports != 5 || r.Previous.Uptime != 3600+3*2400 || !r.Previous.BootTime.Equal(boot1) {
		t.Fatalf("restart report = %+v (previous %+v)", r, r.Previous)
	}
	// Reboot noticed by the boot time only: the node was down long enough
	// that its new uptime exceeds the old one.
	r = must(db.RecordUptime(ctx, n.NodeID, t1.Add(40*time.Minute), 2520))(t)
	if r.Restarted {
		t.Fatalf("normal report after restart = %+v", r)
	}
	t2 := t1.Add(10 * time.Hour)
	r = must(db.RecordUptime(ctx, n.NodeID, t2, 3*3600))(t)
	if !r.Restarted || r.Previous == nil || r.Previous.Reports != 2 || r.Previous.Uptime != 2520 {
		t.Fatalf("restart seen by boot time = %+v (previous %+v)", r, r.Previous)
	}
	ss = must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t)
	if len(ss) != 3 {
		t.Fatalf("sessions = %+v, want 3", ss)
	}
	if !ss[0].BootTime.Equal(t2.Add(-3*time.Hour)) || ss[0].Reports != 1 || !ss[0].LastReport.Equal(t2) ||
		!ss[1].BootTime.Equal(t1.Add(-2*time.Minute)) || ss[1].Reports != 2 ||
		!ss[2].BootTime.Equal(boot1) || ss[2].Reports != 5 {
		t.Fatalf("sessions newest first = %+v", ss)
	}
	node = must(db.Node(ctx, n.NodeID))(t)
	if !node.LastSeen.Equal(t2) {
		t.Fatalf("LastSeen = %v, want %v", node.LastSeen, t2)
	}

	_, err := db.RecordUptime(ctx, n.NodeID+100, t2, 10)
	wantErr(t, err, store.ErrNotFound, "uptime of an unknown node")
	_, err = db.RecordUptime(ctx, n.NodeID, t2, math.MaxUint64)
	wantErr(t, err, store.ErrInvalid, "huge uptime")
	_, err = db.RecordUptime(ctx, n.NodeID, t2, uint64(t2.Unix())+1)
	wantErr(t, err, store.ErrInvalid, "uptime before 1970")
	if got := must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t); !reflect.DeepEqual(got, ss) {
		t.Fatalf("refused reports changed sessions: %+v", got)
	}

	// Prune: sessions that ended before the cutoff go, the current one stays.
	if c := must(db.PruneUptime(ctx, t1))(t); c != 1 {
		t.Fatalf("PruneUptime(t1) = %d, want 1", c)
	}
	if c := must(db.PruneUptime(ctx, t2.Add(1000*time.Hour)))(t); c != 1 {
		t.Fatalf("PruneUptime(future) = %d, want 1", c)
	}
	ss = must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t)
	if len(ss) != 1 || !ss[0].LastReport.Equal(t2) {
		t.Fatalf("after prune = %+v", ss)
	}
}

func testUptimeSessions(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	n := mkNode(t, db, farm.FarmID)
	other := mkNode(t, db, farm.FarmID)
	if ss := must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 10))(t); ss == nil || len(ss) != 0 {
		t.Fatalf("sessions of a silent node = %#v", ss)
	}
	_, err := db.UptimeSessions(ctx, n.NodeID+100, time.Time{}, time.Time{}, 10)
	wantErr(t, err, store.ErrNotFound, "sessions of an unknown node")

	// Five boots, each one hour long, starting at day d.
	day := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for d := range 5 {
		boot := day.Add(time.Duration(d) * 24 * time.Hour)
		must(db.RecordUptime(ctx, n.NodeID, boot.Add(time.Minute), 60))(t)
		must(db.RecordUptime(ctx, n.NodeID, boot.Add(time.Hour), 3600))(t)
	}
	must(db.RecordUptime(ctx, other.NodeID, day, 60))(t)
	ss := must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t)
	if len(ss) != 5 {
		t.Fatalf("sessions = %+v", ss)
	}
	for i, s := range ss {
		want := day.Add(time.Duration(4-i) * 24 * time.Hour)
		if !s.BootTime.Equal(want) || !s.LastReport.Equal(want.Add(time.Hour)) || s.Reports != 2 || s.Uptime != 3600 {
			t.Fatalf("session %d = %+v, want boot %v", i, s, want)
		}
	}
	// since/until select the sessions overlapping the window.
	since := day.Add(24*time.Hour + 30*time.Minute) // inside boot 1
	until := day.Add(3*24*time.Hour + 10*time.Minute)
	ss = must(db.UptimeSessions(ctx, n.NodeID, since, until, 0))(t)
	if len(ss) != 3 || !ss[0].BootTime.Equal(day.Add(3*24*time.Hour)) || !ss[2].BootTime.Equal(day.Add(24*time.Hour)) {
		t.Fatalf("windowed sessions = %+v", ss)
	}
	ss = must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 2))(t)
	if len(ss) != 2 || !ss[0].BootTime.Equal(day.Add(4*24*time.Hour)) {
		t.Fatalf("limited sessions = %+v", ss)
	}
	ss = must(db.UptimeSessions(ctx, n.NodeID, day.Add(100*24*time.Hour), time.Time{}, 0))(t)
	if len(ss) != 0 {
		t.Fatalf("sessions in the future = %+v", ss)
	}
}

func testZosVersion(t *testing.T, db *store.DB) {
	ctx := context.Background()
	_, err := db.CurrentZosVersion(ctx)
	wantErr(t, err, store.ErrNotFound, "version never set")
	if h := must(db.ZosVersionHistory(ctx, store.Page{}))(t); h == nil || len(h) != 0 {
		t.Fatalf("empty history = %#v", h)
	}
	v1 := must(db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", SafeToUpgrade: false, TestFarms: []uint64{7, 3, 7}, SetBy: 42, Serial: 99}))(t)
	if v1.Serial != 1 || v1.Version != "v4.1.0" || v1.SafeToUpgrade || !slices.Equal(v1.TestFarms, []uint64{3, 7}) || v1.SetBy != 42 || v1.CreatedAt.IsZero() {
		t.Fatalf("first version = %+v", v1)
	}
	if cur := must(db.CurrentZosVersion(ctx))(t); !reflect.DeepEqual(cur, v1) {
		t.Fatalf("current = %+v, want %+v", cur, v1)
	}
	// Same content (test farms in any order) → ErrNotChanged, no new serial.
	_, err = db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", TestFarms: []uint64{3, 7, 3}, SetBy: 1})
	wantErr(t, err, store.ErrNotChanged, "same version")
	v2 := must(db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", SafeToUpgrade: true, TestFarms: []uint64{3, 7}}))(t)
	if v2.Serial != 2 {
		t.Fatalf("second serial = %d", v2.Serial)
	}
	v3 := must(db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", SafeToUpgrade: true}))(t)
	if v3.Serial != 3 || v3.TestFarms == nil || len(v3.TestFarms) != 0 {
		t.Fatalf("third = %+v", v3)
	}
	_, err = db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", SafeToUpgrade: true, TestFarms: []uint64{}})
	wantErr(t, err, store.ErrNotChanged, "empty vs nil test farms")
	// Going back to an older content is a change (serial still goes up).
	v4 := must(db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", TestFarms: []uint64{3, 7}}))(t)
	if v4.Serial != 4 {
		t.Fatalf("fourth serial = %d", v4.Serial)
	}
	_, err = db.SetZosVersion(ctx, api.ZosVersion{Version: "v5", TestFarms: []uint64{math.MaxUint64}})
	wantErr(t, err, store.ErrInvalid, "huge test farm")
	h := must(db.ZosVersionHistory(ctx, store.Page{}))(t)
	var serials []uint64
	for _, v := range h {
		serials = append(serials, v.Serial)
	}
	if !slices.Equal(serials, []uint64{4, 3, 2, 1}) || !reflect.DeepEqual(h[3], v1) {
		t.Fatalf("history = %+v", h)
	}
	h = must(db.ZosVersionHistory(ctx, store.Page{Number: 2, Size: 3}))(t)
	if len(h) != 1 || h[0].Serial != 1 {
		t.Fatalf("history page 2 = %+v", h)
	}
}

func testNonces(t *testing.T, db *store.DB) {
	ctx := context.Background()
	exp := time.Now().Add(5 * time.Minute)
	if err := db.UseNonce(ctx, "key1", "n1", exp); err != nil {
		t.Fatal(err)
	}
	wantErr(t, db.UseNonce(ctx, "key1", "n1", exp), store.ErrConflict, "replayed nonce")
	wantErr(t, db.UseNonce(ctx, "key1", "n1", exp.Add(time.Hour)), store.ErrConflict, "replayed nonce, later expiry")
	if err := db.UseNonce(ctx, "key2", "n1", exp); err != nil {
		t.Fatalf("same nonce, other key: %v", err)
	}
	if err := db.UseNonce(ctx, "key1", "n2", exp); err != nil {
		t.Fatalf("other nonce: %v", err)
	}
	// An expired record may be reused.
	past := time.Now().Add(-time.Second)
	if err := db.UseNonce(ctx, "key3", "n1", past); err != nil {
		t.Fatal(err)
	}
	if err := db.UseNonce(ctx, "key3", "n1", exp); err != nil {
		t.Fatalf("reuse of an expired nonce: %v", err)
	}
	wantErr(t, db.UseNonce(ctx, "key3", "n1", exp), store.ErrConflict, "replay after reuse")
	// Prune.
	if err := db.UseNonce(ctx, "key4", "old", past); err != nil {
		t.Fatal(err)
	}
	if c := must(db.PruneNonces(ctx, time.Now()))(t); c != 1 {
		t.Fatalf("PruneNonces(now) = %d, want 1", c)
	}
	if c := must(db.PruneNonces(ctx, exp.Add(time.Second)))(t); c != 4 {
		t.Fatalf("PruneNonces(after expiry) = %d, want 4", c)
	}
	if err := db.UseNonce(ctx, "key1", "n1", exp); err != nil {
		t.Fatalf("nonce after prune: %v", err)
	}
}

func testUptimeOnce(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	n := mkNode(t, db, farm.FarmID)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	exp := time.Now().Add(5 * time.Minute)
	nonce := func(v string) store.Nonce { return store.Nonce{KeyID: "twin:1", Value: v, Expires: exp} }
	reports := func() uint64 {
		t.Helper()
		ss := must(db.UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t)
		if len(ss) != 1 {
			t.Fatalf("sessions = %+v, want 1", ss)
		}
		return ss[0].Reports
	}

	// The first report takes the slow path; its nonce is recorded.
	must(db.RecordUptimeOnce(ctx, n.NodeID, t0, 3600, nonce("n1")))(t)
	wantErr(t, db.UseNonce(ctx, "twin:1", "n1", exp), store.ErrConflict, "nonce of the first report")
	// A report of the same boot: the fast path.
	must(db.RecordUptimeOnce(ctx, n.NodeID, t0.Add(time.Minute), 3660, nonce("n2")))(t)
	if got := reports(); got != 2 {
		t.Fatalf("reports = %d, want 2", got)
	}
	// Replays of either, and of a nonce UseNonce recorded, write nothing.
	if err := db.UseNonce(ctx, "twin:1", "n3", exp); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"n1", "n2", "n3"} {
		_, err := db.RecordUptimeOnce(ctx, n.NodeID, t0.Add(2*time.Minute), 3720, nonce(v))
		wantErr(t, err, store.ErrConflict, "replayed nonce "+v)
	}
	if got := reports(); got != 2 {
		t.Fatalf("replays were counted: reports = %d, want 2", got)
	}
	// An expired record may be used again.
	if err := db.UseNonce(ctx, "twin:1", "old", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	must(db.RecordUptimeOnce(ctx, n.NodeID, t0.Add(3*time.Minute), 3780, nonce("old")))(t)
	// Refused before the store: nothing recorded.
	_, err := db.RecordUptimeOnce(ctx, n.NodeID, t0, math.MaxUint64, nonce("n4"))
	wantErr(t, err, store.ErrInvalid, "huge uptime")
	must(db.RecordUptimeOnce(ctx, n.NodeID, t0.Add(4*time.Minute), 3840, nonce("n4")))(t)

	// Concurrent calls share batches: of 8 sending one nonce, one
	// counts; 8 others with nonces of their own (two per node, so some
	// take the slow path) all count.
	m := mkNode(t, db, farm.FarmID)
	must(db.RecordUptime(ctx, m.NodeID, t0, 3600))(t)
	before := reports()
	var (
		wg       sync.WaitGroup
		ok, fail atomic.Int32
	)
	at := t0.Add(5 * time.Minute)
	for i := range 16 {
		wg.Go(func() {
			node, v := n.NodeID, "same"
			if i >= 8 {
				node, v = []uint64{n.NodeID, m.NodeID}[i%2], fmt.Sprintf("own%d", i)
			}
			_, err := db.RecordUptimeOnce(ctx, node, at, 3900, nonce(v))
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrConflict):
				fail.Add(1)
			default:
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 9 || fail.Load() != 7 {
		t.Fatalf("%d calls counted, %d refused; want 9 and 7", ok.Load(), fail.Load())
	}
	if got := reports(); got != before+5 {
		t.Fatalf("reports of node %d = %d, want %d", n.NodeID, got, before+5)
	}
}

func testBadInput(t *testing.T, db *store.DB) {
	ctx := context.Background()
	huge := uint64(math.MaxUint64)
	_, err := db.AccountByTwin(ctx, huge)
	wantErr(t, err, store.ErrNotFound, "AccountByTwin(huge)")
	_, err = db.AccountByTwin(ctx, 0)
	wantErr(t, err, store.ErrNotFound, "AccountByTwin(0)")
	_, err = db.Farm(ctx, huge)
	wantErr(t, err, store.ErrNotFound, "Farm(huge)")
	_, err = db.Node(ctx, huge)
	wantErr(t, err, store.ErrNotFound, "Node(huge)")
	_, err = db.CreateFarm(ctx, api.Farm{FarmName: "x", TwinID: huge})
	wantErr(t, err, store.ErrNotFound, "CreateFarm(twin huge)")
	_, err = db.RecordUptime(ctx, huge, time.Now(), 1)
	wantErr(t, err, store.ErrNotFound, "RecordUptime(huge)")
	if fs := must(db.ListFarms(ctx, store.FarmFilter{FarmID: huge}, store.Page{}))(t); len(fs) != 0 {
		t.Fatalf("ListFarms(huge) = %v", fs)
	}
	if ns := must(db.ListNodes(ctx, store.NodeFilter{TwinID: huge}, store.Page{Size: math.MaxUint64}))(t); len(ns) != 0 {
		t.Fatalf("ListNodes(huge) = %v", ns)
	}
	a := mkAccount(t, db)
	_, err = db.CreateNode(ctx, api.Node{TwinID: a.TwinID, FarmID: huge})
	wantErr(t, err, store.ErrFarmNotFound, "CreateNode(farm huge)")
	err = db.SetApproval(ctx, 1, []uint64{huge}, true)
	wantErr(t, err, store.ErrNotFound, "SetApproval(huge)")
	// Strings with quotes and NULs are stored verbatim or refused, never mangle SQL.
	odd := "o'; DROP TABLE farms; --"
	f, err := db.CreateFarm(ctx, api.Farm{FarmName: odd, TwinID: a.TwinID})
	if err != nil {
		t.Fatal(err)
	}
	if got := must(db.Farm(ctx, f.FarmID))(t); got.FarmName != odd {
		t.Fatalf("odd name = %q", got.FarmName)
	}
	if fs := must(db.ListFarms(ctx, store.FarmFilter{NameContains: "'; drop"}, store.Page{}))(t); len(fs) != 1 {
		t.Fatalf("odd filter = %v", fs)
	}
}

func testSeedNodes(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	seen := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	keys := make([]string, 30)
	ids, err := db.SeedNodes(ctx, farm.FarmID, len(keys), func(i int) store.SeedNode {
		keys[i] = pubKey()
		n := sampleNode(999, 999)
		n.Approved = true
		if i%2 == 0 {
			n.LastSeen = &seen
		}
		return store.SeedNode{PublicKey: keys[i], Node: n, Uptime: 600}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(keys) {
		t.Fatalf("%d ids for %d nodes", len(ids), len(keys))
	}
	for i, id := range ids {
		a := must(db.AccountByPublicKey(ctx, keys[i]))(t)
		if a.TwinID != id.TwinID {
			t.Fatalf("node %d: twin %d, account has %d", i, id.TwinID, a.TwinID)
		}
		n := must(db.Node(ctx, id.NodeID))(t)
		if n.TwinID != id.TwinID || n.FarmID != farm.FarmID || n.Approved || (i%2 == 0) != (n.LastSeen != nil) ||
			n.LastSeen != nil && !n.LastSeen.Equal(seen) || len(n.Interfaces) != 1 {
			t.Fatalf("seeded node %d = %+v", i, n)
		}
		if i%2 == 0 {
			ss := must(db.UptimeSessions(ctx, id.NodeID, time.Time{}, time.Time{}, 0))(t)
			if len(ss) != 1 || ss[0].Uptime != 600 || !ss[0].BootTime.Equal(seen.Add(-600*time.Second)) {
				t.Fatalf("seeded session = %+v", ss)
			}
			// The next report of the same boot is a normal one.
			r := must(db.RecordUptime(ctx, id.NodeID, seen.Add(time.Minute), 660))(t)
			if r.Restarted {
				t.Fatal("report after seeding seen as a restart")
			}
		}
	}
	// The sequences moved past the seeded ids.
	a := mkAccount(t, db)
	n := must(db.CreateNode(ctx, sampleNode(farm.FarmID, a.TwinID)))(t)
	if a.TwinID <= ids[len(ids)-1].TwinID || n.NodeID <= ids[len(ids)-1].NodeID {
		t.Fatalf("ids after seeding: twin %d node %d, last seeded %+v", a.TwinID, n.NodeID, ids[len(ids)-1])
	}
	if c := must(db.CountNodes(ctx))(t); c != uint64(len(keys))+1 {
		t.Fatalf("CountNodes = %d", c)
	}
	// A duplicate key fails its batch, which leaves nothing behind.
	_, err = db.SeedNodes(ctx, farm.FarmID, 3, func(i int) store.SeedNode {
		k := pubKey()
		if i == 2 {
			k = keys[0]
		}
		return store.SeedNode{PublicKey: k, Node: sampleNode(0, 0)}
	})
	wantErr(t, err, store.ErrConflict, "seeding a taken key")
	_, err = db.SeedNodes(ctx, farm.FarmID+100, 1, func(int) store.SeedNode { return store.SeedNode{PublicKey: pubKey()} })
	wantErr(t, err, store.ErrFarmNotFound, "seeding an unknown farm")
	if c := must(db.CountNodes(ctx))(t); c != uint64(len(keys))+1 {
		t.Fatalf("CountNodes after refused seeds = %d", c)
	}
}
