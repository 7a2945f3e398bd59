package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Hooks for the external tests of the hot statements (plan_test.go).

// Statements of the uptime hot path on PostgreSQL.
const (
	UptimeBatchSQL      = uptimeBatchSQL
	UptimeNonceBatchSQL = uptimeNonceBatchSQL
	TwinKeyBatchSQL     = twinKeyBatchSQL
)

// ListNodesQuery returns the statement and arguments ListNodes runs.
func (db *DB) ListNodesQuery(filter NodeFilter, page Page) (string, []any, bool) {
	q, a, ok := db.listNodesQuery(filter, page)
	return q, a, ok
}

// Conn returns a connection of the pool the store reads with, with the
// store's session settings.
func (db *DB) Conn(ctx context.Context) (*sql.Conn, error) { return db.ro.Conn(ctx) }

// LiveConn returns a connection of the pool uptime reports are written
// with.
func (db *DB) LiveConn(ctx context.Context) (*sql.Conn, error) { return db.live.Conn(ctx) }

// Literal renders a query argument as a PostgreSQL literal, for EXECUTE of
// a statement prepared with PREPARE (which takes no bind parameters).
func Literal(v any) (string, error) {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10), nil
	case time.Time:
		return "'" + v.UTC().Format(time.RFC3339Nano) + "'::timestamptz", nil
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'::text", nil
	case bool:
		return strconv.FormatBool(v), nil
	case []int64:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.FormatInt(x, 10)
		}
		return "'{" + strings.Join(s, ",") + "}'::bigint[]", nil
	case []time.Time:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = `"` + x.UTC().Format(time.RFC3339Nano) + `"`
		}
		return "'{" + strings.Join(s, ",") + "}'::timestamptz[]", nil
	case []string:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, `'`, `''`).Replace(x) + `"`
		}
		return "'{" + strings.Join(s, ",") + "}'::text[]", nil
	case []bool:
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = strconv.FormatBool(x)
		}
		return "'{" + strings.Join(s, ",") + "}'::bool[]", nil
	}
	return "", fmt.Errorf("no literal for %T", v)
}

// ZosCacheLive reports whether the version cache may answer (on
// PostgreSQL: the listener is listening).
func (db *DB) ZosCacheLive() bool {
	db.zos.mu.Lock()
	defer db.zos.mu.Unlock()
	return db.zos.live
}

// ZosCacheGeneration counts the invalidations of the version cache.
func (db *DB) ZosCacheGeneration() uint64 { return db.zos.generation() }

// SeedContractsPG loads n active node contracts for the billing
// benchmark, in set-based statements (PostgreSQL only): `twins` new
// accounts with a large balance, the contracts spread over them and over
// nodes, each billed until period, with a usage report for period, and
// prices on every farm of the nodes. It returns the twins' ids.
func (db *DB) SeedContractsPG(ctx context.Context, n, twins int, nodes []int64, period time.Time) error {
	if !db.pg() {
		return fmt.Errorf("SeedContractsPG: PostgreSQL only")
	}
	at := period.Add(-time.Hour)
	stmts := []struct {
		q    string
		args []any
	}{
		{`INSERT INTO accounts (public_key, created_at, updated_at)
		  SELECT 'bench-contract-twin-' || g, $2, $2 FROM generate_series(1, $1::bigint) g`, []any{twins, at}},
		{`CREATE TEMP TABLE bench_twins AS SELECT row_number() OVER (ORDER BY twin_id) - 1 AS i, twin_id FROM accounts
		  WHERE public_key LIKE 'bench-contract-twin-%'`, nil},
		{`CREATE TEMP TABLE bench_nodes AS SELECT ord - 1 AS i, id AS node_id FROM unnest($1::bigint[]) WITH ORDINALITY u(id, ord)`, []any{nodes}},
		{`INSERT INTO balances (account_kind, account_id, balance) SELECT 'twin', twin_id, 1000000000000000 FROM bench_twins`, nil},
		{`INSERT INTO farm_pricing (farm_id, set_at, cru, mru, sru, hru, ipv4)
		  SELECT DISTINCT n.farm_id, $1::timestamptz - interval '30 days', 100000, 50000, 1000, 100, 20000
		  FROM nodes n JOIN bench_nodes b ON b.node_id = n.node_id`, []any{at}},
		{`INSERT INTO contracts (twin_id, node_id, type, deployment_hash, cru, mru, sru, hru, ipv4, state, created_at, updated_at, billed_until)
		  SELECT t.twin_id, nd.node_id, 'node', md5(g::text), 2, 4294967296, 107374182400, 0, g % 2, 'active', $2, $2, $3
		  FROM generate_series(0, $1::bigint - 1) g
		  JOIN bench_twins t ON t.i = g % $4
		  JOIN bench_nodes nd ON nd.i = g % $5`, []any{n, at, period, twins, len(nodes)}},
		{`INSERT INTO contract_usage (contract_id, period_start, cru, mru, sru, hru, ipv4, reported_at)
		  SELECT contract_id, $1, 2, 2147483648, 53687091200, 0, ipv4, $1::timestamptz + interval '1 hour' FROM contracts`, []any{period}},
		{`ANALYZE`, nil},
	}
	conn, err := db.rw.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s.q, s.args...); err != nil {
			return fmt.Errorf("SeedContractsPG: %s: %w", strings.Fields(s.q)[0:3], err)
		}
	}
	return nil
}
