package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/store"
)

// The hot statements of the registrar must keep their plans: these tests
// fail loudly when a change makes PostgreSQL scan a table instead of
// using the intended index, plan a statement on every call, or turns the
// uptime update into a non-HOT one (a new index entry per report, and a
// table that bloats under constant reporting).

// planFleet seeds farms of the given sizes on a fresh PostgreSQL store,
// every node seen a minute ago, and analyzes the tables.
func planFleet(t *testing.T, sizes ...int) (*store.DB, []uint64, []store.SeededNode, time.Time, uint64) {
	t.Helper()
	ctx := context.Background()
	db := mustOpen(t, postgresOpener().url(t))
	owner := mkAccount(t, db)
	seen := time.Now().Add(-time.Minute).Truncate(time.Second)
	const uptime = 3600
	var (
		farms []uint64
		nodes []store.SeededNode
	)
	for _, n := range sizes {
		f := mkFarm(t, db, owner.TwinID)
		farms = append(farms, f.FarmID)
		ids, err := db.SeedNodes(ctx, f.FarmID, n, func(int) store.SeedNode {
			nd := sampleNode(0, 0)
			nd.LastSeen = &seen
			return store.SeedNode{PublicKey: pubKey(), Node: nd, Uptime: uptime}
		})
		if err != nil {
			t.Fatalf("SeedNodes: %v", err)
		}
		nodes = append(nodes, ids...)
	}
	// As autovacuum leaves a table that is mostly read: visibility map
	// set (index-only scans), statistics current.
	conn := mustConn(t, db)
	for _, tbl := range []string{"accounts", "farms", "nodes", "node_liveness"} {
		if _, err := conn.ExecContext(ctx, `VACUUM ANALYZE `+tbl); err != nil {
			t.Fatalf("VACUUM ANALYZE %s: %v", tbl, err)
		}
	}
	return db, farms, nodes, seen, uptime
}

func mustConn(t *testing.T, db *store.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// planNode is a node of EXPLAIN (FORMAT JSON).
type planNode struct {
	NodeType  string     `json:"Node Type"`
	Relation  string     `json:"Relation Name"`
	IndexName string     `json:"Index Name"`
	Plans     []planNode `json:"Plans"`
}

func (p planNode) walk(f func(planNode)) {
	f(p)
	for _, c := range p.Plans {
		c.walk(f)
	}
}

// explainGeneric returns the generic plan of q with args on conn:
// PREPARE, then EXPLAIN EXECUTE, as the store's connections run it.
func explainGeneric(t *testing.T, conn *sql.Conn, q string, args []any) (planNode, string) {
	t.Helper()
	ctx := context.Background()
	if _, err := conn.ExecContext(ctx, `PREPARE grid4_plan_test AS `+q); err != nil {
		t.Fatalf("PREPARE: %v\n%s", err, q)
	}
	defer conn.ExecContext(ctx, `DEALLOCATE grid4_plan_test`)
	lits := make([]string, len(args))
	for i, a := range args {
		l, err := store.Literal(a)
		if err != nil {
			t.Fatal(err)
		}
		lits[i] = l
	}
	var raw string
	if err := conn.QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) EXECUTE grid4_plan_test(`+strings.Join(lits, ", ")+`)`).Scan(&raw); err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	var out []struct {
		Plan planNode `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil || len(out) != 1 {
		t.Fatalf("EXPLAIN output %s: %v", raw, err)
	}
	return out[0].Plan, raw
}

// wantPlan checks that plan uses every index of want and scans no table
// sequentially.
func wantPlan(t *testing.T, name string, plan planNode, raw string, want ...string) {
	t.Helper()
	var used []string
	seq := false
	plan.walk(func(p planNode) {
		if p.IndexName != "" {
			used = append(used, p.IndexName)
		}
		if p.NodeType == "Seq Scan" {
			seq = true
		}
	})
	for _, idx := range want {
		if !slices.Contains(used, idx) {
			t.Errorf("%s: the plan does not use index %s (uses %v):\n%s", name, idx, used, raw)
		}
	}
	if seq {
		t.Errorf("%s: the plan scans a table sequentially:\n%s", name, raw)
	}
}

func TestHotQueryPlans(t *testing.T) {
	t.Parallel()
	db, farms, nodes, seen, _ := planFleet(t, 3000, 60, 5)
	conn := mustConn(t, db)
	ctx := context.Background()
	var mode string
	if err := conn.QueryRowContext(ctx, `SHOW plan_cache_mode`).Scan(&mode); err != nil || mode != "force_generic_plan" {
		t.Fatalf("plan_cache_mode of the store's connections = %q (%v); want force_generic_plan", mode, err)
	}
	since := seen.Add(-time.Hour)
	yes := true
	lists := []struct {
		name   string
		filter store.NodeFilter
		page   store.Page
		want   []string
	}{
		{"farm, first page", store.NodeFilter{FarmID: farms[0]}, store.Page{Size: 50},
			[]string{"nodes_farm_id_node_id_idx", "node_liveness_pkey"}},
		{"farm, keyset page", store.NodeFilter{FarmID: farms[0], AfterNodeID: nodes[2900].NodeID}, store.Page{Size: 50},
			[]string{"nodes_farm_id_node_id_idx", "node_liveness_pkey"}},
		{"farm, page 10", store.NodeFilter{FarmID: farms[0]}, store.Page{Number: 10, Size: 50},
			[]string{"nodes_farm_id_node_id_idx", "nodes_pkey", "node_liveness_pkey"}},
		{"farm, online", store.NodeFilter{FarmID: farms[1], SeenSince: &since}, store.Page{Size: 50},
			[]string{"nodes_farm_id_node_id_idx", "node_liveness_pkey"}},
		// Every seeded node is in Belgium, on v4.0.0 and not approved:
		// the values asked for below are ones no node has, which only
		// the index finds without reading the whole table.
		{"country", store.NodeFilter{Country: "Egypt"}, store.Page{Size: 50},
			[]string{"nodes_country_node_id_idx"}},
		{"version, keyset page", store.NodeFilter{Version: "v9.9.9", AfterNodeID: nodes[100].NodeID}, store.Page{Size: 50},
			[]string{"nodes_zos_version_node_id_idx"}},
		{"approved", store.NodeFilter{Approved: &yes}, store.Page{Size: 50},
			[]string{"nodes_approved_node_id_idx"}},
		{"country and version, online", store.NodeFilter{Country: "Egypt", Version: "v9.9.9", SeenSince: &since}, store.Page{Size: 50},
			[]string{"nodes_country_node_id_idx", "node_liveness_pkey"}},
		{"farm and version", store.NodeFilter{FarmID: farms[0], Version: "v9.9.9"}, store.Page{Size: 50},
			[]string{"nodes_farm_id_node_id_idx"}},
	}
	for _, l := range lists {
		q, args, ok := db.ListNodesQuery(l.filter, l.page)
		if !ok {
			t.Fatalf("%s: no query", l.name)
		}
		plan, raw := explainGeneric(t, conn, q, args)
		wantPlan(t, "list nodes by "+l.name, plan, raw, l.want...)
	}

	twins := []int64{int64(nodes[0].TwinID), int64(nodes[1500].TwinID), int64(nodes[3010].TwinID)}
	plan, raw := explainGeneric(t, conn, store.TwinKeyBatchSQL, []any{twins})
	wantPlan(t, "twin keys", plan, raw, "accounts_pkey", "nodes_twin_id_key")

	now := time.Now()
	ids := []int64{int64(nodes[0].NodeID), int64(nodes[3001].NodeID)}
	ts := []time.Time{now, now}
	plan, raw = explainGeneric(t, conn, store.UptimeBatchSQL, []any{ids, ts, ts, []int64{5, 5}, ts})
	wantPlan(t, "uptime batch", plan, raw, "node_liveness_pkey")
	plan, raw = explainGeneric(t, conn, store.UptimeNonceBatchSQL, []any{ids, ts, ts, []int64{5, 5}, ts,
		[]string{"x-auth:1", ""}, []string{"abc", ""}, ts, now, []bool{true, true}})
	wantPlan(t, "uptime batch with nonces", plan, raw, "node_liveness_pkey")
}

// TestListNodesPlannedOnce checks that the node list is prepared once per
// connection and runs its generic plan: PostgreSQL does not plan it again
// on each call.
func TestListNodesPlannedOnce(t *testing.T) {
	t.Parallel()
	db, farms, _, _, _ := planFleet(t, 120, 30)
	conn := mustConn(t, db)
	ctx := context.Background()
	q, _, _ := db.ListNodesQuery(store.NodeFilter{FarmID: farms[0]}, store.Page{Size: 50})
	const calls = 12
	for i := range calls {
		// The same statement text for every farm: only the values differ.
		q2, args, _ := db.ListNodesQuery(store.NodeFilter{FarmID: farms[i%2]}, store.Page{Size: 50})
		if q2 != q {
			t.Fatalf("the list statement depends on the filter's values:\n%s\n%s", q, q2)
		}
		rows, err := conn.QueryContext(ctx, q2, args...)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Close(); err != nil || n == 0 {
			t.Fatalf("call %d: %d rows, %v", i, n, err)
		}
	}
	var generic, custom int64
	err := conn.QueryRowContext(ctx,
		`SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1`, q).Scan(&generic, &custom)
	if err != nil {
		t.Fatalf("the list statement is not a prepared statement of the connection: %v", err)
	}
	if custom != 0 || generic < calls {
		t.Errorf("list statement: %d generic and %d custom plans over %d calls; want one generic plan reused (no custom plans)", generic, custom, calls)
	}
}

// TestUptimeUpdatesAreHOT runs the batched uptime update on the store's
// liveness connection and checks in the transaction's own statistics that
// every row was updated HOT.
func TestUptimeUpdatesAreHOT(t *testing.T) {
	t.Parallel()
	db, _, nodes, seen, uptime := planFleet(t, 300)
	ctx := context.Background()
	conn, err := db.LiveConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var (
		ids              []int64
		ats, boots, from []time.Time
		ups              []int64
	)
	at := seen.Add(time.Minute)
	boot := seen.Add(-time.Duration(uptime) * time.Second)
	// A batch holds reports of nodes spread over the fleet, a few rows of
	// each page; the old versions of a page are pruned between batches.
	// One transaction updating every row of a page would need room for
	// all of them at once.
	var batch []store.SeededNode
	for i, n := range nodes {
		if i%5 != 0 {
			continue
		}
		batch = append(batch, n)
		ids = append(ids, int64(n.NodeID))
		ats, boots, from = append(ats, at), append(boots, boot), append(from, boot.Add(-store.RestartSlack))
		ups = append(ups, int64(uptime+60))
	}
	// The batch without nonces, then the same reports with nonces (a
	// minute later: the first statement's versions are the current ones).
	keys, nonces, apply := make([]string, len(ids)), make([]string, len(ids)), make([]bool, len(ids))
	for i := range ids {
		keys[i], nonces[i], apply[i] = "x-auth:"+strconv.Itoa(i), "n", true
	}
	later := make([]time.Time, len(ats))
	for i := range later {
		later[i] = at.Add(time.Minute)
	}
	for round, run := range []struct {
		q    string
		args []any
	}{
		{store.UptimeBatchSQL, []any{ids, ats, boots, ups, from}},
		{store.UptimeNonceBatchSQL, []any{ids, later, boots, ups, from, keys, nonces, later, time.Now(), apply}},
	} {
		rows, err := tx.QueryContext(ctx, run.q, run.args...)
		if err != nil {
			t.Fatal(err)
		}
		updated := 0
		for rows.Next() {
			updated++
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		if round == 1 {
			updated /= 2 // a row per nonce recorded and per node updated
		}
		var upd, hot int64
		if err := tx.QueryRowContext(ctx,
			`SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relid = 'node_liveness'::regclass`).Scan(&upd, &hot); err != nil {
			t.Fatal(err)
		}
		want := int64((round + 1) * len(batch))
		if updated != len(batch) || upd != want {
			t.Fatalf("statement %d updated %d rows (statistics: %d in all), want %d (%d)", round, updated, upd, len(batch), want)
		}
		if hot != upd {
			t.Errorf("%d of %d liveness updates were HOT; all must be (no index on a column a report changes, room on each page)", hot, upd)
		}
	}
}

// TestRefreshStatistics: tables that grew since their statistics were
// gathered are analyzed, once.
func TestRefreshStatistics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t, postgresOpener().url(t))
	owner := mkAccount(t, db)
	f := mkFarm(t, db, owner.TwinID)
	seen := time.Now()
	if _, err := db.SeedNodes(ctx, f.FarmID, 300, func(int) store.SeedNode {
		nd := sampleNode(0, 0)
		nd.LastSeen = &seen
		return store.SeedNode{PublicKey: pubKey(), Node: nd, Uptime: 60}
	}); err != nil {
		t.Fatal(err)
	}
	// The statistics collector counts the inserts asynchronously.
	var tables string
	eventually(t, "the grown tables are analyzed", func() bool {
		var err error
		if tables, err = db.RefreshStatistics(ctx); err != nil {
			t.Fatal(err)
		}
		return tables != ""
	})
	for _, want := range []string{"accounts", "nodes", "node_liveness"} {
		if !strings.Contains(tables, want) {
			t.Errorf("analyzed %q, want %s among them", tables, want)
		}
	}
	if again, err := db.RefreshStatistics(ctx); err != nil || again != "" {
		t.Errorf("second call analyzed %q (%v); nothing grew", again, err)
	}
}
