package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// eventually polls cond until it holds, failing after 15 s. It checks
// behaviour (a change is seen), not speed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestZosVersionCacheAcrossProcesses: two stores on one PostgreSQL schema
// act as two registrar processes. The version is served from memory, and a
// change by the other process (its notification) is seen.
func TestZosVersionCacheAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := postgresOpener().url(t)
	a, b := mustOpen(t, url), mustOpen(t, url)

	if _, err := a.CurrentZosVersion(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no version yet: %v", err)
	}
	eventually(t, "the listener of A listens", a.ZosCacheLive)
	gen := a.ZosCacheGeneration()
	v1, err := b.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", SafeToUpgrade: true})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's change reaches A", func() bool { return a.ZosCacheGeneration() != gen })
	if v, err := a.CurrentZosVersion(ctx); err != nil || v.Serial != v1.Serial || v.Version != "v4.1.0" {
		t.Fatalf("A after B's change: %+v, %v", v, err)
	}

	// A change behind the store's back (no notification) is not seen: A
	// answers from memory.
	conn := mustConn(t, b)
	if _, err := conn.ExecContext(ctx, `UPDATE zos_versions SET version = 'v4.1.1' WHERE serial = $1`, int64(v1.Serial)); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if v, err := a.CurrentZosVersion(ctx); err != nil || v.Version != "v4.1.0" {
			t.Fatalf("A read the database instead of its cache: %+v, %v", v, err)
		}
	}
	// The notification any registrar sends with a change reaches A.
	if _, err := conn.ExecContext(ctx, `SELECT pg_notify('grid4_zos_version', current_schema())`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A drops its cache on the notification", func() bool {
		v, err := a.CurrentZosVersion(ctx)
		return err == nil && v.Version == "v4.1.1"
	})

	// A's own change is seen at once, without waiting for a notification.
	v2, err := a.SetZosVersion(ctx, api.ZosVersion{Version: "v4.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := a.CurrentZosVersion(ctx); err != nil || v.Serial != v2.Serial {
		t.Fatalf("A after its own change: %+v, %v; want serial %d", v, err, v2.Serial)
	}
}
