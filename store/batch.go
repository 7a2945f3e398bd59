package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Batching of the hot statements.
//
// An uptime report costs the registrar three statements: the twin's key
// (TwinKey), the nonce (UseNonce) and the liveness update (RecordUptime).
// Each is tiny, so on PostgreSQL a call costs mostly the round trip: the
// wake-ups, the protocol messages, the executor start and, for writes, a
// transaction. Under load, the calls of one kind therefore share one
// statement: a coalescer runs a call at once when it can, and while
// batches are in flight it queues the calls that arrive and sends them all
// as the next batch, one statement over arrays (unnest / ANY). Without load
// nothing waits; under load a call waits at most for the batch ahead of
// it, and the database does far less work per call. Each call still gets
// its own answer with the single-call semantics; only the round trip is
// shared.
//
// SQLite runs in process, so there is no round trip to share, but each
// write is a transaction of its own on the one writer connection: there
// the coalescer groups the nonce and liveness writes of concurrent calls
// into one transaction per batch (fewer commits, WAL frames and
// checkpoints), one statement per call.

// batchTimeout bounds one batched statement. A batch serves many callers,
// so it does not run under any one caller's context.
const batchTimeout = 30 * time.Second

// maxBatch bounds the calls in one batch.
const maxBatch = 256

// batchSlots is how many batches of one kind may be in flight at once: one
// per 4 CPUs. Fewer batches in flight make them larger; on 2 CPUs one
// batch in flight gave 5,400 signed uptime reports/s where two gave 4,400
// and four 3,200 (docs/benchmarks.md). Several registrar processes each
// have their own.
func batchSlots() int { return max(1, runtime.GOMAXPROCS(0)/4) }

// coalescer runs calls of one kind in batches (see above). The zero value
// is not usable; use newCoalescer.
type coalescer[Q, R any] struct {
	// run executes one batch and returns one result per call, in order.
	run func(ctx context.Context, qs []Q) ([]R, error)
	// one executes a single call. When a batch fails (a deadlock between
	// processes, a lost connection, a value that fails the statement),
	// every caller runs its call alone with one, so that one call cannot
	// fail the others.
	one   func(ctx context.Context, q Q) (R, error)
	slots chan struct{}
	max   int

	mu      sync.Mutex
	pending []*call[Q, R]
}

// call is one caller's request and, once done is closed, its result.
type call[Q, R any] struct {
	q     Q
	taken bool // in a batch (guarded by the coalescer's mu)
	res   R
	err   error
	done  chan struct{}
}

func newCoalescer[Q, R any](slots, maxCalls int, run func(context.Context, []Q) ([]R, error), one func(context.Context, Q) (R, error)) *coalescer[Q, R] {
	return &coalescer[Q, R]{run: run, one: one, slots: make(chan struct{}, slots), max: maxCalls}
}

// do queues q and returns its result. While its call is queued, a caller
// competes for a free slot; whoever takes one leads: it runs the queued
// calls (its own among them, unless another leader took it) as one batch.
// A caller whose call is in a batch just waits for it. A caller whose ctx
// ends while its call is still queued withdraws it; once the call is in a
// batch it runs to the end (bounded by batchTimeout).
func (c *coalescer[Q, R]) do(ctx context.Context, q Q) (R, error) {
	cl := &call[Q, R]{q: q, done: make(chan struct{})}
	c.mu.Lock()
	c.pending = append(c.pending, cl)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		taken := cl.taken
		c.mu.Unlock()
		if taken {
			<-cl.done
			return c.result(ctx, cl)
		}
		select {
		case <-cl.done:
			return c.result(ctx, cl)
		case c.slots <- struct{}{}:
			c.lead(ctx)
			<-c.slots
		case <-ctx.Done():
			c.mu.Lock()
			if i := slices.Index(c.pending, cl); i >= 0 {
				c.pending = slices.Delete(c.pending, i, i+1)
				c.mu.Unlock()
				var zero R
				return zero, ctx.Err()
			}
			c.mu.Unlock()
			<-cl.done
			return c.result(ctx, cl)
		}
	}
}

// result is the answer of a finished call: its batch's, or its own when
// the batch failed.
func (c *coalescer[Q, R]) result(ctx context.Context, cl *call[Q, R]) (R, error) {
	if cl.err != nil {
		return c.one(ctx, cl.q)
	}
	return cl.res, nil
}

// lead runs the queued calls, at most c.max of them, as one batch.
func (c *coalescer[Q, R]) lead(ctx context.Context) {
	c.mu.Lock()
	n := min(len(c.pending), c.max)
	batch := slices.Clone(c.pending[:n])
	c.pending = slices.Delete(c.pending, 0, n)
	for _, cl := range batch {
		cl.taken = true
	}
	c.mu.Unlock()
	if n == 0 {
		return
	}
	qs := make([]Q, n)
	for i, cl := range batch {
		qs[i] = cl.q
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), batchTimeout)
	defer cancel()
	rs, err := c.run(bctx, qs)
	if err == nil && len(rs) != n {
		err = fmt.Errorf("batch of %d calls returned %d results", n, len(rs))
	}
	for i, cl := range batch {
		if err != nil {
			cl.err = err
		} else {
			cl.res = rs[i]
		}
		close(cl.done)
	}
}

// batches are the coalescers of a DB; twinKey is nil on SQLite.
type batches struct {
	twinKey *coalescer[int64, twinKeyRow]
	nonce   *coalescer[nonceArgs, bool]
	uptime  *coalescer[uptimeArgs, uptimeDone]
}

func (db *DB) newBatches() *batches {
	n := batchSlots()
	if !db.pg() {
		// SQLite runs in process: no round trip to share, but one
		// transaction per batch of writes instead of one per write
		// (fewer commits, WAL frames and checkpoints). Reads need none.
		return &batches{
			nonce: newCoalescer(1, maxBatch, db.nonceBatchTx, func(ctx context.Context, a nonceArgs) (bool, error) {
				return db.useNonceOne(ctx, a.keyID, a.nonce, a.expires)
			}),
			uptime: newCoalescer(1, maxBatch, db.uptimeBatchTx, db.uptimeOne),
		}
	}
	return &batches{
		twinKey: newCoalescer(n, maxBatch, db.twinKeyBatch, db.twinKeyOne),
		nonce: newCoalescer(n, maxBatch, db.nonceBatch, func(ctx context.Context, a nonceArgs) (bool, error) {
			return db.useNonceOne(ctx, a.keyID, a.nonce, a.expires)
		}),
		uptime: newCoalescer(n, maxBatch, db.uptimeBatch, db.uptimeOne),
	}
}

// twinKeyOne looks up one twin's key and node.
func (db *DB) twinKeyOne(ctx context.Context, twin int64) (twinKeyRow, error) {
	r := twinKeyRow{found: true}
	err := db.ro.QueryRowContext(ctx,
		`SELECT a.public_key, n.node_id FROM accounts a LEFT JOIN nodes n ON n.twin_id = a.twin_id WHERE a.twin_id = $1`, twin).
		Scan(&r.pub, u64Col{&r.nodeID})
	if errors.Is(err, sql.ErrNoRows) {
		return twinKeyRow{}, nil
	}
	return r, err
}

// twinKeyRow is a TwinKey answer; found is false for an unknown twin.
type twinKeyRow struct {
	pub    string
	nodeID uint64
	found  bool
}

// twinKeyBatchSQL reads the keys and nodes of the twins $1 (PostgreSQL).
const twinKeyBatchSQL = `SELECT a.twin_id, a.public_key, n.node_id FROM accounts a LEFT JOIN nodes n ON n.twin_id = a.twin_id
	WHERE a.twin_id = ANY($1::bigint[])`

// twinKeyBatch looks up many twins' keys and nodes in one query.
func (db *DB) twinKeyBatch(ctx context.Context, twins []int64) ([]twinKeyRow, error) {
	rows, err := db.ro.QueryContext(ctx, twinKeyBatchSQL, twins)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[int64]twinKeyRow, len(twins))
	for rows.Next() {
		var (
			twin int64
			r    = twinKeyRow{found: true}
		)
		if err := rows.Scan(&twin, &r.pub, u64Col{&r.nodeID}); err != nil {
			return nil, err
		}
		found[twin] = r
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]twinKeyRow, len(twins))
	for i, t := range twins {
		out[i] = found[t]
	}
	return out, nil
}

// nonceArgs is one UseNonce call.
type nonceArgs struct {
	keyID, nonce string
	expires      time.Time
}

// nonceBatch records many nonces in one statement; true means recorded,
// false a live nonce already there (a replay). A nonce twice in the batch
// is recorded once: the second is a replay of the first. Rows go in key
// order, so that concurrent batches of several processes lock in the same
// order (no deadlocks).
func (db *DB) nonceBatch(ctx context.Context, ns []nonceArgs) ([]bool, error) {
	first := make(map[nonceKey]int, len(ns))
	order := make([]int, 0, len(ns))
	for i, n := range ns {
		k := nonceKey{n.keyID, n.nonce}
		if _, dup := first[k]; dup {
			continue
		}
		first[k] = i
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(ns[a].keyID, ns[b].keyID), cmp.Compare(ns[a].nonce, ns[b].nonce))
	})
	keyIDs, nonces, expires := make([]string, len(order)), make([]string, len(order)), make([]time.Time, len(order))
	for j, i := range order {
		keyIDs[j], nonces[j], expires[j] = ns[i].keyID, ns[i].nonce, utc(ns[i].expires)
	}
	return db.nonceRows(ctx, keyIDs, nonces, expires, first, len(ns))
}

// nonceKey identifies a nonce.
type nonceKey struct{ keyID, nonce string }

// nonceRows runs the batched nonce insert; index maps a recorded nonce to
// its call.
func (db *DB) nonceRows(ctx context.Context, keyIDs, nonces []string, expires []time.Time,
	index map[nonceKey]int, calls int) ([]bool, error) {
	rows, err := db.rw.QueryContext(ctx,
		`INSERT INTO nonces (key_id, nonce, expires_at)
		 SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[])
		 ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
		 WHERE nonces.expires_at <= $4
		 RETURNING key_id, nonce`,
		keyIDs, nonces, expires, now())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]bool, calls)
	for rows.Next() {
		var k nonceKey
		if err := rows.Scan(&k.keyID, &k.nonce); err != nil {
			return nil, err
		}
		if i, ok := index[k]; ok {
			out[i] = true
		}
	}
	return out, rows.Err()
}

// sameBootFast is sameBootUpdate restricted to a report of the current
// boot ($5: the earliest boot time that is still the same boot).
const sameBootFast = sameBootUpdate + ` AND boot_time >= $5 AND (uptime <= $4 OR last_seen > $2)`

// uptimeArgs is the fast path of one RecordUptime call: a report of the
// node's current boot (see sameBootUpdate), and for RecordUptimeOnce the
// nonce recorded with it.
type uptimeArgs struct {
	node               int64
	at, boot, bootFrom time.Time
	uptime             int64
	nonce              *Nonce
}

// uptimeDone is the fast path's answer to one call.
type uptimeDone struct {
	// counted: the report was counted in the node's current session.
	counted bool
	// replay: the call's nonce was live already; nothing was written.
	// Otherwise its nonce is recorded, whether the report was counted or
	// must take the slow path.
	replay bool
}

// uptimeOne runs the fast path of one call alone, when its batch failed.
func (db *DB) uptimeOne(ctx context.Context, u uptimeArgs) (uptimeDone, error) {
	run := db.uptimeBatch
	if !db.pg() {
		run = db.uptimeBatchTx
	}
	out, err := run(ctx, []uptimeArgs{u})
	if err != nil {
		return uptimeDone{}, err
	}
	return out[0], nil
}

// uptimeSet is the SET list of the batched liveness update, from the row
// v of the arrays.
const uptimeSet = `UPDATE node_liveness l SET
	last_seen = CASE WHEN l.last_seen > v.at THEN l.last_seen ELSE v.at END,
	boot_time = CASE WHEN l.last_seen > v.at THEN l.boot_time ELSE v.boot END,
	uptime = CASE WHEN l.last_seen > v.at THEN l.uptime ELSE v.up END,
	reports = l.reports + 1`

// uptimeMatch is the condition of sameBootFast on the row v.
const uptimeMatch = `l.node_id = v.node_id AND l.boot_time >= v.boot_from AND (l.uptime <= v.up OR l.last_seen > v.at)`

// uptimeBatchSQL is sameBootFast over arrays (PostgreSQL): $1 node ids,
// $2 receive times, $3 boot times, $4 uptimes, $5 earliest boot times of
// the same boot. It changes no indexed column of node_liveness, so each
// update is HOT (plan_test.go asserts it).
const uptimeBatchSQL = uptimeSet + `
	FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::bigint[], $5::timestamptz[])
	  AS v(node_id, at, boot, up, boot_from)
	WHERE ` + uptimeMatch + `
	RETURNING l.node_id`

// uptimeNonceBatchSQL is uptimeBatchSQL with the calls' nonces
// (PostgreSQL): it records them as useNonceSQL does ($6 key ids, "" for a
// call without one, $7 nonces, $8 expiry times, $9 now) and updates a
// node only for a call without a nonce or whose nonce it recorded; $10
// tells which calls update (one per node: a row is updated once per
// statement). It answers the nonces recorded (key, nonce) and the nodes
// updated (node id).
const uptimeNonceBatchSQL = `WITH v AS MATERIALIZED (
	SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::timestamptz[], $4::bigint[], $5::timestamptz[],
	    $6::text[], $7::text[], $8::timestamptz[], $10::bool[])
	  AS v(node_id, at, boot, up, boot_from, key_id, nonce, expires, apply)
), n AS (
	INSERT INTO nonces (key_id, nonce, expires_at)
	SELECT key_id, nonce, expires FROM v WHERE key_id <> ''
	ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
	WHERE nonces.expires_at <= $9
	RETURNING key_id, nonce
), u AS (
	` + uptimeSet + `
	FROM v
	WHERE v.apply AND ` + uptimeMatch + `
	  AND (v.key_id = '' OR (v.key_id COLLATE "C", v.nonce COLLATE "C") IN (SELECT key_id, nonce FROM n))
	RETURNING l.node_id
)
SELECT key_id, nonce, 0::bigint FROM n UNION ALL SELECT '', '', node_id FROM u`

// uptimeBatch runs the fast path of many RecordUptime and
// RecordUptimeOnce calls in one statement (PostgreSQL). A call is counted
// unless it must take the slow path (first report, a reboot, a race; also
// the second report of one node in a batch, since a row is updated once
// per statement) or its nonce is a replay (of an earlier request, or of a
// call earlier in the batch). Rows go in node order, so that concurrent
// batches of several processes lock in the same order (no deadlocks).
func (db *DB) uptimeBatch(ctx context.Context, us []uptimeArgs) ([]uptimeDone, error) {
	out := make([]uptimeDone, len(us))
	sent := make([]int, 0, len(us))
	firstNode := make(map[int64]int, len(us)) // node -> its call that updates
	var nonces map[nonceKey]int
	for i, u := range us {
		if u.nonce != nil {
			k := nonceKey{u.nonce.KeyID, u.nonce.Value}
			if nonces == nil {
				nonces = make(map[nonceKey]int, len(us))
			}
			if _, dup := nonces[k]; dup {
				out[i].replay = true
				continue
			}
			nonces[k] = i
		}
		if _, dup := firstNode[u.node]; !dup {
			firstNode[u.node] = i
		}
		sent = append(sent, i)
	}
	slices.SortStableFunc(sent, func(a, b int) int { return cmp.Compare(us[a].node, us[b].node) })
	var (
		nodes, ups        = make([]int64, len(sent)), make([]int64, len(sent))
		ats, boots, froms = make([]time.Time, len(sent)), make([]time.Time, len(sent)), make([]time.Time, len(sent))
	)
	for j, i := range sent {
		u := us[i]
		nodes[j], ups[j], ats[j], boots[j], froms[j] = u.node, u.uptime, u.at, u.boot, u.bootFrom
	}
	var (
		rows *sql.Rows
		err  error
	)
	if nonces == nil {
		rows, err = db.live.QueryContext(ctx, uptimeBatchSQL, nodes, ats, boots, ups, froms)
	} else {
		keyIDs, values, expires, apply := make([]string, len(sent)), make([]string, len(sent)), make([]time.Time, len(sent)), make([]bool, len(sent))
		for j, i := range sent {
			if n := us[i].nonce; n != nil {
				keyIDs[j], values[j], expires[j] = n.KeyID, n.Value, utc(n.Expires)
			} else {
				expires[j] = ats[j] // unused: no nonce
			}
			apply[j] = firstNode[us[i].node] == i
		}
		rows, err = db.live.QueryContext(ctx, uptimeNonceBatchSQL, nodes, ats, boots, ups, froms,
			keyIDs, values, expires, now(), apply)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	counted := make(map[int64]bool, len(sent))
	kept := make(map[nonceKey]bool, len(nonces))
	for rows.Next() {
		var (
			k  nonceKey
			id int64
		)
		if nonces == nil {
			err = rows.Scan(&id)
		} else {
			err = rows.Scan(&k.keyID, &k.nonce, &id)
		}
		if err != nil {
			return nil, err
		}
		if k.keyID != "" {
			kept[k] = true
		} else {
			counted[id] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, i := range sent {
		u := us[i]
		if u.nonce != nil && !kept[nonceKey{u.nonce.KeyID, u.nonce.Value}] {
			out[i].replay = true
			continue
		}
		out[i].counted = firstNode[u.node] == i && counted[u.node]
	}
	return out, nil
}

// nonceBatchTx records many nonces in one transaction, one statement each
// (SQLite: no arrays; the transaction saves the commits).
func (db *DB) nonceBatchTx(ctx context.Context, ns []nonceArgs) ([]bool, error) {
	t := db.ts(now())
	return db.execBatchTx(ctx, useNonceSQL, len(ns), func(i int) []any {
		return []any{ns[i].keyID, ns[i].nonce, db.ts(ns[i].expires), t}
	})
}

// uptimeBatchTx runs the fast path of many RecordUptime and
// RecordUptimeOnce calls in one transaction, one statement each (SQLite):
// a call's nonce first, then its update unless the nonce is a replay.
func (db *DB) uptimeBatchTx(ctx context.Context, us []uptimeArgs) ([]uptimeDone, error) {
	out := make([]uptimeDone, len(us))
	t := db.ts(now())
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		nonce, err := db.rw.txStmt(ctx, tx, useNonceSQL)
		if err != nil {
			return err
		}
		defer nonce.Close()
		update, err := db.rw.txStmt(ctx, tx, sameBootFast)
		if err != nil {
			return err
		}
		defer update.Close()
		for i, u := range us {
			if n := u.nonce; n != nil {
				res, err := nonce.ExecContext(ctx, n.KeyID, n.Value, db.ts(n.Expires), t)
				if err != nil {
					return err
				}
				if k, err := res.RowsAffected(); err != nil {
					return err
				} else if k != 1 {
					out[i].replay = true
					continue
				}
			}
			res, err := update.ExecContext(ctx, u.node, db.ts(u.at), db.ts(u.boot), u.uptime, db.ts(u.bootFrom))
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			out[i].counted = k == 1
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	db.rw.warm(ctx, useNonceSQL)
	db.rw.warm(ctx, sameBootFast)
	return out, nil
}

// execBatchTx runs q with args(i) for i in [0, n) in one write
// transaction; result i tells whether run i affected one row.
func (db *DB) execBatchTx(ctx context.Context, q string, n int, args func(i int) []any) ([]bool, error) {
	out := make([]bool, n)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		st, err := db.rw.txStmt(ctx, tx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		for i := range n {
			res, err := st.ExecContext(ctx, args(i)...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			out[i] = k == 1
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	db.rw.warm(ctx, q)
	return out, nil
}
