package store

import (
	"context"
	"fmt"
	"time"
)

// NodeCount counts the nodes of one farm that run one ZOS version and
// share one approval (see NodeCounts).
type NodeCount struct {
	FarmID   uint64
	Version  string // as registered; "" when unknown
	Approved bool
	// Nodes counts them all, Online those seen since NodeCounts' since.
	Nodes, Online uint64
}

// NodeCounts counts the registered nodes by farm, ZOS version and
// approval, and of each group those whose last uptime report is at or
// after since: everything the grid's totals, a farm's size and a
// version's rollout are summed from, in one pass over the nodes and their
// liveness. At a million nodes it reads both tables whole (about a
// second on PostgreSQL): callers cache it. Groups come in no particular
// order.
func (db *DB) NodeCounts(ctx context.Context, since time.Time) ([]NodeCount, error) {
	rows, err := db.ro.QueryContext(ctx,
		`SELECT n.farm_id, n.zos_version, n.approved, COUNT(*),
		   SUM(CASE WHEN l.last_seen >= $1 THEN 1 ELSE 0 END)
		 FROM nodes n LEFT JOIN node_liveness l ON l.node_id = n.node_id
		 GROUP BY n.farm_id, n.zos_version, n.approved`, db.ts(since))
	if err != nil {
		return nil, fmt.Errorf("store: node counts: %w", err)
	}
	defer rows.Close()
	out := []NodeCount{}
	for rows.Next() {
		var c NodeCount
		if err := rows.Scan(u64Col{&c.FarmID}, &c.Version, &c.Approved, u64Col{&c.Nodes}, u64Col{&c.Online}); err != nil {
			return nil, fmt.Errorf("store: node counts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: node counts: %w", err)
	}
	return out, nil
}

// CapacitySum is a sum of capacities over many nodes. Its figures are
// floating point: a million nodes' disks overflow an int64 of bytes.
type CapacitySum struct {
	CRU, MRU, SRU, HRU, IPv4 float64
}

// StatusTotals sums the nodes' latest status reports (see StatusTotals).
type StatusTotals struct {
	// Reporting counts the nodes whose latest status report counts,
	// Healthy those of them whose report said they were healthy.
	Reporting, Healthy uint64
	// Total and Free sum those reports' total and free capacity (used is
	// their difference).
	Total, Free CapacitySum
}

// StatusTotals sums the latest status reports received at or after
// since. It reads node_status whole: callers cache it.
func (db *DB) StatusTotals(ctx context.Context, since time.Time) (StatusTotals, error) {
	// SQLite's TOTAL is a floating-point SUM that never overflows (SUM
	// fails on integer overflow); PostgreSQL's SUM of bigint is numeric,
	// converted.
	sum := func(col string) string {
		if db.pg() {
			return `COALESCE(SUM(` + col + `), 0)::float8`
		}
		return `TOTAL(` + col + `)`
	}
	q := `SELECT COUNT(*), COALESCE(SUM(CASE WHEN healthy THEN 1 ELSE 0 END), 0)`
	for _, c := range []string{"total_cru", "total_mru", "total_sru", "total_hru", "total_ipv4",
		"free_cru", "free_mru", "free_sru", "free_hru", "free_ipv4"} {
		q += ", " + sum(c)
	}
	var st StatusTotals
	t, f := &st.Total, &st.Free
	err := db.ro.QueryRowContext(ctx, q+` FROM node_status WHERE reported_at >= $1`, db.ts(since)).Scan(
		u64Col{&st.Reporting}, u64Col{&st.Healthy},
		&t.CRU, &t.MRU, &t.SRU, &t.HRU, &t.IPv4, &f.CRU, &f.MRU, &f.SRU, &f.HRU, &f.IPv4)
	if err != nil {
		return StatusTotals{}, fmt.Errorf("store: status totals: %w", err)
	}
	return st, nil
}

// CountFarms returns the number of farms.
func (db *DB) CountFarms(ctx context.Context) (uint64, error) {
	var n uint64
	if err := db.ro.QueryRowContext(ctx, `SELECT COUNT(*) FROM farms`).Scan(u64Col{&n}); err != nil {
		return 0, fmt.Errorf("store: count farms: %w", err)
	}
	return n, nil
}
