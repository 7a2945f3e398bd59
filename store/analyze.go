package store

import (
	"context"
	"fmt"
)

// RefreshStatistics analyzes the tables of the hot statements whose
// statistics are stale: never gathered, or the table has grown by more
// than a tenth (and 100 rows) since. It returns the tables it analyzed
// (PostgreSQL; nothing on SQLite).
//
// Why the store cares: each connection plans a statement once (see
// openPostgres) and keeps the plan until the statistics of its tables
// change. A plan made while the tables were nearly empty, as on a new
// registrar filling up, scans them whole; once they are large that costs
// hundreds of microseconds a report. Autovacuum analyzes grown tables by
// itself, and that replaces the plans, but it may be off or behind. The
// registrar calls this every minute; it costs one catalog query when
// nothing is stale.
func (db *DB) RefreshStatistics(ctx context.Context) (string, error) {
	if !db.pg() {
		return "", nil
	}
	var stale string
	err := db.rw.QueryRowContext(ctx, `SELECT coalesce(string_agg(quote_ident(s.relname), ', '), '')
		FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
		WHERE s.schemaname = current_schema() AND s.relname IN ('accounts', 'farms', 'nodes', 'node_liveness', 'node_status', 'node_status_history')
		  AND s.n_live_tup > 1.1 * greatest(c.reltuples, 0) + 100`).Scan(&stale)
	if err != nil {
		return "", fmt.Errorf("store: refresh statistics: %w", err)
	}
	if stale == "" {
		return "", nil
	}
	if _, err := db.rw.ExecContext(ctx, `ANALYZE `+stale); err != nil {
		return "", fmt.Errorf("store: refresh statistics: analyze %s: %w", stale, err)
	}
	return stale, nil
}
