// Package storetest gives tests a fresh, empty registrar database of either
// kind: a SQLite file in the test's temp dir, or a PostgreSQL schema of its
// own (selected with search_path and dropped when the test ends).
//
// PostgreSQL is found at $GRID4_TEST_POSTGRES (set by `make test`), else at
// DefaultPostgresURL. When it is unreachable the test fails — it does not
// skip — with a message saying how to start it.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grid4/grid4/store"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// DefaultPostgresURL is used when GRID4_TEST_POSTGRES is unset.
const DefaultPostgresURL = "postgres://postgres:postgres@127.0.0.1:5432/grid4_test?sslmode=disable"

// The two kinds of store.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Backends lists every kind of store, for tests that run against each.
func Backends() []string { return []string{SQLite, Postgres} }

// PostgresBaseURL is the test PostgreSQL server's URL.
func PostgresBaseURL() string {
	if u := os.Getenv("GRID4_TEST_POSTGRES"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// URL returns the URL of a fresh empty database of the given backend.
func URL(t testing.TB, backend string) string {
	t.Helper()
	switch backend {
	case SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "registrar.db")
	case Postgres:
		return PostgresURL(t)
	}
	t.Fatalf("storetest: unknown backend %q", backend)
	return ""
}

// PostgresURL creates a schema of its own for t, dropped when t ends, and
// returns a URL whose search_path is that schema.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := PostgresBaseURL()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("GRID4_TEST_POSTGRES: %v", err)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("PostgreSQL %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("PostgreSQL at %s is unreachable (%v); start it with `make test-services` (or set GRID4_TEST_POSTGRES)", u.Redacted(), err)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Open opens a fresh empty store of the given backend, closed when t ends.
func Open(t testing.TB, backend string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), URL(t, backend))
	if err != nil {
		t.Fatalf("store.Open(%s): %v", backend, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
