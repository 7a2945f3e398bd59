package store_test

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// testStats: the grid's counts and totals (NodeCounts, StatusTotals,
// CountFarms) and the explorer's node filters (approval, country,
// version), on a small grid whose figures are known.
func testStats(t *testing.T, db *store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, db)
	fa, fb := mkFarm(t, db, owner.TwinID), mkFarm(t, db, owner.TwinID)
	if got := must(db.NodeCounts(ctx, time.Now()))(t); len(got) != 0 {
		t.Fatalf("node counts without nodes: %+v", got)
	}
	st := must(db.StatusTotals(ctx, time.Time{}))(t)
	if st != (store.StatusTotals{}) {
		t.Fatalf("status totals without reports: %+v", st)
	}
	node := func(farm uint64, version, country string) uint64 {
		n := sampleNode(farm, mkAccount(t, db).TwinID)
		n.ZosVersion, n.Location.Country = version, country
		return must(db.CreateNode(ctx, n))(t).NodeID
	}
	n1 := node(fa.FarmID, "v4.1.0", "Belgium")
	n2 := node(fa.FarmID, "v4.0.0", "Egypt")
	n3 := node(fb.FarmID, "v4.1.0", "Belgium")
	if err := db.SetApproval(ctx, fa.FarmID, []uint64{n1}, true); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	since := now.Add(-time.Hour)
	must(db.RecordUptime(ctx, n1, now, 600))(t)
	must(db.RecordUptime(ctx, n3, now.Add(-2*time.Hour), 600))(t)

	counts := must(db.NodeCounts(ctx, since))(t)
	slices.SortFunc(counts, func(a, b store.NodeCount) int {
		return cmp.Or(cmp.Compare(a.FarmID, b.FarmID), strings.Compare(a.Version, b.Version))
	})
	want := []store.NodeCount{
		{FarmID: fa.FarmID, Version: "v4.0.0", Nodes: 1},
		{FarmID: fa.FarmID, Version: "v4.1.0", Approved: true, Nodes: 1, Online: 1},
		{FarmID: fb.FarmID, Version: "v4.1.0", Nodes: 1},
	}
	if !slices.Equal(counts, want) {
		t.Fatalf("node counts:\n got %+v\nwant %+v", counts, want)
	}

	healthy, sick, stale := sampleStatus(4<<30, true), sampleStatus(8<<30, false), sampleStatus(1<<30, true)
	for _, r := range []struct {
		node uint64
		at   time.Time
		st   api.NodeStatus
	}{{n1, now, healthy}, {n2, now.Add(-time.Minute), sick}, {n3, now.Add(-2 * time.Hour), stale}} {
		if err := db.RecordNodeStatus(ctx, r.node, r.at, r.st); err != nil {
			t.Fatal(err)
		}
	}
	st = must(db.StatusTotals(ctx, since))(t)
	sum := func(a, b api.Capacity) store.CapacitySum {
		return store.CapacitySum{CRU: float64(a.CRU + b.CRU), MRU: float64(a.MRU + b.MRU), SRU: float64(a.SRU + b.SRU),
			HRU: float64(a.HRU + b.HRU), IPv4: float64(a.IPv4 + b.IPv4)}
	}
	wantSt := store.StatusTotals{Reporting: 2, Healthy: 1, Total: sum(healthy.Total, sick.Total), Free: sum(healthy.Free, sick.Free)}
	if st != wantSt {
		t.Fatalf("status totals:\n got %+v\nwant %+v", st, wantSt)
	}
	if all := must(db.StatusTotals(ctx, time.Time{}))(t); all.Reporting != 3 || all.Free.MRU != float64(4<<30+8<<30+1<<30) {
		t.Fatalf("status totals of every report: %+v", all)
	}
	if n := must(db.CountFarms(ctx))(t); n != 2 {
		t.Fatalf("CountFarms = %d, want 2", n)
	}

	yes, no := true, false
	checkListPages(t, db, []listCase{
		{"approved", store.NodeFilter{Approved: &yes}, []uint64{n1}},
		{"not approved", store.NodeFilter{Approved: &no}, []uint64{n2, n3}},
		{"country", store.NodeFilter{Country: "Belgium"}, []uint64{n1, n3}},
		{"country, other case", store.NodeFilter{Country: "belgium"}, nil},
		{"version", store.NodeFilter{Version: "v4.1.0"}, []uint64{n1, n3}},
		{"version in farm", store.NodeFilter{Version: "v4.1.0", FarmID: fb.FarmID}, []uint64{n3}},
		{"version, not approved, online", store.NodeFilter{Version: "v4.1.0", Approved: &no, SeenSince: &since}, nil},
		{"country and version", store.NodeFilter{Country: "Egypt", Version: "v4.0.0"}, []uint64{n2}},
	})
}
