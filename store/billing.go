package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// BillingParams are the settings of one billing run (see Bill).
type BillingParams struct {
	// Through is the start of the last period to bill: every active
	// contract is billed for each period up to and including it that it
	// was not billed for yet.
	Through time.Time
	// Now stamps the ledger lines and the state changes.
	Now time.Time
	// Notice is the pricing notice period: a contract pays the latest
	// price set at or before max(its creation, the period's start −
	// Notice).
	Notice time.Duration
	// OnlineSlack is how long after its last uptime report a node counts
	// as online (the report interval), for the SLA.
	OnlineSlack time.Duration
	// UsageWait is how long after its end a node contract's period waits
	// for its node's usage report: a period is billed once reported, or,
	// with no report, once it started UsageWait or more before Through
	// (as nothing used). 0: periods are billed when due, reported or not.
	UsageWait time.Duration
	// Batch is the number of contracts billed per transaction (0: 5000).
	Batch int
}

// BillingResult counts what one run did.
type BillingResult struct {
	// Bills is the number of contract periods billed (zero amounts
	// included).
	Bills int64
	// Amount is the total billed, in µTFT, after SLA discounts.
	Amount int64
	// Discounted is the number of periods billed with an SLA discount.
	Discounted int64
	// Grace is the number of contracts that went to grace.
	Grace int64
}

// defaultBillingBatch is BillingParams.Batch's default.
const defaultBillingBatch = 5000

// Bill bills every active contract for each finished period up to
// p.Through that it was not billed for (see docs/contracts.md for the
// arithmetic): each period of a contract is one transaction's worth of a
// batch that writes the ledger lines (twin −x, farm +x; an SLA discount
// twin +d, farm −d), the balances, and moves the contract's billed_until
// one hour on, so a period is billed exactly once however many processes
// bill at once (on PostgreSQL they share the work: a batch skips the rows
// another one holds) or wherever a run is interrupted. After each pass
// over the contracts, the active contracts of twins whose balance is below
// zero go to grace; another pass follows while a pass billed a period
// before p.Through (a contract catching up on several periods). Rows
// another process held during a pass are that process's to bill; should
// it fail, they are billed by the next run, each period still once.
func (db *DB) Bill(ctx context.Context, p BillingParams) (BillingResult, error) {
	if p.Batch <= 0 {
		p.Batch = defaultBillingBatch
	}
	p.Through, p.Now = utc(p.Through), utc(p.Now)
	var total BillingResult
	for {
		var (
			pass   BillingResult
			after  int64
			behind bool // a period before p.Through was billed
		)
		for {
			r, last, late, err := db.billBatch(ctx, p, after)
			if err != nil {
				return total, fmt.Errorf("store: bill through %s: %w", p.Through.Format(time.RFC3339), err)
			}
			pass.Bills += r.Bills
			pass.Amount += r.Amount
			pass.Discounted += r.Discounted
			behind = behind || late
			if last == 0 {
				break
			}
			after = last
		}
		n, err := db.graceNegative(ctx, p.Now)
		if err != nil {
			return total, fmt.Errorf("store: bill through %s: %w", p.Through.Format(time.RFC3339), err)
		}
		total.Bills += pass.Bills
		total.Amount += pass.Amount
		total.Discounted += pass.Discounted
		total.Grace += n
		if !behind {
			return total, nil
		}
	}
}

// graceNegative moves the active contracts of twins with a negative
// balance to grace.
func (db *DB) graceNegative(ctx context.Context, at time.Time) (int64, error) {
	res, err := db.rw.ExecContext(ctx,
		`UPDATE contracts SET state = 'grace', grace_since = $1, updated_at = $1
		 WHERE state = 'active' AND twin_id IN (SELECT account_id FROM balances WHERE account_kind = 'twin' AND balance < 0)`,
		db.ts(at))
	if err != nil {
		return 0, fmt.Errorf("grace: %w", err)
	}
	return res.RowsAffected()
}

// ExpireGrace deletes (reason grace_expired) the contracts in grace since
// before before, at at, and returns how many.
func (db *DB) ExpireGrace(ctx context.Context, before, at time.Time) (int64, error) {
	res, err := db.rw.ExecContext(ctx,
		`UPDATE contracts SET state = 'deleted', deleted_reason = 'grace_expired', deleted_at = $2, updated_at = $2,
		   grace_since = NULL, billed_until = CASE WHEN billed_until < $3 THEN $3 ELSE billed_until END
		 WHERE state = 'grace' AND grace_since <= $1`, db.ts(before), db.ts(at), db.ts(api.Period(at).Add(time.Hour)))
	if err != nil {
		return 0, fmt.Errorf("store: expire grace: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: expire grace: %w", err)
	}
	return n, nil
}

// billRow is one contract period to bill, as billSelect reads it.
type billRow struct {
	contract, twin, farm, node int64
	typ                        string
	period                     time.Time
	reserved, capacity, used   api.Capacity
	reported, rented           bool
	prices                     api.Prices
	sla                        api.SLA
}

// usage is what the period is billed for: a rent contract the node's
// registered capacity; a node contract what its node reported, each figure
// capped at the contract's resources (nothing reported: nothing used),
// only the public addresses when the twin rents the node (the rent pays
// for the rest).
func (r billRow) usage() api.Capacity {
	if r.typ == api.ContractRent {
		return api.Capacity{CRU: r.capacity.CRU, MRU: r.capacity.MRU, SRU: r.capacity.SRU, HRU: r.capacity.HRU, IPv4: r.reserved.IPv4}
	}
	u := api.Capacity{
		CRU: min(r.used.CRU, r.reserved.CRU), MRU: min(r.used.MRU, r.reserved.MRU), SRU: min(r.used.SRU, r.reserved.SRU),
		HRU: min(r.used.HRU, r.reserved.HRU), IPv4: min(r.used.IPv4, r.reserved.IPv4),
	}
	if r.rented {
		u = api.Capacity{IPv4: u.IPv4}
	}
	return u
}

// billClaim locks a batch of due contracts and moves their billed_until
// one period on, returning the claimed rows: the period each is billed
// for is the one before its new billed_until. Active contracts are due,
// and deleted ones for their periods up to and with the one they ended
// in (a contract cancelled before its last hours were billed pays for
// them, as the hour it is made in is billed in full; one deleted in grace
// has its billed_until moved past its end, see DeleteContract). A node contract's period is
// due once its node reported it or a later period of the contract (the
// node reports its hours oldest first: a period it skipped had nothing
// of the contract running, e.g. the hour the contract was made in, before
// its deployment), or, unreported, once it is not after wait
// (BillingParams.UsageWait): a node cut off from the registrar at the top
// of the hour reports that hour later and it is billed then.
// Arguments: $1 through, $2 after contract_id, $3 limit, wait the
// placeholder of the last period billed unreported. The lock is taken on
// the contracts alone: on PostgreSQL a locking join would recheck a row
// another process just billed against the other tables' rows of the
// period it billed.
func (db *DB) billClaim(returning, wait string) string {
	hour, lock, in := `interval '1 hour'`, ` FOR UPDATE SKIP LOCKED`, `= ANY (ARRAY (`
	if !db.pg() {
		hour, lock, in = fmt.Sprint(time.Hour.Microseconds()), ``, `IN ((`
	}
	// On PostgreSQL "= ANY (ARRAY (subquery))" makes the update probe the
	// primary key for each claimed id; with "IN (subquery)" it may hash
	// the ids and scan the whole table each batch.
	return `UPDATE contracts SET billed_until = billed_until + ` + hour + ` WHERE contract_id ` + in + `
	  SELECT d.contract_id FROM contracts d WHERE (d.state = 'active' OR d.state = 'deleted' AND d.billed_until <= d.deleted_at)
	    AND d.billed_until <= $1 AND d.contract_id > $2
	    AND (d.type = 'rent' OR d.billed_until <= ` + wait + ` OR EXISTS (SELECT 1 FROM contract_usage u
	      WHERE u.contract_id = d.contract_id AND u.period_start >= d.billed_until))
	  ORDER BY d.contract_id LIMIT $3` + lock + `)) RETURNING ` + returning
}

// billSelect reads the periods to bill of the claimed contracts: c in
// from, kept by cond ("" for all); notice is the placeholder of the notice
// period in µs.
func (db *DB) billSelect(from, cond, notice string) string {
	period := `(c.billed_until - interval '1 hour')`
	cutoff := period + ` - ` + notice + ` * interval '1 microsecond'`
	if !db.pg() {
		period = `(c.billed_until - ` + fmt.Sprint(time.Hour.Microseconds()) + `)`
		cutoff = period + ` - ` + notice
	}
	return `SELECT c.contract_id, c.twin_id, n.farm_id, c.node_id, c.type, ` + period + `,
	  c.cru, c.mru, c.sru, c.hru, c.ipv4, n.cru, n.mru, n.sru, n.hru,
	  u.contract_id IS NOT NULL, COALESCE(u.cru, 0), COALESCE(u.mru, 0), COALESCE(u.sru, 0), COALESCE(u.hru, 0), COALESCE(u.ipv4, 0),
	  COALESCE(fp.cru, 0), COALESCE(fp.mru, 0), COALESCE(fp.sru, 0), COALESCE(fp.hru, 0), COALESCE(fp.ipv4, 0),
	  COALESCE(s.uptime_percent, 0), COALESCE(s.discount_percent, 0),
	  c.type = 'node' AND EXISTS (SELECT 1 FROM contracts r WHERE r.node_id = c.node_id AND r.type = 'rent'
	    AND r.state <> 'deleted' AND r.twin_id = c.twin_id)
	FROM ` + from + `
	JOIN nodes n ON n.node_id = c.node_id
	LEFT JOIN contract_usage u ON u.contract_id = c.contract_id AND u.period_start = ` + period + `
	LEFT JOIN farm_pricing fp ON fp.farm_id = n.farm_id AND fp.set_at = (
	  SELECT MAX(p.set_at) FROM farm_pricing p WHERE p.farm_id = n.farm_id
	  AND p.set_at <= CASE WHEN c.created_at > ` + cutoff + ` THEN c.created_at ELSE ` + cutoff + ` END)
	LEFT JOIN farm_sla s ON s.farm_id = n.farm_id` + cond + `
	ORDER BY c.contract_id`
}

// claimAndSelect is the statement that claims a batch and reads its
// periods, with its arguments. On PostgreSQL it is one statement (the
// claim in a WITH); on SQLite, which has no UPDATE in WITH, the claim
// runs first and this reads the claimed ids.
func (db *DB) claimAndSelect(ctx context.Context, tx *sql.Tx, p BillingParams, after int64) (string, []any, error) {
	if db.pg() {
		return `WITH claimed AS (` + db.billClaim(`*`, `$5`) + `) ` + db.billSelect(`claimed c`, ``, `$4`),
			[]any{db.ts(p.Through), after, p.Batch, p.Notice.Microseconds(), db.ts(p.Through.Add(-p.UsageWait))}, nil
	}
	ids, err := db.claimDue(ctx, tx, p, after)
	if err != nil || len(ids) == 0 {
		return "", nil, err
	}
	a := args{p.Notice.Microseconds()}
	return db.billSelect(`contracts c`, ` WHERE c.contract_id `+db.idsIn(&a, ids), `$1`), a, nil
}

// idsIn returns the condition "is one of ids" for the dialect, with
// placeholders from a.
func (db *DB) idsIn(a *args, ids []int64) string {
	if db.pg() {
		return "= ANY(" + a.add(ids) + ")"
	}
	ph := make([]string, len(ids))
	for i, id := range ids {
		ph[i] = a.add(id)
	}
	return "IN (" + strings.Join(ph, ",") + ")"
}

// billBatch bills one batch of contracts with ids above after, each for
// its next due period, in one transaction. It returns the last contract
// id it saw (0: none was due) and whether it billed a period before
// p.Through.
func (db *DB) billBatch(ctx context.Context, p BillingParams, after int64) (BillingResult, int64, bool, error) {
	var (
		res  BillingResult
		last int64
		late bool
	)
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := db.readBillRows(ctx, tx, p, after)
		if err != nil || len(rows) == 0 {
			return err
		}
		last = rows[len(rows)-1].contract
		online, err := db.onlineSeconds(ctx, tx, rows, p.OnlineSlack)
		if err != nil {
			return err
		}
		var lines []ledgerLine
		for _, r := range rows {
			amount := r.prices.Cost(r.usage())
			off := int64(0)
			if r.sla.UptimePercent > 0 && online[nodePeriod{r.node, r.period}]*100 < int64(r.sla.UptimePercent)*3600 {
				_, off = api.Discount(amount, r.sla.DiscountPercent)
			}
			res.Bills++
			late = late || r.period.Before(p.Through)
			res.Amount += amount - off
			lines = append(lines, billLines(r, amount, off)...)
			if off > 0 {
				res.Discounted++
			}
		}
		return db.addLines(ctx, tx, p.Now, lines)
	})
	return res, last, late, err
}

// billLines are the ledger lines of one contract period billed amount
// with off given back under the SLA (none for a zero amount).
func billLines(r billRow, amount, off int64) []ledgerLine {
	if amount == 0 {
		return nil
	}
	period := r.period
	ls := []ledgerLine{
		{period: &period, contract: r.contract, kind: api.KindBill, acct: api.AccountTwin, acctID: r.twin, amount: -amount},
		{period: &period, contract: r.contract, kind: api.KindBill, acct: api.AccountFarm, acctID: r.farm, amount: amount},
	}
	if off > 0 {
		ls = append(ls,
			ledgerLine{period: &period, contract: r.contract, kind: api.KindSLADiscount, acct: api.AccountTwin, acctID: r.twin, amount: off},
			ledgerLine{period: &period, contract: r.contract, kind: api.KindSLADiscount, acct: api.AccountFarm, acctID: r.farm, amount: -off})
	}
	return ls
}

// readBillRows claims a batch of due contracts and reads their periods to
// bill (claimAndSelect).
func (db *DB) readBillRows(ctx context.Context, tx *sql.Tx, p BillingParams, after int64) ([]billRow, error) {
	q, a, err := db.claimAndSelect(ctx, tx, p, after)
	if err != nil || q == "" {
		return nil, err
	}
	rs, err := tx.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("claim due contracts: %w", err)
	}
	defer rs.Close()
	var out []billRow
	for rs.Next() {
		var (
			r       billRow
			up, off int64
		)
		res, capa, used, pr := &r.reserved, &r.capacity, &r.used, &r.prices
		if err := rs.Scan(&r.contract, &r.twin, &r.farm, &r.node, &r.typ, timeCol{&r.period},
			u64Col{&res.CRU}, u64Col{&res.MRU}, u64Col{&res.SRU}, u64Col{&res.HRU}, u64Col{&res.IPv4},
			u64Col{&capa.CRU}, u64Col{&capa.MRU}, u64Col{&capa.SRU}, u64Col{&capa.HRU},
			&r.reported, u64Col{&used.CRU}, u64Col{&used.MRU}, u64Col{&used.SRU}, u64Col{&used.HRU}, u64Col{&used.IPv4},
			&pr.CRU, &pr.MRU, &pr.SRU, &pr.HRU, &pr.IPv4, &up, &off, &r.rented); err != nil {
			return nil, fmt.Errorf("select due contracts: %w", err)
		}
		r.sla = api.SLA{UptimePercent: uint32(up), DiscountPercent: uint32(off)}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("select due contracts: %w", err)
	}
	return out, nil
}

// claimDue runs billClaim and returns the ids in order.
func (db *DB) claimDue(ctx context.Context, tx *sql.Tx, p BillingParams, after int64) ([]int64, error) {
	rs, err := tx.QueryContext(ctx, db.billClaim(`contract_id`, `$4`), db.ts(p.Through), after, p.Batch, db.ts(p.Through.Add(-p.UsageWait)))
	if err != nil {
		return nil, fmt.Errorf("claim due contracts: %w", err)
	}
	defer rs.Close()
	var ids []int64
	for rs.Next() {
		var id int64
		if err := rs.Scan(&id); err != nil {
			return nil, fmt.Errorf("claim due contracts: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("claim due contracts: %w", err)
	}
	return ids, nil
}

// nodePeriod keys a node's online time in one period.
type nodePeriod struct {
	node   int64
	period time.Time
}

// onlineSeconds returns, for each node and period of rows under an SLA,
// how many seconds of the period the node was online: the union of its
// uptime sessions, each from its boot to its last report plus slack.
func (db *DB) onlineSeconds(ctx context.Context, tx *sql.Tx, rows []billRow, slack time.Duration) (map[nodePeriod]int64, error) {
	want := map[nodePeriod]bool{}
	var (
		a      args
		nodes  []string
		seen   = map[int64]bool{}
		lo, hi time.Time
	)
	for _, r := range rows {
		if r.sla.UptimePercent == 0 {
			continue
		}
		want[nodePeriod{r.node, r.period}] = true
		if !seen[r.node] {
			seen[r.node] = true
			nodes = append(nodes, a.add(r.node))
		}
		if lo.IsZero() || r.period.Before(lo) {
			lo = r.period
		}
		if end := r.period.Add(time.Hour); end.After(hi) {
			hi = end
		}
	}
	out := map[nodePeriod]int64{}
	if len(want) == 0 {
		return out, nil
	}
	in := strings.Join(nodes, ",")
	from, to := a.add(db.ts(lo.Add(-slack))), a.add(db.ts(hi))
	rs, err := tx.QueryContext(ctx,
		`SELECT node_id, boot_time, last_seen FROM node_liveness WHERE node_id IN (`+in+`) AND last_seen >= `+from+` AND boot_time < `+to+`
		 UNION ALL
		 SELECT node_id, boot_time, last_report FROM uptime_sessions WHERE node_id IN (`+in+`) AND last_report >= `+from+` AND boot_time < `+to,
		a...)
	if err != nil {
		return nil, fmt.Errorf("uptime sessions: %w", err)
	}
	defer rs.Close()
	sessions := map[int64][][2]time.Time{}
	for rs.Next() {
		var (
			node       int64
			boot, last time.Time
		)
		if err := rs.Scan(&node, timeCol{&boot}, timeCol{&last}); err != nil {
			return nil, fmt.Errorf("uptime sessions: %w", err)
		}
		sessions[node] = append(sessions[node], [2]time.Time{boot, last.Add(slack)})
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("uptime sessions: %w", err)
	}
	for k := range want {
		out[k] = coveredSeconds(sessions[k.node], k.period, k.period.Add(time.Hour))
	}
	return out, nil
}

// coveredSeconds is how many seconds of [from, to) the union of the
// intervals covers.
func coveredSeconds(ivs [][2]time.Time, from, to time.Time) int64 {
	slices.SortFunc(ivs, func(a, b [2]time.Time) int { return a[0].Compare(b[0]) })
	var (
		total time.Duration
		cur   = from
	)
	for _, iv := range ivs {
		s, e := iv[0], iv[1]
		if s.Before(cur) {
			s = cur
		}
		if e.After(to) {
			e = to
		}
		if e.After(s) {
			total += e.Sub(s)
			cur = e
		}
	}
	return int64(total / time.Second)
}

// PruneUsage deletes the usage reports of periods that start before
// before and returns how many it deleted. Billing reads a report once, for
// its period; what is kept after is for inspection, so the retention
// (registrar --usage-retention) should be longer than any billing delay.
func (db *DB) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	res, err := db.rw.ExecContext(ctx, `DELETE FROM contract_usage WHERE period_start < $1`, db.ts(before))
	if err != nil {
		return 0, fmt.Errorf("store: prune usage: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune usage: %w", err)
	}
	return n, nil
}
