package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/store"
)

func TestOpenBadURLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, u := range []string{
		"mysql://root@localhost/db",
		"registrar.db",
		"sqlite:",
		"sqlite:" + filepath.Join(t.TempDir(), "missing-dir", "x.db"),
		"postgres://user:s3cret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://user:s3cret@127.0.0.1:notaport/db",
		"postgres://user:s3cret@127.0.0.1/db?pool_max_conns=zero",
	} {
		db, err := store.Open(ctx, u)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
		if !strings.HasPrefix(err.Error(), "store: open ") {
			t.Errorf("Open(%q) error lacks context: %v", u, err)
		}
	}
}

func TestOpenSQLiteForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	abs := filepath.Join(dir, "odd name?#%.db")
	for _, u := range []string{"sqlite:" + abs, "sqlite://" + abs} {
		db := mustOpen(t, u)
		if db.Dialect() != store.DialectSQLite {
			t.Fatalf("Dialect = %q", db.Dialect())
		}
		mkAccount(t, db)
		db.Close()
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("database file not at %q: %v", abs, err)
	}
	// Both opens used the one file: two accounts.
	db := mustOpen(t, "sqlite:"+abs)
	if _, err := db.AccountByTwin(ctx, 2); err != nil {
		t.Fatalf("second account: %v", err)
	}
	// A relative path is relative to the working directory; an empty
	// URL is the default file. Not exercised here to keep the tree clean.
	_ = store.DefaultURL

	// In-memory databases are private to each Open.
	m1, m2 := mustOpen(t, "sqlite::memory:"), mustOpen(t, "sqlite::memory:")
	mkAccount(t, m1)
	if _, err := m2.AccountByTwin(ctx, 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("in-memory databases share data: %v", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	for _, op := range []opener{sqliteFileOpener(), postgresOpener()} {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			u := op.url(t)
			db := mustOpen(t, u)
			a := mkAccount(t, db)
			v1, err := db.SchemaVersion(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			db = mustOpen(t, u)
			if _, err := db.AccountByTwin(ctx, a.TwinID); err != nil {
				t.Fatalf("after reopen: %v", err)
			}
			if v2, err := db.SchemaVersion(ctx); err != nil || v2 != v1 {
				t.Fatalf("schema version %d after reopen, was %d (%v)", v2, v1, err)
			}
		})
	}
}
