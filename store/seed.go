package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// SeedNode is one node for SeedNodes.
type SeedNode struct {
	// PublicKey is the base64 public key of the node's twin; SeedNodes
	// creates that account.
	PublicKey string
	// Node is the node to register. Its NodeID, FarmID, TwinID, Approved,
	// Online, CreatedAt and UpdatedAt are ignored. A non-nil LastSeen also
	// records a current uptime session: one report at LastSeen, with
	// uptime Uptime.
	Node   api.Node
	Uptime uint64
	// Status, when set, is recorded as the node's one status report,
	// received at Status.ReportedAt (see RecordNodeStatus).
	Status *api.NodeStatus
}

// SeededNode gives the ids SeedNodes assigned to one SeedNode.
type SeededNode struct {
	TwinID, NodeID uint64
}

// statusColumns are the columns of node_status, in the order
// seedStatus.values gives them after node_id.
func statusColumns() []string {
	return []string{"node_id", "reported_at", "healthy", "free_cru", "free_mru", "free_sru", "free_hru", "free_ipv4",
		"total_cru", "total_mru", "total_sru", "total_hru", "total_ipv4", "reports", "report"}
}

// seedBatch is how many nodes SeedNodes writes per transaction.
const seedBatch = 20000

// SeedNodes registers n nodes in farm farmID in bulk, each with an account
// of its own: gen(i) describes node i. It is for load tests and imports,
// and much faster than n CreateAccount and CreateNode calls: on PostgreSQL
// it reserves ids from the sequences and loads rows with COPY; on SQLite it
// runs prepared inserts in large transactions. Constraints still hold:
// a duplicate public key fails the batch it is in with ErrConflict.
// Batches of 20,000 nodes commit one by one, so an error leaves the earlier
// batches in place. It returns the ids in the order of i.
func (db *DB) SeedNodes(ctx context.Context, farmID uint64, n int, gen func(i int) SeedNode) ([]SeededNode, error) {
	if _, err := db.Farm(ctx, farmID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("store: seed nodes: farm %d: %w", farmID, ErrFarmNotFound)
		}
		return nil, fmt.Errorf("store: seed nodes: %w", err)
	}
	if n < 0 {
		return nil, fmt.Errorf("store: seed nodes: count %d: %w", n, ErrInvalid)
	}
	out := make([]SeededNode, 0, n)
	for start := 0; start < n; start += seedBatch {
		batch := make([]SeedNode, min(seedBatch, n-start))
		for i := range batch {
			batch[i] = gen(start + i)
		}
		var (
			ids []SeededNode
			err error
		)
		if db.pg() {
			ids, err = db.seedPostgres(ctx, int64(farmID), batch)
		} else {
			ids, err = db.seedSQLite(ctx, int64(farmID), batch)
		}
		if err != nil {
			return out, fmt.Errorf("store: seed nodes %d..%d: %w", start, start+len(batch)-1, classify(err))
		}
		out = append(out, ids...)
	}
	return out, nil
}

// seedRow holds the stored values of one SeedNode.
type seedRow struct {
	node   []any      // as nodeValues
	seen   *time.Time // nil: no liveness row
	boot   time.Time
	uptime int64
	pubKey string
	// status is nil without a status report.
	status *seedStatus
}

// seedStatus holds the stored values of a SeedNode's status.
type seedStatus struct {
	at          time.Time
	healthy     bool
	figs        [10]int64 // as statusValues
	full, short string
}

// values are the columns of node_status after node_id, as stored by the
// dialect of db.
func (s *seedStatus) values(db *DB) []any {
	v := []any{db.ts(s.at), s.healthy}
	for _, f := range s.figs {
		v = append(v, f)
	}
	return append(v, int64(1), s.full)
}

func seedRows(farmID int64, batch []SeedNode) ([]seedRow, error) {
	rows := make([]seedRow, len(batch))
	for i, s := range batch {
		s.Node.FarmID = uint64(farmID)
		vals, err := nodeValues(s.Node)
		if err != nil {
			return nil, err
		}
		r := seedRow{node: vals, pubKey: s.PublicKey}
		if s.Node.LastSeen != nil {
			seen := utc(*s.Node.LastSeen)
			if seen.Unix() < 0 || s.Uptime > uint64(seen.Unix()) || s.Uptime > math.MaxInt64 {
				return nil, fmt.Errorf("uptime %d: %w", s.Uptime, ErrInvalid)
			}
			r.seen = &seen
			r.uptime = int64(s.Uptime)
			r.boot = seen.Add(-time.Duration(r.uptime) * time.Second)
		}
		if st := s.Status; st != nil {
			figs, full, short, err := statusValues(*st)
			if err != nil {
				return nil, err
			}
			r.status = &seedStatus{at: utc(st.ReportedAt), healthy: st.Healthy, figs: figs, full: string(full), short: string(short)}
		}
		rows[i] = r
	}
	return rows, nil
}

// seedPostgres loads one batch with COPY, in one transaction, on a native
// pgx connection borrowed from the pool.
func (db *DB) seedPostgres(ctx context.Context, farmID int64, batch []SeedNode) ([]SeededNode, error) {
	rows, err := seedRows(farmID, batch)
	if err != nil {
		return nil, err
	}
	conn, err := db.rw.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var ids []SeededNode
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }() // a no-op after Commit
		reserve := func(table, col string) ([]int64, error) {
			rs, err := tx.Query(ctx,
				`SELECT nextval(pg_get_serial_sequence($1, $2)) FROM generate_series(1, $3)`,
				table, col, len(rows))
			if err != nil {
				return nil, err
			}
			return pgx.CollectRows(rs, pgx.RowTo[int64])
		}
		twins, err := reserve("accounts", "twin_id")
		if err != nil {
			return fmt.Errorf("reserve twin ids: %w", err)
		}
		nodes, err := reserve("nodes", "node_id")
		if err != nil {
			return fmt.Errorf("reserve node ids: %w", err)
		}
		t := now()
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"accounts"},
			[]string{"twin_id", "public_key", "relays", "rmb_enc_key", "created_at", "updated_at"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				return []any{twins[i], rows[i].pubKey, "[]", "", t, t}, nil
			})); err != nil {
			return fmt.Errorf("copy accounts: %w", err)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"nodes"},
			[]string{"node_id", "twin_id", "approved", "created_at", "updated_at",
				"farm_id", "country", "city", "longitude", "latitude", "hru", "sru", "cru", "mru", "interfaces",
				"secure_boot", "virtualized", "serial_number", "zos_version", "api_endpoints"},
			pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
				return append([]any{nodes[i], twins[i], false, t, t}, rows[i].node...), nil
			})); err != nil {
			return fmt.Errorf("copy nodes: %w", err)
		}
		var live [][]any
		for i, r := range rows {
			if r.seen != nil {
				live = append(live, []any{nodes[i], *r.seen, r.boot, r.uptime, int64(1)})
			}
		}
		if len(live) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"node_liveness"},
				[]string{"node_id", "last_seen", "boot_time", "uptime", "reports"}, pgx.CopyFromRows(live)); err != nil {
				return fmt.Errorf("copy liveness: %w", err)
			}
		}
		var status, history [][]any
		for i, r := range rows {
			if r.status != nil {
				status = append(status, append([]any{nodes[i]}, r.status.values(db)...))
				history = append(history, []any{nodes[i], int32(0), db.ts(r.status.at), r.status.short})
			}
		}
		if len(status) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"node_status"}, statusColumns(), pgx.CopyFromRows(status)); err != nil {
				return fmt.Errorf("copy status: %w", err)
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"node_status_history"},
				[]string{"node_id", "slot", "reported_at", "report"}, pgx.CopyFromRows(history)); err != nil {
				return fmt.Errorf("copy status history: %w", err)
			}
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		ids = make([]SeededNode, len(rows))
		for i := range rows {
			ids[i] = SeededNode{TwinID: uint64(twins[i]), NodeID: uint64(nodes[i])}
		}
		return nil
	})
	return ids, err
}

// seedSQLite inserts one batch with prepared statements in one IMMEDIATE
// transaction.
func (db *DB) seedSQLite(ctx context.Context, farmID int64, batch []SeedNode) ([]SeededNode, error) {
	rows, err := seedRows(farmID, batch)
	if err != nil {
		return nil, err
	}
	ids := make([]SeededNode, len(rows))
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		t := db.ts(now())
		acc, err := tx.PrepareContext(ctx,
			`INSERT INTO accounts (public_key, relays, rmb_enc_key, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING twin_id`)
		if err != nil {
			return err
		}
		defer acc.Close()
		node, err := tx.PrepareContext(ctx,
			`INSERT INTO nodes (farm_id, country, city, longitude, latitude, hru, sru, cru, mru, interfaces,
			   secure_boot, virtualized, serial_number, zos_version, api_endpoints, twin_id, approved, created_at, updated_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, FALSE, $17, $17) RETURNING node_id`)
		if err != nil {
			return err
		}
		defer node.Close()
		live, err := tx.PrepareContext(ctx,
			`INSERT INTO node_liveness (node_id, last_seen, boot_time, uptime, reports) VALUES ($1, $2, $3, $4, 1)`)
		if err != nil {
			return err
		}
		defer live.Close()
		status, err := tx.PrepareContext(ctx, `INSERT INTO node_status (`+strings.Join(statusColumns(), ", ")+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`)
		if err != nil {
			return err
		}
		defer status.Close()
		history, err := tx.PrepareContext(ctx, `INSERT INTO node_status_history (node_id, slot, reported_at, report) VALUES ($1, 0, $2, $3)`)
		if err != nil {
			return err
		}
		defer history.Close()
		for i, r := range rows {
			var twin, nodeID int64
			if err := acc.QueryRowContext(ctx, r.pubKey, "[]", "", t).Scan(&twin); err != nil {
				return fmt.Errorf("account %d: %w", i, err)
			}
			if err := node.QueryRowContext(ctx, append(r.node, twin, t)...).Scan(&nodeID); err != nil {
				return fmt.Errorf("node %d: %w", i, err)
			}
			if r.seen != nil {
				if _, err := live.ExecContext(ctx, nodeID, db.ts(*r.seen), db.ts(r.boot), r.uptime); err != nil {
					return fmt.Errorf("liveness %d: %w", i, err)
				}
			}
			if st := r.status; st != nil {
				if _, err := status.ExecContext(ctx, append([]any{nodeID}, st.values(db)...)...); err != nil {
					return fmt.Errorf("status %d: %w", i, err)
				}
				if _, err := history.ExecContext(ctx, nodeID, db.ts(st.at), st.short); err != nil {
					return fmt.Errorf("status history %d: %w", i, err)
				}
			}
			ids[i] = SeededNode{TwinID: uint64(twin), NodeID: uint64(nodeID)}
		}
		return nil
	})
	return ids, err
}
