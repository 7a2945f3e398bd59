package registrar

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// putPricing is PUT /farms/{farm_id}/pricing: the farmer sets the farm's
// prices per hour (µTFT). New contracts pay them at once, existing ones
// after the notice period.
func (s *Server) putPricing(w http.ResponseWriter, r *http.Request) error {
	var p api.Prices
	if err := decodeBody(r, &p); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"cru", p.CRU}, {"mru", p.MRU}, {"sru", p.SRU}, {"hru", p.HRU}, {"ipv4", p.IPv4}} {
		if f.v < 0 || f.v > api.MaxPrice {
			return invalid(f.name, "%d µTFT: a price is 0 to %d µTFT per unit and hour", f.v, int64(api.MaxPrice))
		}
	}
	farm, err := s.ownFarm(r)
	if err != nil {
		return err
	}
	if _, err := s.store.SetFarmPricing(r.Context(), farm.FarmID, s.now(), p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return conflict("the farm's prices were set at this very instant already; try again")
		}
		return err
	}
	return s.writePricing(w, r, farm.FarmID)
}

// getPricing is GET /farms/{farm_id}/pricing: the prices new contracts
// pay, those existing contracts pay, changes still within their notice,
// and the history.
func (s *Server) getPricing(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("farm_id", r.PathValue("farm_id"))
	if err != nil {
		return err
	}
	return s.writePricing(w, r, id)
}

// writePricing answers the pricing of farm id.
func (s *Server) writePricing(w http.ResponseWriter, r *http.Request, id uint64) error {
	hist, err := s.store.FarmPricing(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("farm %d not found", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pricingView(id, hist, s.now(), s.cfg.PricingNotice))
	return nil
}

// pricingView summarises a farm's price history (newest first) at now.
func pricingView(farm uint64, hist []api.PricingEntry, now time.Time, notice time.Duration) api.FarmPricing {
	v := api.FarmPricing{FarmID: farm, History: hist, Scheduled: []api.ScheduledPrices{}, NoticeSeconds: int64(notice / time.Second)}
	if len(hist) > 0 {
		v.Current = hist[0].Prices
	}
	cut := now.Add(-notice)
	for _, e := range hist {
		if !e.SetAt.After(cut) {
			v.Effective = e.Prices
			break
		}
		v.Scheduled = append([]api.ScheduledPrices{{PricingEntry: e, EffectiveAt: e.SetAt.Add(notice)}}, v.Scheduled...)
	}
	return v
}

// putSLA is PUT /farms/{farm_id}/sla: the farmer's uptime promise.
func (s *Server) putSLA(w http.ResponseWriter, r *http.Request) error {
	var sla api.SLA
	if err := decodeBody(r, &sla); err != nil {
		return err
	}
	if sla.UptimePercent > 100 {
		return invalid("uptime_percent", "%d: a percentage is 0 to 100", sla.UptimePercent)
	}
	if sla.DiscountPercent > 100 {
		return invalid("discount_percent", "%d: a percentage is 0 to 100", sla.DiscountPercent)
	}
	farm, err := s.ownFarm(r)
	if err != nil {
		return err
	}
	if err := s.store.SetFarmSLA(r.Context(), farm.FarmID, s.now(), sla); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sla)
	return nil
}

// getSLA is GET /farms/{farm_id}/sla.
func (s *Server) getSLA(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("farm_id", r.PathValue("farm_id"))
	if err != nil {
		return err
	}
	sla, err := s.store.FarmSLA(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("farm %d not found", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sla)
	return nil
}

// credit is POST /accounts/{twin_id}/credit (admins): money enters the
// twin's balance. 201 for a new credit, 200 for a repeat of one (same
// reference and amount), 409 for a reference used with another amount.
func (s *Server) credit(w http.ResponseWriter, r *http.Request) error {
	if c := caller(r); !s.cfg.isAdmin(c) {
		return notAuthorized("twin %d is not an admin twin of this registrar; only admins credit accounts", c)
	}
	twin, err := parseID("twin_id", r.PathValue("twin_id"))
	if err != nil {
		return err
	}
	var req api.CreditRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Amount <= 0 {
		return invalid("amount", "%d: a credit is a positive number of µTFT", req.Amount)
	}
	if err := validateText("reference", req.Reference, api.MaxReferenceLen, true); err != nil {
		return err
	}
	bal, created, err := s.store.Credit(r.Context(), twin, req.Amount, req.Reference, s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("account %d not found", twin)
	case errors.Is(err, store.ErrCreditReused):
		return conflict("reference %q was credited to twin %d with another amount; a new payment needs a new reference", req.Reference, twin)
	case errors.Is(err, store.ErrInvalid):
		return invalid("amount", "%d µTFT would take a balance beyond %d µTFT, the most one holds; nothing was credited", req.Amount, int64(math.MaxInt64))
	case err != nil:
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, api.Balance{Account: api.AccountName(api.AccountTwin, twin), Balance: bal})
	return nil
}

// ownAccount reads the twin of the path and checks the caller is that
// twin or an admin.
func (s *Server) ownAccount(r *http.Request) (uint64, error) {
	twin, err := parseID("twin_id", r.PathValue("twin_id"))
	if err != nil {
		return 0, err
	}
	if c := caller(r); c != twin && !s.cfg.isAdmin(c) {
		return 0, notAuthorized("twin %d cannot read the account of twin %d", c, twin)
	}
	return twin, nil
}

// balance is GET /accounts/{twin_id}/balance (the twin or an admin).
func (s *Server) balance(w http.ResponseWriter, r *http.Request) error {
	twin, err := s.ownAccount(r)
	if err != nil {
		return err
	}
	a := store.Account{Kind: api.AccountTwin, ID: twin}
	b, err := s.store.Balance(r.Context(), a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.Balance{Account: a.String(), Balance: b})
	return nil
}

// twinLedger is GET /accounts/{twin_id}/ledger?after_id=&size= (the twin
// or an admin): the twin's ledger lines, oldest first.
func (s *Server) twinLedger(w http.ResponseWriter, r *http.Request) error {
	twin, err := s.ownAccount(r)
	if err != nil {
		return err
	}
	return s.writeLedger(w, r, store.Account{Kind: api.AccountTwin, ID: twin})
}

// farmLedger is GET /farms/{farm_id}/ledger?after_id=&size= (the farmer
// or an admin): what the farm earned.
func (s *Server) farmLedger(w http.ResponseWriter, r *http.Request) error {
	farm, err := s.pathFarm(r)
	if err != nil {
		return err
	}
	if c := caller(r); farm.TwinID != c && !s.cfg.isAdmin(c) {
		return notAuthorized("farm %d belongs to twin %d; twin %d may not read its ledger", farm.FarmID, farm.TwinID, c)
	}
	return s.writeLedger(w, r, store.Account{Kind: api.AccountFarm, ID: farm.FarmID})
}

// writeLedger answers a page of account a's ledger.
func (s *Server) writeLedger(w http.ResponseWriter, r *http.Request, a store.Account) error {
	ids := idFilters{q: r.URL.Query()}
	after, size := ids.get("after_id"), ids.get("size")
	if ids.err != nil {
		return ids.err
	}
	if size > maxPageSize {
		return invalid("size", "%d is above the maximum page size %d", size, maxPageSize)
	}
	lines, err := s.store.Ledger(r.Context(), a, after, size)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, lines)
	return nil
}

// billing remembers the last period this process billed through, so that
// the loop bills once per period (other processes bill too; the store
// makes each contract period billed once whoever runs), and whether a
// usage report came since for a period already due: a period that waited
// for it is billed at the loop's next check, not an hour later.
type billing struct {
	mu      sync.Mutex
	through time.Time
	late    atomic.Bool
}

// dueThrough is the start of the last period that is due at now: ended
// at least delay ago.
func dueThrough(now time.Time, delay time.Duration) time.Time {
	return api.Period(now.Add(-delay)).Add(-time.Hour)
}

// BillDue bills every active contract for each period that ended at least
// the billing delay ago and was not billed yet, then deletes contracts
// whose grace period is over. Serve runs it every --billing-check; it
// returns at once (a zero result) when this process billed the due period
// already and no usage report for a due period came since. Several
// processes may run it at once.
func (s *Server) BillDue(ctx context.Context) (store.BillingResult, error) {
	now := s.now()
	through := dueThrough(now, s.cfg.BillingDelay)
	s.bill.mu.Lock()
	defer s.bill.mu.Unlock()
	var res store.BillingResult
	if late := s.bill.late.Swap(false); through.After(s.bill.through) || late {
		start := time.Now()
		var err error
		res, err = s.store.Bill(ctx, store.BillingParams{
			Through:     through,
			Now:         now,
			Notice:      s.cfg.PricingNotice,
			OnlineSlack: s.sched.interval(s.nodes.get(ctx)),
			UsageWait:   s.cfg.UsageWait,
		})
		if err != nil {
			s.metrics.billingFailures.Inc()
			s.bill.late.Store(true) // the next check tries again
			return res, err
		}
		s.bill.through = through
		s.metrics.billed.Add(float64(res.Bills))
		s.metrics.billedAmount.Add(float64(res.Amount))
		s.metrics.graced.Add(float64(res.Grace))
		s.metrics.billingSeconds.Set(time.Since(start).Seconds())
		s.log.Info("billed", "through", through.Format(time.RFC3339), "periods", res.Bills, "amount_utft", res.Amount,
			"sla_discounted", res.Discounted, "to_grace", res.Grace, "duration", time.Since(start))
	}
	n, err := s.store.ExpireGrace(ctx, now.Add(-s.cfg.GracePeriod), now)
	if err != nil {
		return res, err
	}
	if n > 0 {
		s.metrics.expired.Add(float64(n))
		s.log.Info("deleted contracts whose grace period ended", "contracts", n)
	}
	return res, nil
}

// runBilling runs BillDue at once and then every --billing-check until
// ctx is done.
func (s *Server) runBilling(ctx context.Context) {
	t := time.NewTicker(s.cfg.BillingCheck)
	defer t.Stop()
	for {
		if _, err := s.BillDue(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("billing", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
