package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestSQLiteSettings checks the connection settings the package promises:
// WAL, foreign keys, busy timeout, IMMEDIATE write transactions and
// read-only reader connections.
func TestSQLiteSettings(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	db, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range []*pool{db.rw, db.ro} {
		var mode string
		var fk, busy int64
		if err := p.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		if err := p.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
			t.Errorf("foreign_keys = %d, %v; want 1", fk, err)
		}
		if err := p.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil || busy != sqliteBusyTimeout.Milliseconds() {
			t.Errorf("busy_timeout = %d, %v", busy, err)
		}
	}
	if _, err := db.ro.ExecContext(ctx, `DELETE FROM nonces`); err == nil {
		t.Error("a reader connection accepted a write")
	}
	if db.rw.Stats().MaxOpenConnections != 1 {
		t.Errorf("writer pool has %d connections, want 1", db.rw.Stats().MaxOpenConnections)
	}
	// A write transaction takes the write lock at BEGIN: a second handle's
	// writer waits (busy timeout) instead of failing on lock upgrade.
	other, err := Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := db.rw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- other.UseNonce(ctx, "k", "n", time.Now().Add(time.Minute)) }()
	select {
	case err := <-done:
		t.Fatalf("write through another handle went through during an IMMEDIATE transaction: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting writer: %v", err)
	}
}

func TestPageLimitOffset(t *testing.T) {
	for _, c := range []struct {
		p             Page
		limit, offset int64
		ok            bool
	}{
		{Page{}, DefaultPageSize, 0, true},
		{Page{Number: 1, Size: 10}, 10, 0, true},
		{Page{Number: 3, Size: 10}, 10, 20, true},
		{Page{Number: 2, Size: 1 << 62}, MaxPageSize, MaxPageSize, true},
		{Page{Number: 1 << 62, Size: 100}, 0, 0, false},
		{Page{Number: ^uint64(0), Size: 1}, 0, 0, false},
	} {
		l, o, ok := c.p.limitOffset()
		if l != c.limit || o != c.offset || ok != c.ok {
			t.Errorf("%+v: limit %d offset %d ok %v; want %d %d %v", c.p, l, o, ok, c.limit, c.offset, c.ok)
		}
	}
}

func TestLikePattern(t *testing.T) {
	for in, want := range map[string]string{
		"Farm":   "%farm%",
		"a_b%c":  `%a\_b\%c%`,
		`back\s`: `%back\\s%`,
	} {
		if got := likePattern(in); got != want {
			t.Errorf("likePattern(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMigrationsEmbedded(t *testing.T) {
	for _, d := range []string{DialectSQLite, DialectPostgres} {
		ms, err := migrations(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 || ms[0].version != 1 {
			t.Fatalf("%s migrations = %+v", d, ms)
		}
		for i := 1; i < len(ms); i++ {
			if ms[i].version <= ms[i-1].version {
				t.Fatalf("%s migrations out of order", d)
			}
		}
	}
	// Both dialects have the same versions.
	a, _ := migrations(DialectSQLite)
	b, _ := migrations(DialectPostgres)
	if len(a) != len(b) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL", len(a), len(b))
	}
	for i := range a {
		if a[i].version != b[i].version || a[i].name != b[i].name {
			t.Fatalf("migration %d differs: %s vs %s", i, a[i].name, b[i].name)
		}
	}
}

// TestParseInterfaces: the interfaces scanner agrees with encoding/json
// on what the store writes (as PostgreSQL's jsonb and SQLite give it back)
// and gives up on anything else.
func TestParseInterfaces(t *testing.T) {
	type stored struct {
		Name string   `json:"name"`
		Mac  string   `json:"mac"`
		IPs  []string `json:"ips"`
	}
	for _, in := range []string{
		`[]`, ` [ ] `,
		`[{"name":"eth0","mac":"52:54:00:12:34:56","ips":["10.0.0.2/24","2001:db8::2/64"]}]`,
		`[{"ips": ["10.0.0.2/24"], "mac": "52:54:00:12:34:56", "name": "eth0"}, {"ips": [], "mac": "", "name": "x"}]`,
		`[{"name":"eth0","mac":"m","ips":null}]`,
		`[{"name":"é ü","mac":"m"}]`,
	} {
		got, ok := parseInterfaces([]byte(in))
		var want []stored
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !ok || len(got) != len(want) {
			t.Fatalf("%s: %v, ok %v", in, got, ok)
		}
		for i := range want {
			g := got[i]
			if g.Name != want[i].Name || g.Mac != want[i].Mac || !slices.Equal([]string(g.IPs), want[i].IPs) || (g.IPs == nil) != (want[i].IPs == nil) {
				t.Errorf("%s: interface %d = %+v, want %+v", in, i, g, want[i])
			}
		}
	}
	for _, in := range []string{``, `[`, `[{"name":"a\"b"}]`, `[{"name":"a","other":1}]`, `[{"name":1}]`, `[] x`, `[{"ips":nul}]`, `{}`} {
		if _, ok := parseInterfaces([]byte(in)); ok {
			t.Errorf("%q: accepted", in)
		}
	}
}

// TestParseStrings: the api_endpoints scanner agrees with encoding/json
// and gives up on what it does not read.
func TestParseStrings(t *testing.T) {
	for _, in := range []string{`[]`, ` [ ] `, `null`, `["http://10.0.0.2:2021/api/v1/rpc"]`, `["a", "b&c"]`} {
		got, ok := parseStrings([]byte(in))
		var want []string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		if !ok || !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("%s: %q, ok %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{``, `[`, `["a\"b"]`, `[1]`, `["a"] x`, `{}`, `["a",]`} {
		if _, ok := parseStrings([]byte(in)); ok {
			t.Errorf("%q: accepted", in)
		}
	}
}
