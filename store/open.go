package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/grid4/grid4/internal/ctxsleep"
)

// DefaultURL is the database Open uses for an empty URL: a SQLite file in
// the working directory.
const DefaultURL = "sqlite:registrar.db"

// sqliteBusyTimeout is how long a SQLite statement waits for another
// process's write lock before failing with SQLITE_BUSY.
const sqliteBusyTimeout = 10 * time.Second

// Open opens the database at url, creating it if needed (SQLite), and
// brings its schema up to date. url is one of
//
//	sqlite:PATH            a SQLite file (created if missing); also
//	                       sqlite://PATH, so sqlite:///abs/path works
//	sqlite::memory:        a private in-memory SQLite database (tests)
//	postgres://...         PostgreSQL (also postgresql://...); any libpq
//	                       URL parameter pgx understands, plus
//	                       pool_max_conns=N (default 4 per CPU, at least 8)
//
// An empty url means DefaultURL.
func Open(ctx context.Context, url string) (*DB, error) {
	if url == "" {
		url = DefaultURL
	}
	var (
		db  *DB
		err error
	)
	switch {
	case strings.HasPrefix(url, "sqlite://"):
		db, err = openSQLite(strings.TrimPrefix(url, "sqlite://"))
	case strings.HasPrefix(url, "sqlite:"):
		db, err = openSQLite(strings.TrimPrefix(url, "sqlite:"))
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err = openPostgres(url)
	default:
		return nil, fmt.Errorf("store: open %q: unsupported database URL: want sqlite:PATH, sqlite::memory: or a postgres:// URL", redact(url))
	}
	if err != nil {
		return nil, fmt.Errorf("store: open %q: %w", redact(url), err)
	}
	if err := db.ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %q: %w", redact(url), err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: open %q: %w", redact(url), err)
	}
	return db, nil
}

// ping opens the first read-write connection. On SQLite that connection
// switches a new file to WAL, which needs the file to itself and fails at
// once with SQLITE_BUSY (the busy timeout does not apply to it) while
// another process does the same: several registrars starting together on
// a new file. So a busy answer is tried again for up to the busy timeout.
func (db *DB) ping(ctx context.Context) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := db.rw.PingContext(ctx)
		var se *sqlite.Error
		if err == nil || db.pg() || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		if ctxsleep.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

// redact hides the password of a database URL for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		if i := strings.Index(s, "@"); i >= 0 {
			return "..." + s[i:]
		}
		return s
	}
	return u.Redacted()
}

// openSQLite opens a SQLite file (or a private in-memory database for
// ":memory:").
func openSQLite(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("empty SQLite path (want sqlite:PATH)")
	}
	pragmas := url.Values{}
	pragmas.Add("_pragma", "busy_timeout("+strconv.FormatInt(sqliteBusyTimeout.Milliseconds(), 10)+")")
	pragmas.Add("_pragma", "foreign_keys(1)")
	if path == ":memory:" {
		// A private in-memory database lives as long as its connection:
		// one connection, never closed, serves reads and writes. The
		// memdb VFS name makes it private to this Open.
		var b [8]byte
		_, _ = rand.Read(b[:])
		pragmas.Set("_txlock", "immediate")
		dsn := "file:/grid4-" + hex.EncodeToString(b[:]) + "?vfs=memdb&" + pragmas.Encode()
		rw, err := openSQLiteWriter(dsn)
		if err != nil {
			return nil, err
		}
		p := newPool(rw, true)
		return newSQLiteDB(p, p), nil
	}
	name := "file:" + (&url.URL{Path: path}).EscapedPath()

	w := url.Values{}
	for k, v := range pragmas {
		w[k] = append([]string(nil), v...)
	}
	w.Add("_pragma", "journal_mode(WAL)")
	// NORMAL is durable against process crashes in WAL mode; a power loss
	// may lose the last transactions, never corrupt the file.
	w.Add("_pragma", "synchronous(NORMAL)")
	w.Set("_txlock", "immediate")
	rw, err := openSQLiteWriter(name + "?" + w.Encode())
	if err != nil {
		return nil, err
	}

	r := url.Values{}
	for k, v := range pragmas {
		r[k] = append([]string(nil), v...)
	}
	r.Add("_pragma", "query_only(1)")
	ro, err := sql.Open("sqlite", name+"?"+r.Encode())
	if err != nil {
		rw.Close()
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	ro.SetMaxOpenConns(n)
	ro.SetMaxIdleConns(n)
	ro.SetConnMaxIdleTime(5 * time.Minute)
	return newSQLiteDB(newPool(rw, true), newPool(ro, true)), nil
}

// openSQLiteWriter opens dsn as the one connection that writes, never
// closed: SQLite serializes writers anyway, and an in-memory database
// lives as long as its connection.
func openSQLiteWriter(dsn string) (*sql.DB, error) {
	rw, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	rw.SetMaxOpenConns(1)
	rw.SetMaxIdleConns(1)
	rw.SetConnMaxLifetime(0)
	rw.SetConnMaxIdleTime(0)
	return rw, nil
}

// newSQLiteDB is a SQLite store writing (and reading what must be live)
// through rw and reading the rest through ro.
func newSQLiteDB(rw, ro *pool) *DB {
	db := &DB{dialect: DialectSQLite, rw: rw, ro: ro, live: rw}
	db.batch = db.newBatches()
	db.zos.live = true // one process: its own writes invalidate
	return db
}

// openPostgres opens a PostgreSQL pool.
//
// It uses pgx through database/sql (pgx/v5/stdlib) rather than pgxpool: the
// store keeps one implementation of each query for both dialects on
// database/sql, and pgx's stdlib driver still caches prepared statements
// per connection, so a query is one round trip (Bind/Execute/Sync) and the
// database/sql layer costs a few microseconds per call, small beside the
// round trip. The one place where native pgx matters, bulk loading, uses
// COPY through (*sql.Conn).Raw (see SeedNodes).
func openPostgres(dsn string) (*DB, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, errors.New("malformed PostgreSQL URL")
	}
	q := u.Query()
	maxConns := max(8, 4*runtime.GOMAXPROCS(0))
	if v := q.Get("pool_max_conns"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("pool_max_conns %q: want a positive integer", v)
		}
		maxConns = n
		q.Del("pool_max_conns")
		u.RawQuery = q.Encode()
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		// Say what is wrong without echoing the URL (and its password).
		if inner := errors.Unwrap(err); inner != nil {
			return nil, fmt.Errorf("malformed PostgreSQL URL: %v", inner)
		}
		return nil, errors.New("malformed PostgreSQL URL")
	}
	// Plan each prepared statement once. pgx prepares every query text
	// once per connection, but PostgreSQL still plans it afresh on each
	// execution while it judges a plan for the actual values cheaper than
	// the generic one, which it did for the node list: planning cost more
	// than running it. Every statement of the store is a small indexed
	// lookup whose best plan does not depend on the values bound (the
	// tests in plan_test.go assert the plans of the hot ones), so one
	// generic plan per statement and connection is right for all of them.
	if _, set := cfg.RuntimeParams["plan_cache_mode"]; !set {
		cfg.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	open := func(c *pgx.ConnConfig) *sql.DB {
		db := stdlib.OpenDB(*c)
		db.SetMaxOpenConns(maxConns)
		// database/sql keeps only 2 idle connections by default, which
		// makes a busy pool reconnect constantly.
		db.SetMaxIdleConns(maxConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
		db.SetConnMaxLifetime(time.Hour)
		return db
	}
	rw := newPool(open(cfg), false)
	// Liveness writes commit without waiting for the WAL flush: a crash of
	// PostgreSQL or of its machine may forget the last fraction of a
	// second of uptime reports (never corrupt anything, never half a
	// transaction), and nodes report again anyway. That lifts the
	// throughput of reports several times where each commit otherwise
	// waits for a disk flush.
	lc := cfg.Copy()
	lc.RuntimeParams["synchronous_commit"] = "off"
	db := &DB{dialect: DialectPostgres, rw: rw, ro: rw, live: newPool(open(lc), false), listen: newListener(cfg.Copy())}
	db.batch = db.newBatches()
	return db, nil
}

// errKind is what a database error means to the store.
type errKind int

const (
	errOther errKind = iota
	errUnique
	errForeignKey
)

// constraintError describes a constraint violation; constraint is the
// constraint's name when the database reports it (PostgreSQL), "" when it
// does not (SQLite).
func constraintError(err error) (kind errKind, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return errUnique, pe.ConstraintName
		case "23503":
			return errForeignKey, pe.ConstraintName
		}
		return errOther, ""
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errUnique, ""
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return errForeignKey, ""
		}
	}
	return errOther, ""
}

// classify wraps a uniqueness violation with ErrConflict and leaves other
// errors as they are.
func classify(err error) error {
	if k, _ := constraintError(err); k == errUnique {
		return fmt.Errorf("%w: %w", ErrConflict, err)
	}
	return err
}

// isUnique reports whether err is a uniqueness violation.
func isUnique(err error) bool {
	k, _ := constraintError(err)
	return k == errUnique
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	k, _ := constraintError(err)
	return k == errForeignKey
}

// execOwned runs a statement writing a row that belongs to another (a
// farm's SLA, a node's power target): a foreign-key violation, the owner
// missing, is ErrNotFound. what names the write in the errors ("set SLA
// of farm 7").
func (db *DB) execOwned(ctx context.Context, what, query string, args ...any) error {
	_, err := db.rw.ExecContext(ctx, query, args...)
	if isForeignKey(err) {
		return fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}
