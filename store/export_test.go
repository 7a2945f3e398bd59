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
