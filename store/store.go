// Package store is the registrar's persistence: accounts (twins), farms,
// nodes, node liveness and uptime history, node status reports (the latest
// and a bounded history, see RecordNodeStatus), the ZOS version history
// and the nonces of signed requests.
//
// One type, *DB, works over database/sql on two dialects:
//
//   - SQLite (modernc.org/sqlite, pure Go), the default: "sqlite:PATH", or
//     "sqlite::memory:" for tests. WAL journal, busy timeout, foreign keys
//     on, IMMEDIATE write transactions; one writer connection and a pool of
//     read-only connections.
//   - PostgreSQL (github.com/jackc/pgx/v5 through its database/sql driver):
//     "postgres://..." or "postgresql://...". Several registrar processes may
//     share one database: identifiers come from identity columns, uniqueness
//     from constraints, replay protection from one atomic upsert, the
//     version serial from a primary key on MAX(serial)+1 with retries, and
//     migrations run under an advisory lock. Uptime reports go through a
//     second pool whose commits do not wait for the WAL flush (see
//     RecordUptime); everything else commits durably.
//
// The statements of the uptime hot path (TwinKey, UseNonce and the common
// case of RecordUptime) are shared by concurrent calls: on PostgreSQL one
// statement over arrays serves a batch of calls, on SQLite one transaction
// (see batch.go). Each call keeps its own answer and semantics.
//
// Liveness (the current uptime session of each node) lives in its own
// table, apart from node metadata: a normal report is one single-row
// update, a reboot adds one history row, and PruneUptime and PruneNonces
// keep the history and the nonces bounded.
//
// Every query is written once, with $N placeholders (modernc's SQLite driver
// binds $N by position), and times are bound through one helper (timestamptz
// on PostgreSQL, unix microseconds on SQLite). What differs per dialect is
// the DDL, in the versioned migrations embedded in the binary and applied by
// Open, plus a FOR UPDATE, the migration lock and bulk loading (SeedNodes).
//
// Errors wrap one of the sentinels below with context; test them with
// errors.Is.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors. Methods wrap them with detail (fmt.Errorf("...: %w")).
var (
	// ErrNotFound: the account, farm, node or version asked for does not
	// exist (for SetApproval: some nodes are not in the farm).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule refused the change (public key, farm
	// name, one node per twin, a nonce already used, a concurrent change).
	ErrConflict = errors.New("conflict")
	// ErrFarmNotFound: a node names a farm that does not exist.
	ErrFarmNotFound = errors.New("farm not found")
	// ErrNotChanged: SetZosVersion was given the current version unchanged.
	ErrNotChanged = errors.New("not changed")
	// ErrInvalid: a value the store cannot hold (e.g. an integer above
	// math.MaxInt64, a zero id where one is required). The HTTP layer
	// validates input first, so this normally means a bug upstream.
	ErrInvalid = errors.New("invalid value")
)

// Dialect names returned by (*DB).Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

// Page sizes for the list methods.
const (
	// DefaultPageSize is used when Page.Size is 0.
	DefaultPageSize = 50
	// MaxPageSize bounds Page.Size; larger sizes are reduced to it.
	MaxPageSize = 1000
)

// Page selects a page of a list: Number counts from 1 (0 is taken as 1),
// Size is the number of items per page (0 means DefaultPageSize, above
// MaxPageSize means MaxPageSize).
type Page struct {
	Number, Size uint64
}

// limitOffset returns the LIMIT and OFFSET of p; ok is false when the page
// lies beyond anything a table can hold (the list is then empty).
func (p Page) limitOffset() (limit, offset int64, ok bool) {
	size := p.Size
	if size == 0 {
		size = DefaultPageSize
	}
	if size > MaxPageSize {
		size = MaxPageSize
	}
	n := p.Number
	if n == 0 {
		n = 1
	}
	if n-1 > uint64(math.MaxInt64)/size {
		return 0, 0, false
	}
	return int64(size), int64((n - 1) * size), true
}

// DB is a registrar database. It is safe for concurrent use by many
// goroutines, and several processes may share one PostgreSQL database.
type DB struct {
	dialect string
	// rw runs writes (and, on PostgreSQL, everything). On a SQLite file it
	// has a single connection, so writers queue in Go instead of spinning
	// on SQLITE_BUSY.
	rw *pool
	// ro runs single-statement reads. On a SQLite file it is a pool of
	// query_only connections reading beside the writer (WAL); otherwise it
	// is rw.
	ro *pool
	// live runs the uptime report's single-row update. On PostgreSQL it
	// is a pool with synchronous_commit off (see openPostgres); otherwise
	// it is rw.
	live *pool
	// batch shares the hot statements between concurrent calls (see
	// batch.go).
	batch *batches
	// zos caches the current ZOS version (see zoscache.go).
	zos zosCache
	// listen listens for version changes of other processes; nil on
	// SQLite.
	listen *listener
}

// Dialect returns DialectSQLite or DialectPostgres.
func (db *DB) Dialect() string { return db.dialect }

// pools returns the distinct pools of db.
func (db *DB) pools() []*pool {
	ps := []*pool{db.rw}
	for _, p := range []*pool{db.ro, db.live} {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps
}

// Ping checks that the database answers (for readiness probes).
func (db *DB) Ping(ctx context.Context) error {
	for _, p := range db.pools() {
		if err := p.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping: %w", err)
		}
	}
	return nil
}

// Close closes the database. Calls in flight may fail.
func (db *DB) Close() error {
	db.stopListener()
	var err error
	for _, p := range db.pools() {
		err = errors.Join(err, p.Close())
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// pg reports whether the dialect is PostgreSQL.
func (db *DB) pg() bool { return db.dialect == DialectPostgres }

// ts converts t to the value the dialect stores: a timestamptz on
// PostgreSQL, integer unix microseconds on SQLite.
func (db *DB) ts(t time.Time) any {
	if db.pg() {
		return t.UTC().Truncate(time.Microsecond)
	}
	return t.UnixMicro()
}

// now is the time the store stamps rows with, at the precision both
// dialects keep.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// utc normalises t to UTC at microsecond precision, as stored.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// timeCol scans a time column of either dialect into a time.Time (UTC).
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	case nil:
		*c.t = time.Time{}
	default:
		return fmt.Errorf("store: cannot scan %T into a time", src)
	}
	return nil
}

// nullTimeCol scans a nullable time column; NULL gives a nil pointer.
type nullTimeCol struct{ t **time.Time }

// Scan implements sql.Scanner.
func (c nullTimeCol) Scan(src any) error {
	if src == nil {
		*c.t = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(src); err != nil {
		return err
	}
	*c.t = &t
	return nil
}

// u64Col scans a non-negative integer column into a uint64.
type u64Col struct{ p *uint64 }

// Scan implements sql.Scanner.
func (c u64Col) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("store: negative value %d in an unsigned column", v)
		}
		*c.p = uint64(v)
	case nil:
		*c.p = 0
	default:
		return fmt.Errorf("store: cannot scan %T into an unsigned integer", src)
	}
	return nil
}

// toInt64 converts an unsigned value for storage; values above MaxInt64
// cannot be stored and give ErrInvalid naming the field.
func toInt64(field string, v uint64) (int64, error) {
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%s %d exceeds %d: %w", field, v, int64(math.MaxInt64), ErrInvalid)
	}
	return int64(v), nil
}

// idArg converts an id used as a lookup key. ok is false when no row can
// have it (0 or above MaxInt64), so the caller answers ErrNotFound without
// asking the database.
func idArg(id uint64) (int64, bool) {
	if id == 0 || id > math.MaxInt64 {
		return 0, false
	}
	return int64(id), true
}

// args collects query arguments and hands out their $N placeholders.
type args []any

// add appends v and returns its placeholder.
func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// where joins conditions into a WHERE clause ("" when there are none).
func where(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// inTx runs fn in a write transaction (IMMEDIATE on SQLite) and commits it
// if fn returns nil; otherwise it rolls back and returns fn's error.
func (db *DB) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", classify(err))
	}
	return nil
}

// likePattern makes a case-insensitive LIKE pattern matching s anywhere,
// with LIKE's wildcards in s escaped (use with ESCAPE '\').
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}
