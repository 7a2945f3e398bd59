package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// TestConcurrentProcesses races goroutines over two separate *store.DB
// handles on one database, as two registrar processes would, and checks
// that ids, uniqueness, nonces and the version serial stay correct.
func TestConcurrentProcesses(t *testing.T) {
	t.Parallel()
	for _, op := range []opener{postgresOpener(), sqliteFileOpener()} {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			u := op.url(t)
			dbs := []*store.DB{mustOpen(t, u), mustOpen(t, u)}
			for _, tc := range []struct {
				name string
				fn   func(t *testing.T, dbs []*store.DB)
			}{
				{"Accounts", raceAccounts},
				{"FarmName", raceFarmName},
				{"NodePerTwin", raceNodePerTwin},
				{"Nonce", raceNonce},
				{"ZosSerial", raceZosSerial},
				{"Uptime", raceUptime},
			} {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, dbs) })
			}
		})
	}
}

// race runs fn(i, db) for i in [0, n) in n goroutines, alternating the
// handles, released together, and returns the errors by i.
func race(dbs []*store.DB, n int, fn func(i int, db *store.DB) error) []error {
	errs := make([]error, n)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i, dbs[i%len(dbs)])
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// countWins checks that exactly one call succeeded and every other one
// failed with target.
func countWins(t *testing.T, errs []error, target error) {
	t.Helper()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, target):
			t.Errorf("call %d: %v, want an error wrapping %v", i, err, target)
		}
	}
	if wins != 1 {
		t.Errorf("%d calls succeeded, want exactly 1", wins)
	}
}

func raceAccounts(t *testing.T, dbs []*store.DB) {
	const n = 60
	ids := make([]uint64, n)
	errs := race(dbs, n, func(i int, db *store.DB) error {
		a, err := db.CreateAccount(context.Background(), api.Account{PublicKey: pubKey()})
		ids[i] = a.TwinID
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("CreateAccount %d: %v", i, err)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != n {
		t.Fatalf("twin ids not distinct: %v", ids)
	}
	// The same key from everyone: one account.
	pk := pubKey()
	countWins(t, race(dbs, 20, func(i int, db *store.DB) error {
		_, err := db.CreateAccount(context.Background(), api.Account{PublicKey: pk})
		return err
	}), store.ErrConflict)
}

func raceFarmName(t *testing.T, dbs []*store.DB) {
	owner := mkAccount(t, dbs[0])
	name := "Race" + randHex(4)
	errs := race(dbs, 20, func(i int, db *store.DB) error {
		n := name
		if i%2 == 1 {
			n = strings.ToUpper(name) // case-insensitive uniqueness
		}
		_, err := db.CreateFarm(context.Background(), api.Farm{FarmName: n, TwinID: owner.TwinID})
		return err
	})
	countWins(t, errs, store.ErrConflict)
	fs := must(dbs[1].ListFarms(context.Background(), store.FarmFilter{NameContains: name}, store.Page{}))(t)
	if len(fs) != 1 {
		t.Fatalf("%d farms named %s", len(fs), name)
	}
	// Renames racing onto one name: one wins.
	var farms []api.Farm
	for range 10 {
		farms = append(farms, mkFarm(t, dbs[0], owner.TwinID))
	}
	target := "Target" + randHex(4)
	countWins(t, race(dbs, len(farms), func(i int, db *store.DB) error {
		_, err := db.UpdateFarm(context.Background(), farms[i].FarmID, api.UpdateFarmRequest{FarmName: &target})
		return err
	}), store.ErrConflict)
}

func raceNodePerTwin(t *testing.T, dbs []*store.DB) {
	owner := mkAccount(t, dbs[0])
	farm := mkFarm(t, dbs[0], owner.TwinID)
	tw := mkAccount(t, dbs[0])
	countWins(t, race(dbs, 20, func(i int, db *store.DB) error {
		_, err := db.CreateNode(context.Background(), sampleNode(farm.FarmID, tw.TwinID))
		return err
	}), store.ErrConflict)
	ns := must(dbs[1].ListNodes(context.Background(), store.NodeFilter{TwinID: tw.TwinID}, store.Page{}))(t)
	if len(ns) != 1 {
		t.Fatalf("twin has %d nodes", len(ns))
	}
	// Many twins at once: distinct node ids.
	twins := make([]api.Account, 40)
	for i := range twins {
		twins[i] = mkAccount(t, dbs[i%2])
	}
	ids := make([]uint64, len(twins))
	for i, err := range race(dbs, len(twins), func(i int, db *store.DB) error {
		n, err := db.CreateNode(context.Background(), sampleNode(farm.FarmID, twins[i].TwinID))
		ids[i] = n.NodeID
		return err
	}) {
		if err != nil {
			t.Fatalf("CreateNode %d: %v", i, err)
		}
	}
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(twins) {
		t.Fatalf("node ids not distinct: %v", ids)
	}
}

func raceNonce(t *testing.T, dbs []*store.DB) {
	exp := time.Now().Add(time.Minute)
	for round := range 5 {
		nonce := fmt.Sprintf("nonce-%d-%s", round, randHex(4))
		countWins(t, race(dbs, 20, func(i int, db *store.DB) error {
			return db.UseNonce(context.Background(), "key", nonce, exp)
		}), store.ErrConflict)
	}
	// An expired nonce reused by everyone at once: still one winner.
	nonce := "expired-" + randHex(4)
	if err := dbs[0].UseNonce(context.Background(), "key", nonce, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	countWins(t, race(dbs, 20, func(i int, db *store.DB) error {
		return db.UseNonce(context.Background(), "key", nonce, exp)
	}), store.ErrConflict)
}

func raceZosSerial(t *testing.T, dbs []*store.DB) {
	ctx := context.Background()
	start := uint64(0)
	if cur, err := dbs[0].CurrentZosVersion(ctx); err == nil {
		start = cur.Serial
	}
	const n = 20
	serials := make([]uint64, n)
	errs := race(dbs, n, func(i int, db *store.DB) error {
		v, err := db.SetZosVersion(ctx, api.ZosVersion{Version: fmt.Sprintf("v4.%d.%s", i, randHex(2))})
		serials[i] = v.Serial
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("SetZosVersion %d: %v", i, err)
		}
	}
	slices.Sort(serials)
	for i, s := range serials {
		if s != start+uint64(i)+1 {
			t.Fatalf("serials %v are not distinct and contiguous from %d", serials, start+1)
		}
	}
	h := must(dbs[1].ZosVersionHistory(ctx, store.Page{Size: n}))(t)
	for i, v := range h {
		if v.Serial != start+n-uint64(i) {
			t.Fatalf("history serials out of order: %d at %d", v.Serial, i)
		}
	}
	// Everyone sets the same new version: one change, the rest ErrNotChanged.
	countWins(t, race(dbs, 10, func(i int, db *store.DB) error {
		_, err := db.SetZosVersion(ctx, api.ZosVersion{Version: "v9.9.9", SafeToUpgrade: true})
		return err
	}), store.ErrNotChanged)
}

func raceUptime(t *testing.T, dbs []*store.DB) {
	ctx := context.Background()
	owner := mkAccount(t, dbs[0])
	farm := mkFarm(t, dbs[0], owner.TwinID)
	n := mkNode(t, dbs[0], farm.FarmID)
	// Concurrent first and following reports of one boot: every report is
	// counted, one session, no restart.
	at := time.Now().UTC().Truncate(time.Second)
	const reports = 30
	restarts := make([]bool, reports)
	for i, err := range race(dbs, reports, func(i int, db *store.DB) error {
		r, err := db.RecordUptime(ctx, n.NodeID, at, 1000)
		restarts[i] = r.Restarted
		return err
	}) {
		if err != nil {
			t.Fatalf("RecordUptime %d: %v", i, err)
		}
	}
	if slices.Contains(restarts, true) {
		t.Fatalf("same-boot reports seen as restarts: %v", restarts)
	}
	ss := must(dbs[1].UptimeSessions(ctx, n.NodeID, time.Time{}, time.Time{}, 0))(t)
	if len(ss) != 1 || ss[0].Reports != reports {
		t.Fatalf("sessions = %+v, want one with %d reports", ss, reports)
	}
	// Many nodes reporting at once through both handles.
	var nodes []api.Node
	for range 20 {
		nodes = append(nodes, mkNode(t, dbs[1], farm.FarmID))
	}
	for i, err := range race(dbs, 200, func(i int, db *store.DB) error {
		_, err := db.RecordUptime(ctx, nodes[i%len(nodes)].NodeID, at.Add(time.Duration(i/len(nodes))*time.Second), 1000+uint64(i/len(nodes)))
		return err
	}) {
		if err != nil {
			t.Fatalf("RecordUptime %d: %v", i, err)
		}
	}
	for _, nd := range nodes {
		ss := must(dbs[0].UptimeSessions(ctx, nd.NodeID, time.Time{}, time.Time{}, 0))(t)
		if len(ss) != 1 || ss[0].Reports != 10 {
			t.Fatalf("node %d sessions = %+v", nd.NodeID, ss)
		}
	}
}

// TestConcurrentMigrations starts several handles on one fresh database at
// once, as registrar processes starting together would: all must come up
// on the same, fully migrated schema.
func TestConcurrentMigrations(t *testing.T) {
	t.Parallel()
	for _, op := range []opener{postgresOpener(), sqliteFileOpener()} {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			u := op.url(t)
			const n = 6
			dbs := make([]*store.DB, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					dbs[i], errs[i] = store.Open(context.Background(), u)
				})
			}
			close(start)
			wg.Wait()
			var want int64 = -1
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("Open %d: %v", i, errs[i])
				}
				defer dbs[i].Close()
				v, err := dbs[i].SchemaVersion(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if want == -1 {
					want = v
				}
				if v != want || v < 1 {
					t.Fatalf("handle %d sees schema version %d, another %d", i, v, want)
				}
			}
			// Every handle works on the one schema.
			a := mkAccount(t, dbs[0])
			for i := 1; i < n; i++ {
				if _, err := dbs[i].AccountByTwin(context.Background(), a.TwinID); err != nil {
					t.Fatalf("handle %d: %v", i, err)
				}
			}
		})
	}
}
