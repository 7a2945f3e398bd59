package store_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// forEachStore runs f as a parallel subtest on a fresh SQLite file and a
// fresh PostgreSQL schema; open gives more handles on the same database
// (as more processes).
func forEachStore(t *testing.T, f func(t *testing.T, db *store.DB, open func() *store.DB)) {
	t.Parallel()
	for _, op := range []opener{sqliteFileOpener(), postgresOpener()} {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			url := op.url(t)
			f(t, mustOpen(t, url), func() *store.DB { return mustOpen(t, url) })
		})
	}
}

// hour0 is a period start the billing tests count from.
var hour0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func twinAcct(id uint64) store.Account { return store.Account{Kind: api.AccountTwin, ID: id} }
func farmAcct(id uint64) store.Account { return store.Account{Kind: api.AccountFarm, ID: id} }

func mustBalance(t *testing.T, db *store.DB, a store.Account) int64 {
	t.Helper()
	b, err := db.Balance(context.Background(), a)
	if err != nil {
		t.Fatalf("Balance(%s): %v", a, err)
	}
	return b
}

func TestContractRules(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		farmer := mkAccount(t, db)
		farm := mkFarm(t, db, farmer.TwinID)
		node := mkNode(t, db, farm.FarmID)
		alice, bob := mkAccount(t, db), mkAccount(t, db)
		nc := func(tw uint64) api.Contract {
			return api.Contract{TwinID: tw, NodeID: node.NodeID, Type: api.ContractNode, DeploymentHash: "ab", Resources: api.Capacity{CRU: 1}}
		}
		rent := func(tw uint64) api.Contract {
			return api.Contract{TwinID: tw, NodeID: node.NodeID, Type: api.ContractRent}
		}

		c1, err := db.CreateContract(ctx, nc(alice.TwinID), hour0.Add(30*time.Minute))
		if err != nil {
			t.Fatalf("node contract: %v", err)
		}
		if c1.State != api.StateActive || !c1.BilledUntil.Equal(hour0) || c1.Resources.CRU != 1 {
			t.Fatalf("contract = %+v", c1)
		}
		if _, err := db.CreateContract(ctx, rent(bob.TwinID), hour0); !errors.Is(err, store.ErrNodeInUse) {
			t.Fatalf("rent over another twin's contract: %v, want ErrNodeInUse", err)
		}
		if _, err := db.CreateContract(ctx, rent(alice.TwinID), hour0); err != nil {
			t.Fatalf("rent by the twin with contracts: %v", err)
		}
		if _, err := db.CreateContract(ctx, rent(alice.TwinID), hour0); !errors.Is(err, store.ErrRentedAlready) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second rent: %v, want ErrRentedAlready", err)
		}
		if _, err := db.CreateContract(ctx, nc(bob.TwinID), hour0); !errors.Is(err, store.ErrNodeRented) || !errors.Is(err, store.ErrConflict) {
			t.Fatalf("node contract on another's rented node: %v", err)
		}
		if _, err := db.CreateContract(ctx, api.Contract{TwinID: bob.TwinID, NodeID: 999999, Type: api.ContractNode}, hour0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown node: %v", err)
		}

		// Dedicated farm: node contracts only by the renter.
		ded := true
		if _, err := db.UpdateFarm(ctx, farm.FarmID, api.UpdateFarmRequest{Dedicated: &ded}); err != nil {
			t.Fatal(err)
		}
		node2 := mkNode(t, db, farm.FarmID)
		nc2 := nc(bob.TwinID)
		nc2.NodeID = node2.NodeID
		if _, err := db.CreateContract(ctx, nc2, hour0); !errors.Is(err, store.ErrDedicated) {
			t.Fatalf("node contract on a dedicated farm without renting: %v", err)
		}
		r2 := rent(bob.TwinID)
		r2.NodeID = node2.NodeID
		if _, err := db.CreateContract(ctx, r2, hour0); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateContract(ctx, nc2, hour0); err != nil {
			t.Fatalf("renter's node contract on a dedicated farm: %v", err)
		}

		// Update and delete.
		h := "cd"
		up, err := db.UpdateContract(ctx, c1.ContractID, &h, &api.Capacity{CRU: 2, MRU: 1 << 30}, hour0)
		if err != nil || up.DeploymentHash != "cd" || up.Resources.CRU != 2 {
			t.Fatalf("update: %+v %v", up, err)
		}
		del, err := db.DeleteContract(ctx, c1.ContractID, api.ReasonCancelled, hour0.Add(time.Hour))
		if err != nil || del.State != api.StateDeleted || del.DeletedReason != api.ReasonCancelled || del.DeletedAt == nil {
			t.Fatalf("delete: %+v %v", del, err)
		}
		if _, err := db.UpdateContract(ctx, c1.ContractID, &h, nil, hour0); !errors.Is(err, store.ErrContractDeleted) {
			t.Fatalf("update a deleted contract: %v", err)
		}
		again, err := db.DeleteContract(ctx, c1.ContractID, api.ReasonCancelled, hour0.Add(2*time.Hour))
		if err != nil || !again.DeletedAt.Equal(*del.DeletedAt) {
			t.Fatalf("delete again: %+v %v", again, err)
		}

		// Lists: a node sees live contracts and those deleted lately.
		live, err := db.ListContracts(ctx, store.ContractFilter{NodeID: node.NodeID, DeletedSince: hour0.Add(2 * time.Hour)})
		if err != nil || len(live) != 1 || live[0].Type != api.ContractRent {
			t.Fatalf("node's contracts: %+v %v", live, err)
		}
		all, err := db.ListContracts(ctx, store.ContractFilter{TwinID: alice.TwinID})
		if err != nil || len(all) != 2 {
			t.Fatalf("alice's contracts: %+v %v", all, err)
		}
		page, err := db.ListContracts(ctx, store.ContractFilter{TwinID: alice.TwinID, AfterID: all[0].ContractID, Size: 1})
		if err != nil || len(page) != 1 || page[0].ContractID != all[1].ContractID {
			t.Fatalf("after_id page: %+v %v", page, err)
		}
	})
}

func TestUsageIdempotent(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		farm := mkFarm(t, db, mkAccount(t, db).TwinID)
		node, other := mkNode(t, db, farm.FarmID), mkNode(t, db, farm.FarmID)
		tw := mkAccount(t, db)
		c, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node.NodeID, Type: api.ContractNode, Resources: api.Capacity{CRU: 4}}, hour0)
		if err != nil {
			t.Fatal(err)
		}
		u := []api.Usage{{ContractID: c.ContractID, Capacity: api.Capacity{CRU: 2}}}
		for range 2 {
			if err := db.RecordUsage(ctx, node.NodeID, hour0, u, hour0.Add(time.Hour)); err != nil {
				t.Fatalf("RecordUsage: %v", err)
			}
		}
		u[0].CRU = 3
		if err := db.RecordUsage(ctx, node.NodeID, hour0, u, hour0.Add(time.Hour)); !errors.Is(err, store.ErrUsageChanged) {
			t.Fatalf("changed figures: %v", err)
		}
		if err := db.RecordUsage(ctx, other.NodeID, hour0, u, hour0.Add(time.Hour)); !errors.Is(err, store.ErrNotNodesContract) {
			t.Fatalf("another node's contract: %v", err)
		}
		u[0].ContractID = 987654
		if err := db.RecordUsage(ctx, node.NodeID, hour0, u, hour0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown contract: %v", err)
		}
		var ue *store.UsageError
		if err := db.RecordUsage(ctx, node.NodeID, hour0, u, hour0.Add(time.Hour)); !errors.As(err, &ue) || ue.ContractID != 987654 {
			t.Fatalf("the refused contract is not named: %v", err)
		}
		// Retention: reports of periods before the cutoff go.
		u[0] = api.Usage{ContractID: c.ContractID, Capacity: api.Capacity{CRU: 1}}
		if err := db.RecordUsage(ctx, node.NodeID, hour0.Add(time.Hour), u, hour0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := db.PruneUsage(ctx, hour0.Add(time.Hour)); err != nil || n != 1 {
			t.Fatalf("PruneUsage: %d %v, want the report of hour 0", n, err)
		}
		u[0].CRU = 3 // hour 0's report is gone: other figures are a new report
		if err := db.RecordUsage(ctx, node.NodeID, hour0, u, hour0.Add(3*time.Hour)); err != nil {
			t.Fatalf("after pruning: %v", err)
		}
	})
}

// TestBilling walks a contract through the billing life cycle on each
// store: prices with notice, usage capped at the contract, exactly once,
// grace, credit back to active, grace expiry; the ledger balances.
func TestBilling(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		farmer := mkAccount(t, db)
		farm := mkFarm(t, db, farmer.TwinID)
		node := mkNode(t, db, farm.FarmID)
		tw := mkAccount(t, db)
		old := api.Prices{CRU: 1000, MRU: 2000, SRU: 300, HRU: 10, IPv4: 5000}
		if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(-48*time.Hour), old); err != nil {
			t.Fatal(err)
		}
		res := api.Capacity{CRU: 2, MRU: 4 << 30, SRU: 50 << 30, IPv4: 1}
		c, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node.NodeID, Type: api.ContractNode, DeploymentHash: "ab", Resources: res}, hour0.Add(10*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		// A new price after the contract: it keeps the old one for the
		// notice period (24 h here).
		if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(20*time.Minute), api.Prices{CRU: 9999}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Credit(ctx, tw.TwinID, 20_000, "pay-1", hour0); err != nil {
			t.Fatal(err)
		}
		// Usage above the contract is capped: 3 CPUs reported, 2 billed.
		used := api.Capacity{CRU: 3, MRU: 3 << 30, SRU: 50 << 30, IPv4: 1}
		if err := db.RecordUsage(ctx, node.NodeID, hour0, []api.Usage{{ContractID: c.ContractID, Capacity: used}}, hour0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		want := old.Cost(api.Capacity{CRU: 2, MRU: 3 << 30, SRU: 50 << 30, IPv4: 1}) // 2000+5000+6000+15000
		if want != 28000 {
			t.Fatalf("arithmetic: %d", want)
		}
		p := store.BillingParams{Through: hour0, Now: hour0.Add(70 * time.Minute), Notice: 24 * time.Hour}
		r, err := db.Bill(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Bills != 1 || r.Amount != want || r.Grace != 1 {
			t.Fatalf("first run = %+v, want 1 bill of %d and the contract in grace", r, want)
		}
		if r, err := db.Bill(ctx, p); err != nil || r.Bills != 0 {
			t.Fatalf("second run = %+v %v, want nothing", r, err)
		}
		if b := mustBalance(t, db, twinAcct(tw.TwinID)); b != 20_000-want {
			t.Fatalf("twin balance %d", b)
		}
		if b := mustBalance(t, db, farmAcct(farm.FarmID)); b != want {
			t.Fatalf("farm balance %d", b)
		}
		if b := mustBalance(t, db, store.Account{Kind: api.AccountExternal}); b != -20_000 {
			t.Fatalf("external balance %d", b)
		}
		got, _ := db.Contract(ctx, c.ContractID)
		if got.State != api.StateGrace || got.GraceSince == nil || !got.BilledUntil.Equal(hour0.Add(time.Hour)) {
			t.Fatalf("after the bill: %+v", got)
		}
		// In grace: not billed.
		if r, err := db.Bill(ctx, store.BillingParams{Through: hour0.Add(3 * time.Hour), Now: hour0.Add(4 * time.Hour), Notice: 24 * time.Hour}); err != nil || r.Bills != 0 {
			t.Fatalf("grace run = %+v %v", r, err)
		}
		// A credit that covers the debt: active again, billed from the
		// credit's period.
		if _, created, err := db.Credit(ctx, tw.TwinID, 100_000, "pay-2", hour0.Add(5*time.Hour+5*time.Minute)); err != nil || !created {
			t.Fatal(err)
		}
		if _, created, err := db.Credit(ctx, tw.TwinID, 100_000, "pay-2", hour0.Add(6*time.Hour)); err != nil || created {
			t.Fatalf("repeated credit: created %v, %v", created, err)
		}
		if _, _, err := db.Credit(ctx, tw.TwinID, 5, "pay-2", hour0.Add(6*time.Hour)); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("reused reference: %v", err)
		}
		got, _ = db.Contract(ctx, c.ContractID)
		if got.State != api.StateActive || !got.BilledUntil.Equal(hour0.Add(5*time.Hour)) {
			t.Fatalf("after the credit: %+v", got)
		}
		// Hour 5 without a report: billed nothing; hour 6 at the notice's
		// end still the old price... hours 5..6 nothing used.
		r, err = db.Bill(ctx, store.BillingParams{Through: hour0.Add(6 * time.Hour), Now: hour0.Add(7 * time.Hour), Notice: 24 * time.Hour})
		if err != nil || r.Bills != 2 || r.Amount != 0 {
			t.Fatalf("unreported hours = %+v %v", r, err)
		}
		lines, err := db.Ledger(ctx, twinAcct(tw.TwinID), 0, 0)
		if err != nil || len(lines) != 3 {
			t.Fatalf("twin ledger: %+v %v", lines, err)
		}
		if l := lines[1]; l.Kind != api.KindBill || l.Amount != -want || l.ContractID != c.ContractID || !l.PeriodStart.Equal(hour0) {
			t.Fatalf("bill line: %+v", l)
		}
		// Grace expiry.
		if _, err := db.DeleteContract(ctx, c.ContractID, api.ReasonCancelled, hour0.Add(8*time.Hour)); err != nil {
			t.Fatal(err)
		}
		c2, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node.NodeID, Type: api.ContractRent}, hour0.Add(8*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		// The rent contract is at the new price (set before it was made);
		// the cancelled contract pays its last hours, 7 and the one it
		// ended in (unreported: nothing used).
		r, err = db.Bill(ctx, store.BillingParams{Through: hour0.Add(8 * time.Hour), Now: hour0.Add(9 * time.Hour), Notice: 24 * time.Hour})
		if want := int64(9999 * node.Resources.CRU); err != nil || r.Bills != 3 || r.Amount != want || r.Grace != 1 {
			t.Fatalf("rent hour = %+v %v, want %d and the balance run out", r, err, want)
		}
		if n, err := db.ExpireGrace(ctx, hour0.Add(8*time.Hour), hour0.Add(22*time.Hour)); err != nil || n != 0 {
			t.Fatalf("early expiry: %d %v", n, err)
		}
		if n, err := db.ExpireGrace(ctx, hour0.Add(40*time.Hour), hour0.Add(40*time.Hour)); err != nil || n != 1 {
			t.Fatalf("expiry: %d %v", n, err)
		}
		got, _ = db.Contract(ctx, c2.ContractID)
		if got.State != api.StateDeleted || got.DeletedReason != api.ReasonGraceExpired {
			t.Fatalf("after expiry: %+v", got)
		}
		// Double entry: all accounts sum to zero.
		sum := mustBalance(t, db, twinAcct(tw.TwinID)) + mustBalance(t, db, farmAcct(farm.FarmID)) + mustBalance(t, db, store.Account{Kind: api.AccountExternal})
		if sum != 0 {
			t.Fatalf("balances sum to %d", sum)
		}
	})
}

// TestBillingConcurrent bills the same contracts from several handles
// (processes) at once: each period is billed once.
func TestBillingConcurrent(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, open func() *store.DB) {
		ctx := context.Background()
		farm := mkFarm(t, db, mkAccount(t, db).TwinID)
		node := mkNode(t, db, farm.FarmID)
		if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(-time.Hour), api.Prices{CRU: 7}); err != nil {
			t.Fatal(err)
		}
		tw := mkAccount(t, db)
		const n = 60
		for range n {
			if _, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node.NodeID, Type: api.ContractNode, Resources: api.Capacity{CRU: 1}}, hour0); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := db.Credit(ctx, tw.TwinID, 1_000_000, "seed", hour0); err != nil {
			t.Fatal(err)
		}
		var ids []api.Usage
		cs, _ := db.ListContracts(ctx, store.ContractFilter{TwinID: tw.TwinID, Size: n})
		for _, c := range cs {
			ids = append(ids, api.Usage{ContractID: c.ContractID, Capacity: api.Capacity{CRU: 1}})
		}
		for h := range 3 {
			if err := db.RecordUsage(ctx, node.NodeID, hour0.Add(time.Duration(h)*time.Hour), ids, hour0.Add(4*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			bills int64
		)
		for range 4 {
			h := open()
			wg.Go(func() {
				r, err := h.Bill(ctx, store.BillingParams{Through: hour0.Add(2 * time.Hour), Now: hour0.Add(4 * time.Hour), Batch: 7})
				if err != nil {
					t.Errorf("Bill: %v", err)
				}
				mu.Lock()
				bills += r.Bills
				mu.Unlock()
			})
		}
		wg.Wait()
		if bills != 3*n {
			t.Fatalf("%d bills, want %d", bills, 3*n)
		}
		if b := mustBalance(t, db, farmAcct(farm.FarmID)); b != 3*n*7 {
			t.Fatalf("farm balance %d, want %d", b, 3*n*7)
		}
	})
}

// TestBillingInterrupted: another process holds some contracts in a batch
// and dies (its transaction rolls back) while this one bills: this run
// bills the others, the next run the rest, each period once.
// PostgreSQL only: SQLite has one writer, so batches never overlap.
func TestBillingInterrupted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := mustOpen(t, postgresOpener().url(t))
	farm := mkFarm(t, db, mkAccount(t, db).TwinID)
	node := mkNode(t, db, farm.FarmID)
	if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(-time.Hour), api.Prices{CRU: 11}); err != nil {
		t.Fatal(err)
	}
	tw := mkAccount(t, db)
	if _, _, err := db.Credit(ctx, tw.TwinID, 1000, "seed", hour0); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for range 20 {
		c, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node.NodeID, Type: api.ContractNode, Resources: api.Capacity{CRU: 1}}, hour0)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, int64(c.ContractID))
		if err := db.RecordUsage(ctx, node.NodeID, hour0, []api.Usage{{ContractID: c.ContractID, Capacity: api.Capacity{CRU: 1}}}, hour0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	other, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.ExecContext(ctx, `SELECT contract_id FROM contracts WHERE contract_id = ANY($1) FOR UPDATE`, ids[5:12]); err != nil {
		t.Fatal(err)
	}
	p := store.BillingParams{Through: hour0, Now: hour0.Add(70 * time.Minute), Batch: 4}
	if r, err := db.Bill(ctx, p); err != nil || r.Bills != 13 {
		t.Fatalf("run while 7 contracts are held: %+v %v", r, err)
	}
	_ = other.Rollback() // the other process died
	if r, err := db.Bill(ctx, p); err != nil || r.Bills != 7 {
		t.Fatalf("next run: %+v %v", r, err)
	}
	if r, err := db.Bill(ctx, p); err != nil || r.Bills != 0 {
		t.Fatalf("third run: %+v %v", r, err)
	}
	if b := mustBalance(t, db, farmAcct(farm.FarmID)); b != 20*11 {
		t.Fatalf("farm balance %d, want %d", b, 20*11)
	}
}

// TestBillingPrices: a contract keeps its price for the notice period,
// then pays the farm's new one; a rent contract pays the node's whole
// capacity; the renter's node contract on that node pays only its public
// addresses.
func TestBillingPrices(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		farm := mkFarm(t, db, mkAccount(t, db).TwinID)
		node, node2 := mkNode(t, db, farm.FarmID), mkNode(t, db, farm.FarmID)
		tw := mkAccount(t, db)
		if _, _, err := db.Credit(ctx, tw.TwinID, 1<<50, "seed", hour0); err != nil {
			t.Fatal(err)
		}
		p1, p2 := api.Prices{CRU: 1000, IPv4: 500}, api.Prices{CRU: 3000, MRU: 40, SRU: 5, HRU: 1, IPv4: 700}
		if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(-48*time.Hour), p1); err != nil {
			t.Fatal(err)
		}
		res := api.Capacity{CRU: 2, IPv4: 1}
		c1, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node.NodeID, Type: api.ContractNode, Resources: res}, hour0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(20*time.Minute), p2); err != nil {
			t.Fatal(err)
		}
		use := func(c api.Contract, h time.Duration) {
			t.Helper()
			if err := db.RecordUsage(ctx, c.NodeID, hour0.Add(h), []api.Usage{{ContractID: c.ContractID, Capacity: res}}, hour0.Add(h+time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		use(c1, 0)
		use(c1, 25*time.Hour)
		bill := func(h time.Duration) store.BillingResult {
			t.Helper()
			r, err := db.Bill(ctx, store.BillingParams{Through: hour0.Add(h), Now: hour0.Add(h + 70*time.Minute), Notice: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		if r := bill(0); r.Amount != 2*1000+500 {
			t.Fatalf("hour 0 at the old price: %+v", r)
		}
		// Hours 1..24 unreported; hour 25 starts more than the notice
		// after the change: the new price.
		if r := bill(25 * time.Hour); r.Bills != 25 || r.Amount != 2*3000+700 {
			t.Fatalf("hours 1..25: %+v, want 25 periods and %d", r, 2*3000+700)
		}
		if _, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node2.NodeID, Type: api.ContractRent}, hour0.Add(26*time.Hour)); err != nil {
			t.Fatal(err)
		}
		c2, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node2.NodeID, Type: api.ContractNode, Resources: res}, hour0.Add(26*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		use(c2, 26*time.Hour)
		capa := node2.Resources
		want := p2.Cost(api.Capacity{CRU: capa.CRU, MRU: capa.MRU, SRU: capa.SRU, HRU: capa.HRU}) + 700
		if r := bill(26 * time.Hour); r.Bills != 3 || r.Amount != want {
			t.Fatalf("hour 26: %+v, want 3 periods and %d (the rent %d, the renter's node contract its address)", r, want, want-700)
		}
	})
}

// TestBillingWaitsForUsage: a node contract's hour waits for its node's
// usage report (BillingParams.UsageWait): unreported it is not billed; the
// late report has it billed at the next run, once; an hour still
// unreported after the wait, or one the node skipped (it reported a later
// one), is billed as nothing used. A rent contract does not wait.
func TestBillingWaitsForUsage(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		farm := mkFarm(t, db, mkAccount(t, db).TwinID)
		node, rented := mkNode(t, db, farm.FarmID), mkNode(t, db, farm.FarmID)
		tw := mkAccount(t, db)
		prices := api.Prices{CRU: 1000, MRU: 2000, IPv4: 5000}
		if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(-48*time.Hour), prices); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Credit(ctx, tw.TwinID, 100_000_000, "pay-1", hour0); err != nil {
			t.Fatal(err)
		}
		c, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: node.NodeID, Type: api.ContractNode, Resources: api.Capacity{CRU: 2, IPv4: 1}}, hour0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateContract(ctx, api.Contract{TwinID: tw.TwinID, NodeID: rented.NodeID, Type: api.ContractRent}, hour0); err != nil {
			t.Fatal(err)
		}
		rc := rented.Resources
		rent := prices.Cost(api.Capacity{CRU: rc.CRU, MRU: rc.MRU, SRU: rc.SRU, HRU: rc.HRU})
		bill := func(through time.Time) store.BillingResult {
			t.Helper()
			r, err := db.Bill(ctx, store.BillingParams{Through: through, Now: through.Add(70 * time.Minute), Notice: 24 * time.Hour, UsageWait: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		billedUntil := func() time.Time {
			t.Helper()
			got, err := db.Contract(ctx, c.ContractID)
			if err != nil {
				t.Fatal(err)
			}
			return got.BilledUntil
		}

		// Hour 0 due, the node has not reported it: the rent contract
		// alone is billed.
		if r := bill(hour0); r.Bills != 1 || r.Amount != rent {
			t.Fatalf("hour 0 unreported: %+v, want the rent alone", r)
		}
		if !billedUntil().Equal(hour0) {
			t.Fatalf("an unreported hour was billed: billed until %s", billedUntil())
		}
		// The node reports hour 0 two hours late: billed at the next run
		// (hour 1, unreported too, waits).
		used := api.Capacity{CRU: 2, IPv4: 1}
		if err := db.RecordUsage(ctx, node.NodeID, hour0, []api.Usage{{ContractID: c.ContractID, Capacity: used}}, hour0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		want := prices.Cost(used)
		if r := bill(hour0.Add(time.Hour)); r.Bills != 2 || r.Amount != want+rent {
			t.Fatalf("after the late report: %+v, want hour 0 billed %d and the rent's hour 1", r, want)
		}
		if !billedUntil().Equal(hour0.Add(time.Hour)) {
			t.Fatalf("billed until %s, want hour 1", billedUntil())
		}
		// Hour 1 never reported: billed as nothing used once 24 h passed
		// (with the rent's hours up to then); hour 2 still waits.
		r := bill(hour0.Add(25 * time.Hour))
		if r.Bills != 1+24 || r.Amount != 24*rent {
			t.Fatalf("after the wait: %+v, want hour 1 billed nothing and 24 rent hours", r)
		}
		if !billedUntil().Equal(hour0.Add(2 * time.Hour)) {
			t.Fatalf("billed until %s, want hour 2", billedUntil())
		}
		// Hour 2 never reported, hour 3 reported: the node skipped hour 2
		// (nothing of the contract ran then), so it is due at once, as
		// nothing used, and hour 3 after it.
		if err := db.RecordUsage(ctx, node.NodeID, hour0.Add(3*time.Hour), []api.Usage{{ContractID: c.ContractID, Capacity: used}}, hour0.Add(26*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if r := bill(hour0.Add(25 * time.Hour)); r.Bills != 2 || r.Amount != want {
			t.Fatalf("after a later hour's report: %+v, want hour 2 billed nothing and hour 3 %d", r, want)
		}
		if !billedUntil().Equal(hour0.Add(4 * time.Hour)) {
			t.Fatalf("billed until %s, want hour 4", billedUntil())
		}
		lines, err := db.Ledger(ctx, twinAcct(tw.TwinID), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var periods []time.Time
		for _, l := range lines {
			if l.ContractID == c.ContractID {
				periods = append(periods, *l.PeriodStart)
				if l.Kind != api.KindBill || l.Amount != -want {
					t.Errorf("node contract line: %+v", l)
				}
			}
		}
		if len(periods) != 2 || !periods[0].Equal(hour0) || !periods[1].Equal(hour0.Add(3*time.Hour)) {
			t.Fatalf("the node contract's bills are for %v, want hours 0 and 3, once each", periods)
		}
	})
}

// TestBillingAfterCancel: a contract cancelled before its last hours were
// billed pays for them, up to and with the hour it ended in, once; one
// cancelled in grace pays nothing more.
func TestBillingAfterCancel(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		farm := mkFarm(t, db, mkAccount(t, db).TwinID)
		node := mkNode(t, db, farm.FarmID)
		tw, poor := mkAccount(t, db), mkAccount(t, db)
		prices := api.Prices{CRU: 1000}
		if _, err := db.SetFarmPricing(ctx, farm.FarmID, hour0.Add(-48*time.Hour), prices); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Credit(ctx, tw.TwinID, 1_000_000, "pay-1", hour0); err != nil {
			t.Fatal(err)
		}
		mk := func(twin uint64) api.Contract {
			t.Helper()
			c, err := db.CreateContract(ctx, api.Contract{TwinID: twin, NodeID: node.NodeID, Type: api.ContractNode, Resources: api.Capacity{CRU: 2}}, hour0.Add(5*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			for h := range 2 {
				if err := db.RecordUsage(ctx, node.NodeID, hour0.Add(time.Duration(h)*time.Hour), []api.Usage{{ContractID: c.ContractID, Capacity: api.Capacity{CRU: 2}}}, hour0.Add(time.Duration(h+1)*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			return c
		}
		bill := func(through time.Time) store.BillingResult {
			t.Helper()
			r, err := db.Bill(ctx, store.BillingParams{Through: through, Now: through.Add(70 * time.Minute), UsageWait: 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		hourly := prices.Cost(api.Capacity{CRU: 2})

		// Cancelled at 01:05, before hour 0 was billed (at 01:10).
		c := mk(tw.TwinID)
		if _, err := db.DeleteContract(ctx, c.ContractID, api.ReasonCancelled, hour0.Add(65*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if r := bill(hour0); r.Bills != 1 || r.Amount != hourly {
			t.Fatalf("hour 0 after the cancel: %+v, want %d", r, hourly)
		}
		if r := bill(hour0.Add(time.Hour)); r.Bills != 1 || r.Amount != hourly {
			t.Fatalf("the hour it ended in: %+v, want %d", r, hourly)
		}
		if r := bill(hour0.Add(30 * time.Hour)); r.Bills != 0 {
			t.Fatalf("after its end: %+v, want nothing", r)
		}
		if b := mustBalance(t, db, twinAcct(tw.TwinID)); b != 1_000_000-2*hourly {
			t.Fatalf("balance %d, want two hours billed", b)
		}

		// A contract in grace (no credit: its first bill runs the balance
		// out), cancelled: nothing more.
		g := mk(poor.TwinID)
		if r := bill(hour0.Add(31 * time.Hour)); r.Bills != 1 || r.Grace != 1 {
			t.Fatalf("the poor twin's hours: %+v, want hour 0 billed, then grace", r)
		}
		if err := db.RecordUsage(ctx, node.NodeID, hour0.Add(2*time.Hour), []api.Usage{{ContractID: g.ContractID, Capacity: api.Capacity{CRU: 2}}}, hour0.Add(3*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.DeleteContract(ctx, g.ContractID, api.ReasonCancelled, hour0.Add(32*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if r := bill(hour0.Add(40 * time.Hour)); r.Bills != 0 {
			t.Fatalf("a contract cancelled in grace billed again: %+v", r)
		}
	})
}

// TestCreditBeyondInt64 credits a balance up to the largest int64 and then
// past it: the credit that would overflow (the twin's balance, or the
// external account's) is refused as ErrInvalid and writes nothing, where
// SQLite alone would have stored the sum as a float no read can scan.
func TestCreditBeyondInt64(t *testing.T) {
	forEachStore(t, func(t *testing.T, db *store.DB, _ func() *store.DB) {
		ctx := context.Background()
		alice, bob := mkAccount(t, db), mkAccount(t, db)
		const max = math.MaxInt64
		if _, _, err := db.Credit(ctx, alice.TwinID, max, "all", hour0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Credit(ctx, alice.TwinID, 1, "one more", hour0); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("credit past the twin's int64 balance: %v, want ErrInvalid", err)
		}
		if _, _, err := db.Credit(ctx, bob.TwinID, max, "external too", hour0); !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("credit past the external account's int64 balance: %v, want ErrInvalid", err)
		}
		external := store.Account{Kind: api.AccountExternal}
		if a, b, e := mustBalance(t, db, twinAcct(alice.TwinID)), mustBalance(t, db, twinAcct(bob.TwinID)), mustBalance(t, db, external); a != max || b != 0 || e != -max {
			t.Fatalf("balances after the refused credits: alice %d, bob %d, external %d", a, b, e)
		}
		lines, err := db.Ledger(ctx, external, 0, 0)
		if err != nil || len(lines) != 1 {
			t.Fatalf("external ledger after the refused credits: %d lines, %v", len(lines), err)
		}
	})
}
