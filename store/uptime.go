package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// RestartSlack is how far a report's boot time (receive time minus
// reported uptime) may lie after the current session's boot time before
// the report counts as a new boot. It absorbs network and queueing delay
// and the one-second resolution of uptime; a reboot is detected either by
// the uptime going down or by the boot time moving forward by more than
// this.
const RestartSlack = 5 * time.Minute

// sameBootUpdate counts a report of the current boot: the session keeps
// the newest report's time, uptime and boot time estimate, and a report
// older than the newest one (requests racing) only adds to the count.
// Arguments: $1 node id, $2 receive time, $3 boot time, $4 uptime.
const sameBootUpdate = `UPDATE node_liveness SET
	last_seen = CASE WHEN last_seen > $2 THEN last_seen ELSE $2 END,
	boot_time = CASE WHEN last_seen > $2 THEN boot_time ELSE $3 END,
	uptime = CASE WHEN last_seen > $2 THEN uptime ELSE $4 END,
	reports = reports + 1
	WHERE node_id = $1`

// sameBoot reports whether a report received at at, with uptime giving
// boot time boot, belongs to the current session cur: its boot time is not
// later than cur's by more than RestartSlack, and its uptime did not go
// down (unless the report is older than cur's last one, a request that
// lost a race, not a reboot).
func sameBoot(cur api.UptimeSession, at, boot time.Time, uptime uint64) bool {
	return !boot.After(cur.BootTime.Add(RestartSlack)) && (uptime >= cur.Uptime || at.Before(cur.LastReport))
}

// UptimeResult is what RecordUptime saw.
type UptimeResult struct {
	// Restarted is true when the report started a new session because the
	// node rebooted since its previous report.
	Restarted bool
	// Previous is the session the restart closed (nil unless Restarted).
	Previous *api.UptimeSession
}

// RecordUptime records that node nodeID reported uptime seconds of uptime
// at time at (the server's receive time).
//
// The store keeps per node one current session (boot time, last report,
// uptime, number of reports). A report of the same boot updates it in
// place: one single-row UPDATE, no transaction. A report showing a reboot
// (the uptime went down, or the boot time moved forward by more than
// RestartSlack) closes the current session into the history and starts a
// new one, so the history grows by one row per reboot, not per report. A
// report received before the session's last one (concurrent requests) is
// counted but changes nothing else: it is never a reboot.
//
// On PostgreSQL the single-row update commits with synchronous_commit off:
// a crash of the database server may forget the last fraction of a second
// of reports (nodes report again), for several times the throughput.
// ErrNotFound if there is no such node; ErrInvalid if the uptime would put
// the boot before 1970.
func (db *DB) RecordUptime(ctx context.Context, nodeID uint64, at time.Time, uptime uint64) (UptimeResult, error) {
	return db.recordUptime(ctx, nodeID, at, uptime, nil)
}

// Nonce is a signed request's record against replay, as UseNonce keeps
// it: KeyID and Value identify it; it is live until Expires.
type Nonce struct {
	KeyID, Value string
	Expires      time.Time
}

// RecordUptimeOnce is RecordUptime for a signed request whose nonce is
// recorded with the report, as UseNonce would record it, in the same
// statement: one round trip where UseNonce then RecordUptime took two.
// When the nonce is live already it writes nothing and fails with
// ErrConflict (a replay). A report that is not of the current boot (the
// first one, a reboot) takes a transaction of its own after the nonce is
// recorded.
func (db *DB) RecordUptimeOnce(ctx context.Context, nodeID uint64, at time.Time, uptime uint64, n Nonce) (UptimeResult, error) {
	return db.recordUptime(ctx, nodeID, at, uptime, &n)
}

// recordUptime is RecordUptime, and with a nonce RecordUptimeOnce.
func (db *DB) recordUptime(ctx context.Context, nodeID uint64, at time.Time, uptime uint64, nonce *Nonce) (UptimeResult, error) {
	id, ok := idArg(nodeID)
	if !ok {
		return UptimeResult{}, fmt.Errorf("store: record uptime of node %d: %w", nodeID, ErrNotFound)
	}
	at = utc(at)
	// A node cannot have booted before 1970; this also keeps the
	// arithmetic below within time.Duration.
	if at.Unix() < 0 || uptime > uint64(at.Unix()) {
		return UptimeResult{}, fmt.Errorf("store: record uptime of node %d: uptime %d at %s: %w",
			nodeID, uptime, at.Format(time.RFC3339), ErrInvalid)
	}
	up := int64(uptime)
	boot := at.Add(-time.Duration(up) * time.Second)

	// The common case: same boot, one statement (on PostgreSQL shared with
	// concurrent reports, see batch.go).
	fast := uptimeArgs{node: id, at: at, boot: boot, bootFrom: boot.Add(-RestartSlack), uptime: up, nonce: nonce}
	var (
		done uptimeDone
		err  error
	)
	if db.batch != nil {
		done, err = db.batch.uptime.do(ctx, fast)
	} else {
		done, err = db.uptimeOne(ctx, fast)
	}
	switch {
	case err != nil:
		return UptimeResult{}, fmt.Errorf("store: record uptime of node %d: %w", nodeID, err)
	case done.replay:
		return UptimeResult{}, fmt.Errorf("store: record uptime of node %d: nonce %q of key %q already used: %w", nodeID, nonce.Value, nonce.KeyID, ErrConflict)
	case done.counted:
		return UptimeResult{}, nil
	}

	// First report, or a reboot: decide under the row's lock. The fast
	// path recorded the nonce already.
	var out UptimeResult
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		lock := ""
		if db.pg() {
			lock = " FOR UPDATE"
		}
		var cur api.UptimeSession
		err := tx.QueryRowContext(ctx,
			`SELECT boot_time, last_seen, uptime, reports FROM node_liveness WHERE node_id = $1`+lock, id).
			Scan(timeCol{&cur.BootTime}, timeCol{&cur.LastReport}, u64Col{&cur.Uptime}, u64Col{&cur.Reports})
		switch {
		case errors.Is(err, sql.ErrNoRows):
			// First report. ON CONFLICT: another process may insert it
			// first; then this report is counted in that session.
			_, err := tx.ExecContext(ctx,
				`INSERT INTO node_liveness (node_id, last_seen, boot_time, uptime, reports) VALUES ($1, $2, $3, $4, 1)
				 ON CONFLICT (node_id) DO UPDATE SET reports = node_liveness.reports + 1`,
				id, db.ts(at), db.ts(boot), up)
			if isForeignKey(err) {
				return fmt.Errorf("node %d: %w", nodeID, ErrNotFound)
			}
			return err
		case err != nil:
			return err
		}
		if sameBoot(cur, at, boot, uptime) {
			// Another report of the same boot got in first: count it.
			_, err := tx.ExecContext(ctx, sameBootUpdate, id, db.ts(at), db.ts(boot), up)
			return err
		}
		// Reboot: close the current session into the history (merging with
		// a session of the same boot time, which only clock trouble makes)
		// and start a new one.
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO uptime_sessions (node_id, boot_time, last_report, uptime, reports) VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (node_id, boot_time) DO UPDATE SET last_report = excluded.last_report,
			   uptime = excluded.uptime, reports = uptime_sessions.reports + excluded.reports`,
			id, db.ts(cur.BootTime), db.ts(cur.LastReport), int64(cur.Uptime), int64(cur.Reports)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE node_liveness SET last_seen = $2, boot_time = $3, uptime = $4, reports = 1 WHERE node_id = $1`,
			id, db.ts(at), db.ts(boot), up); err != nil {
			return err
		}
		out = UptimeResult{Restarted: true, Previous: &cur}
		return nil
	})
	if err != nil {
		return UptimeResult{}, fmt.Errorf("store: record uptime of node %d: %w", nodeID, err)
	}
	return out, nil
}

// maxSessions bounds the limit of UptimeSessions.
const maxSessions = 1000

// UptimeSessions returns the sessions of node nodeID that overlap
// [since, until] (a zero until means no upper bound), newest first, the
// current one included, at most limit of them (limit <= 0 or above 1000
// means 1000). ErrNotFound if there is no such node.
func (db *DB) UptimeSessions(ctx context.Context, nodeID uint64, since, until time.Time, limit int) ([]api.UptimeSession, error) {
	id, ok := idArg(nodeID)
	if !ok {
		return nil, fmt.Errorf("store: uptime sessions of node %d: %w", nodeID, ErrNotFound)
	}
	if limit <= 0 || limit > maxSessions {
		limit = maxSessions
	}
	if until.IsZero() {
		until = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	}
	rows, err := db.ro.QueryContext(ctx,
		`SELECT boot_time, last_report, uptime, reports FROM (
		   SELECT boot_time, last_seen AS last_report, uptime, reports FROM node_liveness
		   WHERE node_id = $1 AND last_seen >= $2 AND boot_time <= $3
		   UNION ALL
		   SELECT boot_time, last_report, uptime, reports FROM uptime_sessions
		   WHERE node_id = $1 AND last_report >= $2 AND boot_time <= $3
		 ) s ORDER BY boot_time DESC LIMIT $4`,
		id, db.ts(since), db.ts(until), limit)
	if err != nil {
		return nil, fmt.Errorf("store: uptime sessions of node %d: %w", nodeID, err)
	}
	defer rows.Close()
	out := []api.UptimeSession{}
	for rows.Next() {
		var s api.UptimeSession
		if err := rows.Scan(timeCol{&s.BootTime}, timeCol{&s.LastReport}, u64Col{&s.Uptime}, u64Col{&s.Reports}); err != nil {
			return nil, fmt.Errorf("store: uptime sessions of node %d: %w", nodeID, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: uptime sessions of node %d: %w", nodeID, err)
	}
	if len(out) == 0 {
		if _, err := db.Node(ctx, nodeID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PruneUptime deletes the closed sessions whose last report is before
// before (the retention policy) and returns how many it deleted. Current
// sessions are never deleted.
func (db *DB) PruneUptime(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.rw.ExecContext(ctx, `DELETE FROM uptime_sessions WHERE last_report < $1`, db.ts(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune uptime: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune uptime: %w", err)
	}
	return n, nil
}
