package store_test

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// sampleStatus is a status with free memory mru and health healthy.
func sampleStatus(mru uint64, healthy bool) api.NodeStatus {
	total := api.Capacity{CRU: 8, MRU: 32 << 30, SRU: 1 << 40, HRU: 4 << 40, IPv4: 2}
	used := total.Sub(api.Capacity{CRU: 4, MRU: mru, SRU: 1 << 39, HRU: 4 << 40, IPv4: 1})
	st := api.NodeStatus{
		Healthy: healthy, Version: "v4.1.0", Total: total, Used: used, Free: total.Sub(used),
		Deployments: 2, Workloads: map[string]uint64{"ok": 3, "error": 1},
		Checks:  []api.HealthCheck{{Name: "disk", OK: healthy, Reason: map[bool]string{false: "full"}[healthy]}},
		Modules: []api.ModuleState{{Name: "provisiond", State: "running"}},
	}
	if !healthy {
		st.Reasons = []string{"disk: full"}
	}
	return st
}

// TestNodeStatus runs the status suite on every dialect.
func TestNodeStatus(t *testing.T) {
	t.Parallel()
	for _, op := range []opener{sqliteFileOpener(), postgresOpener()} {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			t.Run("Record", func(t *testing.T) { t.Parallel(); testRecordStatus(t, mustOpen(t, op.url(t))) })
			t.Run("Filters", func(t *testing.T) { t.Parallel(); testStatusFilters(t, mustOpen(t, op.url(t))) })
			t.Run("Seed", func(t *testing.T) { t.Parallel(); testSeedStatus(t, mustOpen(t, op.url(t))) })
		})
	}
}

func testRecordStatus(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	n := mkNode(t, db, farm.FarmID)

	// Before any report: no latest, empty history, and the node's status
	// fields unset.
	latest, hist, err := db.NodeStatus(ctx, n.NodeID, 0)
	if err != nil || latest != nil || hist == nil || len(hist) != 0 {
		t.Fatalf("status before reports = %+v %+v %v", latest, hist, err)
	}
	if got := must(db.Node(ctx, n.NodeID))(t); got.Healthy || got.StatusAt != nil || got.Free != nil {
		t.Fatalf("node before reports: %+v", got)
	}
	for _, id := range []uint64{0, n.NodeID + 1000, math.MaxUint64} {
		_, _, err := db.NodeStatus(ctx, id, 0)
		wantErr(t, err, store.ErrNotFound, "status of an unknown node")
		err = db.RecordNodeStatus(ctx, id, time.Now(), sampleStatus(1, true))
		wantErr(t, err, store.ErrNotFound, "report of an unknown node")
	}
	bad := sampleStatus(1, true)
	bad.Free.MRU = math.MaxUint64
	wantErr(t, db.RecordNodeStatus(ctx, n.NodeID, time.Now(), bad), store.ErrInvalid, "free above MaxInt64")

	// More reports than the history keeps: the newest StatusHistoryLen
	// remain, newest first; the latest carries checks and modules.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reports := store.StatusHistoryLen + 5
	for i := range reports {
		if err := db.RecordNodeStatus(ctx, n.NodeID, t0.Add(time.Duration(i)*time.Minute), sampleStatus(uint64(i+1)<<30, i%2 == 0)); err != nil {
			t.Fatal(err)
		}
	}
	latest, hist, err = db.NodeStatus(ctx, n.NodeID, 0)
	if err != nil {
		t.Fatal(err)
	}
	last := t0.Add(time.Duration(reports-1) * time.Minute)
	want := sampleStatus(uint64(reports)<<30, (reports-1)%2 == 0)
	want.ReportedAt = last
	if !reflect.DeepEqual(*latest, want) {
		t.Fatalf("latest = %+v\nwant     %+v", *latest, want)
	}
	if len(hist) != store.StatusHistoryLen {
		t.Fatalf("history has %d entries, want %d", len(hist), store.StatusHistoryLen)
	}
	for i, h := range hist {
		at := last.Add(-time.Duration(i) * time.Minute)
		if !h.ReportedAt.Equal(at) || h.Free.MRU != uint64(reports-i)<<30 || h.Checks != nil || h.Modules != nil {
			t.Fatalf("history[%d] = %+v, want the report of %v without checks and modules", i, h, at)
		}
	}
	if _, hist, _ = db.NodeStatus(ctx, n.NodeID, 3); len(hist) != 3 || !hist[0].ReportedAt.Equal(last) {
		t.Fatalf("limited history = %+v", hist)
	}
	got := must(db.Node(ctx, n.NodeID))(t)
	if got.StatusAt == nil || !got.StatusAt.Equal(last) || got.Healthy != want.Healthy || got.Free == nil || *got.Free != want.Free {
		t.Fatalf("node after reports: healthy %v at %v free %+v", got.Healthy, got.StatusAt, got.Free)
	}
}

func testStatusFilters(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	fresh := now.Add(-time.Hour)
	var (
		healthy8, healthy2, sick8, stale8, silent uint64
	)
	for _, c := range []struct {
		id      *uint64
		mru     uint64
		healthy bool
		at      time.Time
	}{
		{&healthy8, 8 << 30, true, now},
		{&healthy2, 2 << 30, true, now},
		{&sick8, 8 << 30, false, now},
		{&stale8, 8 << 30, true, fresh},
		{&silent, 0, false, time.Time{}},
	} {
		*c.id = mkNode(t, db, farm.FarmID).NodeID
		if !c.at.IsZero() {
			if err := db.RecordNodeStatus(ctx, *c.id, c.at, sampleStatus(c.mru, c.healthy)); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkListPages(t, db, []listCase{
		{"none", store.NodeFilter{}, []uint64{healthy8, healthy2, sick8, stale8, silent}},
		{"free_mru 8G", store.NodeFilter{FreeAtLeast: api.Capacity{MRU: 8 << 30}}, []uint64{healthy8, sick8, stale8}},
		{"free_mru 1", store.NodeFilter{FreeAtLeast: api.Capacity{MRU: 1}}, []uint64{healthy8, healthy2, sick8, stale8}},
		{"free_cru 5", store.NodeFilter{FreeAtLeast: api.Capacity{CRU: 5}}, nil},
		{"free_ipv4 1", store.NodeFilter{FreeAtLeast: api.Capacity{IPv4: 1}}, []uint64{healthy8, healthy2, sick8, stale8}},
		{"healthy", store.NodeFilter{Health: store.HealthHealthy, StatusSince: fresh}, []uint64{healthy8, healthy2}},
		{"unhealthy", store.NodeFilter{Health: store.HealthUnhealthy, StatusSince: fresh}, []uint64{sick8, stale8}},
		{"healthy with 8G", store.NodeFilter{Health: store.HealthHealthy, StatusSince: fresh, FreeAtLeast: api.Capacity{MRU: 8 << 30}}, []uint64{healthy8}},
		{"healthy with 8G in farm", store.NodeFilter{FarmID: farm.FarmID, Health: store.HealthHealthy, StatusSince: fresh, FreeAtLeast: api.Capacity{MRU: 8 << 30}}, []uint64{healthy8}},
		{"free above MaxInt64", store.NodeFilter{FreeAtLeast: api.Capacity{HRU: math.MaxUint64}}, nil},
	})
}

// listCase is a node filter and the nodes it must list, in order.
type listCase struct {
	name string
	f    store.NodeFilter
	want []uint64
}

// checkListPages lists each case's nodes on one page and, a page of one
// at a time, its second page.
func checkListPages(t *testing.T, db *store.DB, cases []listCase) {
	t.Helper()
	for _, c := range cases {
		for _, page := range []store.Page{{Size: 50}, {Number: 2, Size: 1}} {
			got := nodeIDs(must(db.ListNodes(context.Background(), c.f, page))(t))
			want := c.want
			if page.Number == 2 {
				want = nil
				if len(c.want) > 1 {
					want = c.want[1:2]
				}
			}
			if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
				t.Errorf("%s, page %+v: nodes %v, want %v", c.name, page, got, want)
			}
		}
	}
}

// testSeedStatus: SeedNodes records a node's status as RecordNodeStatus
// would, and a report after it goes on from there.
func testSeedStatus(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	farm := mkFarm(t, db, owner.TwinID)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ids, err := db.SeedNodes(ctx, farm.FarmID, 3, func(i int) store.SeedNode {
		sn := store.SeedNode{PublicKey: pubKey(), Node: sampleNode(0, 0)}
		if i > 0 {
			st := sampleStatus(uint64(i)<<30, i == 1)
			st.ReportedAt = at
			sn.Status = &st
		}
		return sn
	})
	if err != nil {
		t.Fatal(err)
	}
	latest, hist, err := db.NodeStatus(ctx, ids[0].NodeID, 0)
	if err != nil || latest != nil || len(hist) != 0 {
		t.Fatalf("node seeded without a status: %+v %+v %v", latest, hist, err)
	}
	want := sampleStatus(1<<30, true)
	want.ReportedAt = at
	latest, hist, err = db.NodeStatus(ctx, ids[1].NodeID, 0)
	if err != nil || latest == nil || !reflect.DeepEqual(*latest, want) || len(hist) != 1 || hist[0].Checks != nil {
		t.Fatalf("seeded status: %+v %+v %v", latest, hist, err)
	}
	got := nodeIDs(must(db.ListNodes(ctx, store.NodeFilter{Health: store.HealthHealthy, StatusSince: at.Add(-time.Second)}, store.Page{}))(t))
	if !slices.Equal(got, []uint64{ids[1].NodeID}) {
		t.Fatalf("healthy seeded nodes: %v", got)
	}
	if err := db.RecordNodeStatus(ctx, ids[1].NodeID, at.Add(time.Minute), sampleStatus(5<<30, true)); err != nil {
		t.Fatal(err)
	}
	if _, hist, _ = db.NodeStatus(ctx, ids[1].NodeID, 0); len(hist) != 2 || hist[0].Free.MRU != 5<<30 {
		t.Fatalf("history after a report on a seeded status: %+v", hist)
	}
	bad := sampleStatus(1, true)
	bad.Free.CRU = math.MaxUint64
	_, err = db.SeedNodes(ctx, farm.FarmID, 1, func(int) store.SeedNode {
		return store.SeedNode{PublicKey: pubKey(), Node: sampleNode(0, 0), Status: &bad}
	})
	wantErr(t, err, store.ErrInvalid, "seeding a status above MaxInt64")
}
