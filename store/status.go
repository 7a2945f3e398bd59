package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// StatusHistoryLen is how many status reports of each node the store keeps
// (the latest included): 8 hours at the 40-minute report interval, 13 at
// a million nodes' stretched one; some 5 kB a node.
const StatusHistoryLen = 12

// statusUpsert writes a node's latest status and returns its report
// count. Arguments: $1 node id, $2 receive time, $3 healthy, $4..$8 the
// free figures, $9..$13 the total ones, $14 the report's JSON.
const statusUpsert = `INSERT INTO node_status (node_id, reported_at, healthy, free_cru, free_mru, free_sru, free_hru, free_ipv4,
	  total_cru, total_mru, total_sru, total_hru, total_ipv4, reports, report)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 1, $14)
	ON CONFLICT (node_id) DO UPDATE SET reported_at = excluded.reported_at, healthy = excluded.healthy,
	  free_cru = excluded.free_cru, free_mru = excluded.free_mru, free_sru = excluded.free_sru,
	  free_hru = excluded.free_hru, free_ipv4 = excluded.free_ipv4,
	  total_cru = excluded.total_cru, total_mru = excluded.total_mru, total_sru = excluded.total_sru,
	  total_hru = excluded.total_hru, total_ipv4 = excluded.total_ipv4,
	  reports = node_status.reports + 1, report = excluded.report
	RETURNING reports`

// historyUpsert ends the insert of a history row: its slot is reused.
const historyUpsert = ` ON CONFLICT (node_id, slot) DO UPDATE SET reported_at = excluded.reported_at, report = excluded.report`

// RecordNodeStatus stores st, received at at, as the latest status of node
// nodeID and adds it, without its checks and modules, to the node's
// history, whose oldest entry it replaces once StatusHistoryLen are kept.
// st.ReportedAt is set to at; st.Healthy is stored as given (the node's
// verdict: the reader decides whether it is still recent). On PostgreSQL
// it is one statement committed without waiting for the WAL flush, as an
// uptime report. ErrNotFound if there is no such node; ErrInvalid for a
// figure above math.MaxInt64.
func (db *DB) RecordNodeStatus(ctx context.Context, nodeID uint64, at time.Time, st api.NodeStatus) error {
	id, ok := idArg(nodeID)
	if !ok {
		return fmt.Errorf("store: record status of node %d: %w", nodeID, ErrNotFound)
	}
	st.ReportedAt = utc(at)
	figs, full, short, err := statusValues(st)
	if err != nil {
		return fmt.Errorf("store: record status of node %d: %w", nodeID, err)
	}
	vals := []any{id, db.ts(st.ReportedAt), st.Healthy}
	for _, f := range figs {
		vals = append(vals, f)
	}
	vals = append(vals, string(full), string(short))
	if db.pg() {
		// One statement, one round trip, committed like the liveness
		// update (synchronous_commit off: a database crash may forget
		// the last fraction of a second of reports; nodes report again).
		_, err = db.live.ExecContext(ctx, `WITH s AS (`+statusUpsert+`)
			INSERT INTO node_status_history (node_id, slot, reported_at, report)
			SELECT $1, (s.reports - 1) % `+strconv.Itoa(StatusHistoryLen)+`, $2, $15 FROM s`+historyUpsert, vals...)
		if isForeignKey(err) {
			err = fmt.Errorf("node %d: %w", nodeID, ErrNotFound)
		}
	} else {
		err = db.inTx(ctx, func(tx *sql.Tx) error {
			var reports int64
			err := tx.QueryRowContext(ctx, statusUpsert, vals[:14]...).Scan(&reports)
			if isForeignKey(err) {
				return fmt.Errorf("node %d: %w", nodeID, ErrNotFound)
			}
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO node_status_history (node_id, slot, reported_at, report) VALUES ($1, $2, $3, $4)`+historyUpsert,
				id, (reports-1)%StatusHistoryLen, vals[1], string(short))
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("store: record status of node %d: %w", nodeID, err)
	}
	return nil
}

// statusValues are the stored forms of a status: its free figures then
// its total ones (cru, mru, sru, hru, ipv4 each), and its JSON in full
// (the latest) and without checks, modules and peer probes (the history). ErrInvalid
// for a figure above math.MaxInt64.
func statusValues(st api.NodeStatus) (figs [10]int64, full, short []byte, err error) {
	for i, f := range []struct {
		name string
		v    uint64
	}{{"free.cru", st.Free.CRU}, {"free.mru", st.Free.MRU}, {"free.sru", st.Free.SRU}, {"free.hru", st.Free.HRU}, {"free.ipv4", st.Free.IPv4},
		{"total.cru", st.Total.CRU}, {"total.mru", st.Total.MRU}, {"total.sru", st.Total.SRU}, {"total.hru", st.Total.HRU}, {"total.ipv4", st.Total.IPv4}} {
		if figs[i], err = toInt64(f.name, f.v); err != nil {
			return figs, nil, nil, err
		}
	}
	if full, err = json.Marshal(st); err != nil {
		return figs, nil, nil, err
	}
	st.Checks, st.Modules = nil, nil
	if st.Peers != nil {
		counts := *st.Peers
		counts.Probes = nil
		st.Peers = &counts
	}
	short, err = json.Marshal(st)
	return figs, full, short, err
}

// NodeStatus returns the latest status of node nodeID (nil if it never
// reported one) and up to limit (at most, and by default,
// StatusHistoryLen) of its recent reports, newest first, the latest
// included, without checks and modules. Healthy is as the node reported
// it. ErrNotFound if there is no such node.
func (db *DB) NodeStatus(ctx context.Context, nodeID uint64, limit int) (*api.NodeStatus, []api.NodeStatus, error) {
	id, ok := idArg(nodeID)
	if !ok {
		return nil, nil, fmt.Errorf("store: status of node %d: %w", nodeID, ErrNotFound)
	}
	if limit <= 0 || limit > StatusHistoryLen {
		limit = StatusHistoryLen
	}
	var report string
	err := db.ro.QueryRowContext(ctx, `SELECT report FROM node_status WHERE node_id = $1`, id).Scan(&report)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err := db.Node(ctx, nodeID); err != nil {
			return nil, nil, err
		}
		return nil, []api.NodeStatus{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: status of node %d: %w", nodeID, err)
	}
	latest := new(api.NodeStatus)
	if err := json.Unmarshal([]byte(report), latest); err != nil {
		return nil, nil, fmt.Errorf("store: status of node %d: decode: %w", nodeID, err)
	}
	rows, err := db.ro.QueryContext(ctx,
		`SELECT report FROM node_status_history WHERE node_id = $1 ORDER BY reported_at DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("store: status history of node %d: %w", nodeID, err)
	}
	defer rows.Close()
	history := []api.NodeStatus{}
	for rows.Next() {
		var (
			r string
			s api.NodeStatus
		)
		if err := rows.Scan(&r); err != nil {
			return nil, nil, fmt.Errorf("store: status history of node %d: %w", nodeID, err)
		}
		if err := json.Unmarshal([]byte(r), &s); err != nil {
			return nil, nil, fmt.Errorf("store: status history of node %d: decode: %w", nodeID, err)
		}
		history = append(history, s)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("store: status history of node %d: %w", nodeID, err)
	}
	return latest, history, nil
}

// fillStatus sets Healthy (as the node reported it), StatusAt and Free of
// nodes from their latest status reports, in one query.
func (db *DB) fillStatus(ctx context.Context, nodes []api.Node) error {
	if len(nodes) == 0 {
		return nil
	}
	var (
		q   string
		a   args
		ids = make([]int64, len(nodes))
		at  = make(map[int64]int, len(nodes))
	)
	for i := range nodes {
		ids[i] = int64(nodes[i].NodeID)
		at[ids[i]] = i
	}
	const cols = `SELECT node_id, reported_at, healthy, free_cru, free_mru, free_sru, free_hru, free_ipv4 FROM node_status`
	if db.pg() {
		q, a = cols+` WHERE node_id = ANY($1::bigint[])`, args{ids}
	} else {
		ph := make([]string, len(ids))
		for i, v := range ids {
			ph[i] = a.add(v)
		}
		q = cols + ` WHERE node_id IN (` + strings.Join(ph, ", ") + `)`
	}
	rows, err := db.ro.QueryContext(ctx, q, a...)
	if err != nil {
		return fmt.Errorf("status of nodes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			t  time.Time
			h  bool
			f  api.Capacity
		)
		if err := rows.Scan(&id, timeCol{&t}, &h, u64Col{&f.CRU}, u64Col{&f.MRU}, u64Col{&f.SRU}, u64Col{&f.HRU}, u64Col{&f.IPv4}); err != nil {
			return fmt.Errorf("status of nodes: %w", err)
		}
		if i, ok := at[id]; ok {
			n := &nodes[i]
			n.Healthy, n.StatusAt, n.Free = h, &t, &f
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("status of nodes: %w", err)
	}
	return nil
}
