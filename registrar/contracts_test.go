package registrar

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// billingSetup is a registrar with an admin, a farm with prices and one
// node, and a user twin, the fake clock one minute into an hour.
type billingSetup struct {
	h                  *harness
	admin, farmer, nod twin
	user               twin
	farm, node         uint64
	hour               time.Time // the hour the setup happened in
}

// Prices and usage of the billing tests: one hour of usage costs
// 2×100000 + 1×20000 + floor((4 GiB×50000 + 50 GiB×1000) / 1 GiB)
// = 470000 µTFT.
var (
	testPrices = map[string]any{"cru": 100_000, "mru": 50_000, "sru": 1_000, "hru": 100, "ipv4": 20_000}
	testUsage  = api.Capacity{CRU: 2, MRU: 4 << 30, SRU: 50 << 30, IPv4: 1}
)

const testHourCost = 470_000

func newBillingSetup(t *testing.T, backend string) *billingSetup {
	a := newHarness(t, backend, nil)
	admin := a.newTwin()
	h := newHarnessOn(t, a.db, a.clock, func(c *Config) { c.AdminTwins = []uint64{admin.id} })
	now := h.clock.Now()
	h.clock.Advance(api.Period(now).Add(time.Hour + time.Minute).Sub(now))
	s := &billingSetup{h: h, admin: admin, farmer: h.newTwin(), nod: h.newTwin(), user: h.newTwin(), hour: api.Period(h.clock.Now())}
	s.farm = h.newFarm(s.farmer)
	s.node = h.newNode(s.nod, s.farm)
	h.do("PUT", fmt.Sprintf("/api/v1/farms/%d/pricing", s.farm), testPrices, h.v2(s.farmer)).want(t, http.StatusOK)
	return s
}

// contract makes a node contract of tw for testUsage on the setup's node.
func (s *billingSetup) contract(t *testing.T, tw twin) api.Contract {
	r := s.h.do("POST", "/api/v1/contracts", map[string]any{"type": "node", "node_id": s.node, "deployment_hash": "a1b2",
		"resources": map[string]any{"cru": 2, "mru": 4 << 30, "sru": 100 << 30, "ipv4": 1}}, s.h.v2(tw)).want(t, http.StatusCreated)
	var c api.Contract
	decodeInto(t, r, &c)
	return c
}

// usage posts the node's usage report for period.
func (s *billingSetup) usage(period time.Time, us ...api.Usage) resp {
	return s.h.do("POST", fmt.Sprintf("/api/v1/nodes/%d/usage", s.node), api.UsageReport{PeriodStart: period, Contracts: us}, s.h.v2(s.nod))
}

func (s *billingSetup) balance(t *testing.T, tw twin) int64 {
	var b api.Balance
	decodeInto(t, s.h.do("GET", fmt.Sprintf("/api/v1/accounts/%d/balance", tw.id), nil, s.h.v2(tw)).want(t, http.StatusOK), &b)
	return b.Balance
}

func decodeInto(t testing.TB, r resp, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
}

// TestContractsEndToEnd is the registrar's part of issue 16's "done
// when": a farmer sets prices and an SLA, a user gets a balance and a
// contract, the node reports usage, hours pass on the fake clock and the
// ledger and balance match the arithmetic to the unit; the balance runs
// out (grace), a credit puts the contract back to active, and grace
// expiry deletes it.
func TestContractsEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := newBillingSetup(t, backend)
		h, H := s.h, s.hour
		h.do("PUT", fmt.Sprintf("/api/v1/farms/%d/sla", s.farm), api.SLA{UptimePercent: 99, DiscountPercent: 50}, h.v2(s.farmer)).want(t, http.StatusOK)
		h.do("PUT", fmt.Sprintf("/api/v1/farms/%d/sla", s.farm), api.SLA{UptimePercent: 99, DiscountPercent: 50}, h.v2(s.user)).want(t, http.StatusUnauthorized)
		// The node is up all of hour H (booted before it, reports until
		// 40 min before its end; a report counts for one interval).
		h.uptime(s.nod, s.node, 3600).want(t, http.StatusCreated)

		h.do("POST", fmt.Sprintf("/api/v1/accounts/%d/credit", s.user.id), api.CreditRequest{Amount: 1_000_000, Reference: "pay-1"}, h.v2(s.user)).want(t, http.StatusUnauthorized)
		h.do("POST", fmt.Sprintf("/api/v1/accounts/%d/credit", s.user.id), api.CreditRequest{Amount: 1_000_000, Reference: "pay-1"}, h.v2(s.admin)).want(t, http.StatusCreated)
		h.do("POST", fmt.Sprintf("/api/v1/accounts/%d/credit", s.user.id), api.CreditRequest{Amount: 1_000_000, Reference: "pay-1"}, h.v2(s.admin)).want(t, http.StatusOK)
		h.do("POST", fmt.Sprintf("/api/v1/accounts/%d/credit", s.user.id), api.CreditRequest{Amount: 7, Reference: "pay-1"}, h.v2(s.admin)).want(t, http.StatusConflict)
		c := s.contract(t, s.user)
		if c.State != api.StateActive || !c.BilledUntil.Equal(H) {
			t.Fatalf("new contract %+v", c)
		}

		h.clock.Advance(29 * time.Minute)
		h.uptime(s.nod, s.node, 3600+29*60).want(t, http.StatusCreated)
		// A price change: the contract keeps its price for the notice
		// period (7 days).
		r := h.do("PUT", fmt.Sprintf("/api/v1/farms/%d/pricing", s.farm), map[string]any{"cru": 999_999}, h.v2(s.farmer)).want(t, http.StatusOK)
		var fp api.FarmPricing
		decodeInto(t, r, &fp)
		if fp.Current.CRU != 999_999 || fp.Effective.CRU != 0 || len(fp.Scheduled) != 2 || len(fp.History) != 2 {
			t.Fatalf("pricing %+v", fp)
		}

		// Four hours later the node reports hours H..H+3.
		h.clock.Advance(4*time.Hour + 10*time.Minute - 29*time.Minute)
		u := api.Usage{ContractID: c.ContractID, Capacity: testUsage}
		for i := range 4 {
			s.usage(H.Add(time.Duration(i)*time.Hour), u).want(t, http.StatusOK)
		}
		s.usage(H, u).want(t, http.StatusOK) // a repeat
		changed := u
		changed.CRU = 1
		if msg := s.usage(H, changed).want(t, http.StatusConflict).errMsg(t); msg != fmt.Sprintf("contract %d: usage of this period already reported with other figures; nothing of this report was kept", c.ContractID) {
			t.Fatalf("409 message %q", msg)
		}
		s.usage(H.Add(4*time.Hour), u).want(t, http.StatusBadRequest) // not finished
		h.do("POST", fmt.Sprintf("/api/v1/nodes/%d/usage", s.node), api.UsageReport{PeriodStart: H, Contracts: []api.Usage{u}}, h.v2(s.user)).want(t, http.StatusUnauthorized)

		// Billing: hour H in full; H+1..H+3 the node was offline (less
		// than 99 % of the hour online): half off.
		res, err := h.srv.BillDue(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := int64(testHourCost + 3*testHourCost/2)
		if res.Bills != 4 || res.Amount != want || res.Discounted != 3 || res.Grace != 1 {
			t.Fatalf("billing %+v, want 4 periods, %d µTFT, 3 discounted, 1 contract to grace", res, want)
		}
		if res, _ := h.srv.BillDue(context.Background()); res.Bills != 0 {
			t.Fatalf("billed again: %+v", res)
		}
		if b := s.balance(t, s.user); b != 1_000_000-want {
			t.Fatalf("balance %d, want %d", b, 1_000_000-want)
		}
		var lines []api.LedgerLine
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/accounts/%d/ledger", s.user.id), nil, h.v2(s.user)).want(t, http.StatusOK), &lines)
		if len(lines) != 8 {
			t.Fatalf("ledger %+v, want a credit, 4 bills and 3 discounts", lines)
		}
		sum := int64(0)
		for _, l := range lines {
			sum += l.Amount
		}
		if sum != 1_000_000-want || lines[1].Kind != api.KindBill || lines[1].Amount != -testHourCost || !lines[1].PeriodStart.Equal(H) {
			t.Fatalf("ledger %+v", lines)
		}
		h.do("GET", fmt.Sprintf("/api/v1/accounts/%d/ledger", s.user.id), nil, h.v2(s.farmer)).want(t, http.StatusUnauthorized)
		var farmLines []api.LedgerLine
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/farms/%d/ledger", s.farm), nil, h.v2(s.farmer)).want(t, http.StatusOK), &farmLines)
		if len(farmLines) != 7 {
			t.Fatalf("farm ledger %+v", farmLines)
		}

		// In grace; the node sees it.
		var cs []api.Contract
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/contracts", s.node), nil, nil).want(t, http.StatusOK), &cs)
		if len(cs) != 1 || cs[0].State != api.StateGrace {
			t.Fatalf("node's contracts %+v", cs)
		}
		// A credit that covers the debt: active again.
		h.do("POST", fmt.Sprintf("/api/v1/accounts/%d/credit", s.user.id), api.CreditRequest{Amount: 200_000, Reference: "pay-2"}, h.v2(s.admin)).want(t, http.StatusCreated)
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/contracts/%d", c.ContractID), nil, nil).want(t, http.StatusOK), &c)
		if c.State != api.StateActive || !c.BilledUntil.Equal(H.Add(4*time.Hour)) {
			t.Fatalf("after the credit: %+v", c)
		}
		// The next hour runs it out again; after the grace period the
		// contract is deleted.
		h.clock.Advance(time.Hour)
		s.usage(H.Add(4*time.Hour), u).want(t, http.StatusOK)
		if res, err := h.srv.BillDue(context.Background()); err != nil || res.Bills != 1 || res.Amount != testHourCost/2 || res.Grace != 1 {
			t.Fatalf("billing %+v %v", res, err)
		}
		h.clock.Advance(h.cfg.GracePeriod)
		if _, err := h.srv.BillDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/contracts/%d", c.ContractID), nil, nil).want(t, http.StatusOK), &c)
		if c.State != api.StateDeleted || c.DeletedReason != api.ReasonGraceExpired {
			t.Fatalf("after the grace period: %+v", c)
		}
		// Usage reports are pruned after --usage-retention (7 days): hour
		// H's report is gone, so other figures for it are a new report.
		h.srv.prune(context.Background())
		s.usage(H, changed).want(t, http.StatusOK)
		// Double entry: twin + farm + external = 0, to the unit.
		farmBal, _ := h.db.Balance(context.Background(), store.Account{Kind: api.AccountFarm, ID: s.farm})
		ext, _ := h.db.Balance(context.Background(), store.Account{Kind: api.AccountExternal})
		if tb := s.balance(t, s.user); tb+farmBal+ext != 0 || ext != -1_200_000 || farmBal != want+testHourCost/2 {
			t.Fatalf("balances twin %d farm %d external %d", tb, farmBal, ext)
		}
	})
}

// TestContractRoutes covers the contract routes' checks: who may do what,
// and bad input.
func TestContractRoutes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := newBillingSetup(t, backend)
		h := s.h
		c := s.contract(t, s.user)
		other := h.newTwin()
		for _, tc := range []struct {
			body   any
			status int
		}{
			{map[string]any{"type": "node", "node_id": s.node, "resources": map[string]any{"cru": 1}}, http.StatusBadRequest},
			{map[string]any{"type": "node", "node_id": s.node, "deployment_hash": "zz", "resources": map[string]any{"cru": 1}}, http.StatusBadRequest},
			{map[string]any{"type": "node", "node_id": s.node, "deployment_hash": "aa"}, http.StatusBadRequest},
			{map[string]any{"type": "node", "node_id": s.node, "deployment_hash": "aa", "resources": map[string]any{"cru": 999}}, http.StatusBadRequest},
			{map[string]any{"type": "rent", "node_id": s.node, "deployment_hash": "aa"}, http.StatusBadRequest},
			{map[string]any{"type": "lease", "node_id": s.node}, http.StatusBadRequest},
			{map[string]any{"type": "rent", "node_id": 99999}, http.StatusNotFound},
			{map[string]any{"type": "rent", "node_id": s.node, "extra": 1}, http.StatusBadRequest},
			{map[string]any{"type": "rent", "node_id": s.node}, http.StatusConflict}, // another twin has a contract there
		} {
			h.do("POST", "/api/v1/contracts", tc.body, h.v2(other)).want(t, tc.status)
		}
		// A credit past what a balance holds is refused, and the balance
		// stays readable.
		credit := fmt.Sprintf("/api/v1/accounts/%d/credit", other.id)
		h.do("POST", credit, api.CreditRequest{Amount: math.MaxInt64, Reference: "all"}, h.v2(s.admin)).want(t, http.StatusCreated)
		if msg := h.do("POST", credit, api.CreditRequest{Amount: 1, Reference: "one more"}, h.v2(s.admin)).want(t, http.StatusBadRequest).errMsg(t); !strings.HasPrefix(msg, "invalid amount: 1 µTFT would take a balance beyond") {
			t.Fatalf("credit past the largest balance: %q", msg)
		}
		var bal api.Balance
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/accounts/%d/balance", other.id), nil, h.v2(other)).want(t, http.StatusOK), &bal)
		if bal.Balance != math.MaxInt64 {
			t.Fatalf("balance after the refused credit: %+v", bal)
		}
		// Hex, but not whole bytes: the message says so, not "not hexadecimal".
		if msg := h.do("POST", "/api/v1/contracts", map[string]any{"type": "node", "node_id": s.node, "deployment_hash": "abc", "resources": map[string]any{"cru": 1}}, h.v2(other)).want(t, http.StatusBadRequest).errMsg(t); msg != `invalid deployment_hash: "abc" has an odd number of hex digits` {
			t.Fatalf("odd-length hash: %q", msg)
		}
		h.do("POST", "/api/v1/contracts", map[string]any{"type": "rent", "node_id": s.node}, nil).want(t, http.StatusUnauthorized)
		path := fmt.Sprintf("/api/v1/contracts/%d", c.ContractID)
		h.do("PATCH", path, map[string]any{"deployment_hash": "ff"}, h.v2(other)).want(t, http.StatusUnauthorized)
		h.do("DELETE", path, nil, h.v2(other)).want(t, http.StatusUnauthorized)
		var up api.Contract
		decodeInto(t, h.do("PATCH", path, map[string]any{"deployment_hash": "ff", "resources": map[string]any{"cru": 4}}, h.v2(s.user)).want(t, http.StatusOK), &up)
		if up.DeploymentHash != "ff" || up.Resources.CRU != 4 || up.Resources.MRU != 0 {
			t.Fatalf("patched %+v", up)
		}
		var list []api.Contract
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/contracts?twin_id=%d&state=active", s.user.id), nil, nil).want(t, http.StatusOK), &list)
		if len(list) != 1 || list[0].ContractID != c.ContractID {
			t.Fatalf("list %+v", list)
		}
		h.do("GET", "/api/v1/contracts?state=gone", nil, nil).want(t, http.StatusBadRequest)
		h.do("GET", "/api/v1/contracts?size=5000", nil, nil).want(t, http.StatusBadRequest)
		h.do("DELETE", path, nil, h.v2(s.user)).want(t, http.StatusOK)
		h.do("DELETE", path, nil, h.v2(s.user)).want(t, http.StatusOK)
		h.do("PATCH", path, map[string]any{"deployment_hash": "ee"}, h.v2(s.user)).want(t, http.StatusConflict)
		// The node still sees it for a day, then no more.
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/contracts", s.node), nil, nil).want(t, http.StatusOK), &list)
		if len(list) != 1 || list[0].State != api.StateDeleted || list[0].DeletedReason != api.ReasonCancelled {
			t.Fatalf("node's contracts %+v", list)
		}
		h.clock.Advance(25 * time.Hour)
		decodeInto(t, h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/contracts", s.node), nil, nil).want(t, http.StatusOK), &list)
		if len(list) != 0 {
			t.Fatalf("node's contracts a day later %+v", list)
		}
		// Now the node is free: the other twin rents it.
		h.do("POST", "/api/v1/contracts", map[string]any{"type": "rent", "node_id": s.node}, h.v2(other)).want(t, http.StatusCreated)
		if msg := h.do("POST", "/api/v1/contracts", map[string]any{"type": "node", "node_id": s.node, "deployment_hash": "aa", "resources": map[string]any{"cru": 1}}, h.v2(s.user)).want(t, http.StatusConflict).errMsg(t); msg != "the node is rented" {
			t.Fatalf("409 message %q", msg)
		}
		if msg := h.do("POST", "/api/v1/contracts", map[string]any{"type": "rent", "node_id": s.node}, h.v2(other)).want(t, http.StatusConflict).errMsg(t); msg != "the twin rents the node already: one rent contract covers it" {
			t.Fatalf("a second rent by the renter: 409 message %q", msg)
		}
		// Prices: owner only, bounded.
		h.do("PUT", fmt.Sprintf("/api/v1/farms/%d/pricing", s.farm), testPrices, h.v2(other)).want(t, http.StatusUnauthorized)
		h.do("PUT", fmt.Sprintf("/api/v1/farms/%d/pricing", s.farm), map[string]any{"cru": -1}, h.v2(s.farmer)).want(t, http.StatusBadRequest)
		h.do("GET", "/api/v1/farms/99999/pricing", nil, nil).want(t, http.StatusNotFound)
		h.do("GET", fmt.Sprintf("/api/v1/accounts/%d/balance", s.user.id), nil, h.v2(other)).want(t, http.StatusUnauthorized)
		h.do("GET", fmt.Sprintf("/api/v1/accounts/%d/balance", s.user.id), nil, h.v2(s.admin)).want(t, http.StatusOK)
	})
}

// TestBillingSeveralProcesses runs the billing of two registrars on one
// database at once: each contract period is billed once.
func TestBillingSeveralProcesses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := newBillingSetup(t, backend)
		b := newHarnessOn(t, s.h.db, s.h.clock, func(c *Config) { c.AdminTwins = []uint64{s.admin.id} })
		const n = 30
		us := make([]api.Usage, n)
		for i := range us {
			us[i] = api.Usage{ContractID: s.contract(t, s.user).ContractID, Capacity: testUsage}
		}
		s.h.do("POST", fmt.Sprintf("/api/v1/accounts/%d/credit", s.user.id), api.CreditRequest{Amount: 1 << 40, Reference: "seed"}, s.h.v2(s.admin)).want(t, http.StatusCreated)
		s.h.clock.Advance(3*time.Hour + 10*time.Minute)
		for i := range 3 {
			s.usage(s.hour.Add(time.Duration(i)*time.Hour), us...).want(t, http.StatusOK)
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			bills int64
		)
		for _, h := range []*harness{s.h, b, s.h, b} {
			wg.Go(func() {
				h.srv.bill.mu.Lock()
				h.srv.bill.through = time.Time{} // each call bills as a fresh process would
				h.srv.bill.mu.Unlock()
				r, err := h.srv.BillDue(context.Background())
				if err != nil {
					t.Errorf("BillDue: %v", err)
				}
				mu.Lock()
				bills += r.Bills
				mu.Unlock()
			})
		}
		wg.Wait()
		if bills != 3*n {
			t.Fatalf("%d periods billed, want %d", bills, 3*n)
		}
		farmBal, _ := s.h.db.Balance(context.Background(), store.Account{Kind: api.AccountFarm, ID: s.farm})
		if farmBal != 3*n*testHourCost {
			t.Fatalf("farm balance %d, want %d", farmBal, 3*n*testHourCost)
		}
	})
}

// TestLateUsageBilledAtOnce: an hour that waited for its node's usage
// report is billed at the billing loop's next check after the report came,
// not when the next hour becomes due.
func TestLateUsageBilledAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		s := newBillingSetup(t, backend)
		h, H := s.h, s.hour
		h.do("POST", fmt.Sprintf("/api/v1/accounts/%d/credit", s.user.id), api.CreditRequest{Amount: 1_000_000, Reference: "pay-1"}, h.v2(s.admin)).want(t, http.StatusCreated)
		c := s.contract(t, s.user)
		h.clock.Advance(70 * time.Minute) // hour H is due
		res, err := h.srv.BillDue(context.Background())
		if err != nil || res.Bills != 0 {
			t.Fatalf("hour H unreported: %+v, %v: want it waiting", res, err)
		}
		h.clock.Advance(20 * time.Minute)
		s.usage(H, api.Usage{ContractID: c.ContractID, Capacity: testUsage}).want(t, http.StatusOK)
		if res, err = h.srv.BillDue(context.Background()); err != nil || res.Bills != 1 || res.Amount != testHourCost {
			t.Fatalf("after the late report: %+v, %v: want hour H billed %d", res, err, testHourCost)
		}
		if res, err = h.srv.BillDue(context.Background()); err != nil || res.Bills != 0 {
			t.Fatalf("again: %+v, %v: want nothing", res, err)
		}
	})
}
