package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/grid4/grid4/registrar/api"
)

// Account names a ledger account: Kind is api.AccountTwin, AccountFarm or
// AccountExternal (ID 0).
type Account struct {
	Kind string
	ID   uint64
}

// String is the account's ledger name ("twin:5").
func (a Account) String() string { return api.AccountName(a.Kind, a.ID) }

// ledgerLine is a line to write.
type ledgerLine struct {
	period   *time.Time
	contract int64 // 0: none
	kind     string
	acct     string
	acctID   int64
	amount   int64
	ref      string
}

// addLines writes lines at at and adds their amounts to the balances of
// their accounts, in tx. Balance rows are locked in account order, so that
// concurrent writers never wait on each other in a cycle.
func (db *DB) addLines(ctx context.Context, tx *sql.Tx, at time.Time, lines []ledgerLine) error {
	if len(lines) == 0 {
		return nil
	}
	if db.pg() {
		return db.addLinesPG(ctx, tx, at, lines)
	}
	for _, l := range lines {
		var period, contract any
		if l.period != nil {
			period = db.ts(*l.period)
		}
		if l.contract != 0 {
			contract = l.contract
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO ledger (at, period_start, contract_id, account_kind, account_id, amount, kind, reference)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			db.ts(at), period, contract, l.acct, l.acctID, l.amount, l.kind, l.ref); err != nil {
			return classify(err)
		}
	}
	sums, err := sumByAccount(lines)
	if err != nil {
		return err
	}
	for _, s := range sums {
		// SQLite turns an integer sum beyond 64 bits into a float instead of
		// failing, which would leave a balance no read can scan: check the
		// type of the result and fail the transaction.
		var typ string
		if err := tx.QueryRowContext(ctx,
			`INSERT INTO balances (account_kind, account_id, balance) VALUES ($1, $2, $3)
			 ON CONFLICT (account_kind, account_id) DO UPDATE SET balance = balances.balance + excluded.balance
			 RETURNING typeof(balance)`,
			s.acct, s.acctID, s.amount).Scan(&typ); err != nil {
			return err
		}
		if typ != "integer" {
			return balanceOverflow(s.acct, s.acctID)
		}
	}
	return nil
}

// balanceOverflow is the error of a ledger write that would take the
// balance of an account beyond what a 64-bit integer holds.
func balanceOverflow(kind string, id int64) error {
	return fmt.Errorf("%w: the balance of %s would leave the range of a 64-bit integer", ErrInvalid, api.AccountName(kind, uint64(id)))
}

// addLinesPG is addLines on PostgreSQL: one statement per table over
// arrays.
func (db *DB) addLinesPG(ctx context.Context, tx *sql.Tx, at time.Time, lines []ledgerLine) error {
	n := len(lines)
	var (
		periods   = make([]*time.Time, n)
		contracts = make([]*int64, n)
		accts     = make([]string, n)
		ids       = make([]int64, n)
		amounts   = make([]int64, n)
		kinds     = make([]string, n)
		refs      = make([]string, n)
	)
	for i, l := range lines {
		periods[i] = l.period
		if l.contract != 0 {
			contracts[i] = &lines[i].contract
		}
		accts[i], ids[i], amounts[i], kinds[i], refs[i] = l.acct, l.acctID, l.amount, l.kind, l.ref
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO ledger (at, period_start, contract_id, account_kind, account_id, amount, kind, reference)
		 SELECT $1, * FROM unnest($2::timestamptz[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::text[])`,
		db.ts(at), periods, contracts, accts, ids, amounts, kinds, refs); err != nil {
		return classify(err)
	}
	sums, err := sumByAccount(lines)
	if err != nil {
		return err
	}
	accts, ids, amounts = accts[:0], ids[:0], amounts[:0]
	for _, s := range sums {
		accts, ids, amounts = append(accts, s.acct), append(ids, s.acctID), append(amounts, s.amount)
	}
	_, err = tx.ExecContext(ctx,
		`INSERT INTO balances (account_kind, account_id, balance)
		 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) ORDER BY 1, 2
		 ON CONFLICT (account_kind, account_id) DO UPDATE SET balance = balances.balance + excluded.balance`,
		accts, ids, amounts)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "22003" { // numeric_value_out_of_range
		return fmt.Errorf("%w: a balance would leave the range of a 64-bit integer: %w", ErrInvalid, err)
	}
	return err
}

// addInt64 is a + b, and false when that leaves the int64 range.
func addInt64(a, b int64) (int64, bool) {
	s := a + b
	return s, (s > a) == (b > 0)
}

// sumByAccount adds up lines per account, in account order.
func sumByAccount(lines []ledgerLine) ([]ledgerLine, error) {
	type key struct {
		acct string
		id   int64
	}
	idx := map[key]int{}
	var out []ledgerLine
	for _, l := range lines {
		k := key{l.acct, l.acctID}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, ledgerLine{acct: l.acct, acctID: l.acctID})
		}
		sum, ok := addInt64(out[i].amount, l.amount)
		if !ok {
			return nil, balanceOverflow(l.acct, l.acctID)
		}
		out[i].amount = sum
	}
	slices.SortFunc(out, func(a, b ledgerLine) int {
		if c := strings.Compare(a.acct, b.acct); c != 0 {
			return c
		}
		return cmp.Compare(a.acctID, b.acctID)
	})
	return out, nil
}

// Credit adds amount µTFT (> 0) to twin twinID's balance at at: lines
// external −amount and twin +amount with reference. A repeat of a credit
// (same twin and reference) with the same amount changes nothing and
// returns created false; with another amount it fails with
// ErrCreditReused (ErrConflict).
// When the credit brings the balance to zero or more, the twin's contracts
// in grace become active again, billed from the period containing at.
// ErrNotFound if there is no such twin.
func (db *DB) Credit(ctx context.Context, twinID uint64, amount int64, reference string, at time.Time) (balance int64, created bool, err error) {
	twin, ok := idArg(twinID)
	if !ok {
		return 0, false, fmt.Errorf("store: credit twin %d: %w", twinID, ErrNotFound)
	}
	if amount <= 0 || reference == "" {
		return 0, false, fmt.Errorf("store: credit twin %d: amount %d, reference %q: %w", twinID, amount, reference, ErrInvalid)
	}
	at = utc(at)
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE twin_id = $1)`, twin).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return ErrNotFound
		}
		var prev int64
		err := tx.QueryRowContext(ctx,
			`SELECT amount FROM ledger WHERE kind = 'credit' AND account_kind = 'twin' AND account_id = $1 AND reference = $2`,
			twin, reference).Scan(&prev)
		switch {
		case err == nil && prev == amount:
			return nil
		case err == nil:
			return fmt.Errorf("reference %q: %d µTFT, not %d: %w", reference, prev, amount, ErrCreditReused)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		created = true
		if err := db.addLines(ctx, tx, at, []ledgerLine{
			{kind: api.KindCredit, acct: api.AccountExternal, amount: -amount, ref: reference},
			{kind: api.KindCredit, acct: api.AccountTwin, acctID: twin, amount: amount, ref: reference},
		}); err != nil {
			return err
		}
		return db.reactivate(ctx, tx, twin, at)
	})
	if err != nil {
		return 0, false, fmt.Errorf("store: credit twin %d: %w", twinID, err)
	}
	balance, err = db.Balance(ctx, Account{Kind: api.AccountTwin, ID: twinID})
	return balance, created, err
}

// reactivate puts twin's contracts in grace back to active when its
// balance is not negative; they are billed again from the period
// containing at (the periods spent in grace are not billed).
func (db *DB) reactivate(ctx context.Context, tx *sql.Tx, twin int64, at time.Time) error {
	_, err := tx.ExecContext(ctx,
		`UPDATE contracts SET state = 'active', grace_since = NULL, updated_at = $2,
		   billed_until = CASE WHEN billed_until < $3 THEN $3 ELSE billed_until END
		 WHERE twin_id = $1 AND state = 'grace'
		   AND COALESCE((SELECT balance FROM balances WHERE account_kind = 'twin' AND account_id = $1), 0) >= 0`,
		twin, db.ts(at), db.ts(api.Period(at)))
	return err
}

// Balance returns the balance of account a in µTFT (0 for an account
// without lines).
func (db *DB) Balance(ctx context.Context, a Account) (int64, error) {
	id, err := toInt64("account id", a.ID)
	if err != nil {
		return 0, fmt.Errorf("store: balance of %s: %w", a, err)
	}
	var b int64
	err = db.ro.QueryRowContext(ctx, `SELECT balance FROM balances WHERE account_kind = $1 AND account_id = $2`, a.Kind, id).Scan(&b)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("store: balance of %s: %w", a, err)
	}
	return b, nil
}

// Ledger returns the lines of account a with an id above afterID, oldest
// first, at most size of them (0: DefaultPageSize; at most MaxPageSize).
// The result is never nil.
func (db *DB) Ledger(ctx context.Context, a Account, afterID, size uint64) ([]api.LedgerLine, error) {
	out := []api.LedgerLine{}
	id, err := toInt64("account id", a.ID)
	if err != nil {
		return out, nil
	}
	after, err := toInt64("after_id", afterID)
	if err != nil {
		return out, nil
	}
	limit, _, _ := Page{Size: size}.limitOffset()
	rows, err := db.ro.QueryContext(ctx,
		`SELECT line_id, at, period_start, contract_id, account_kind, account_id, amount, kind, reference FROM ledger
		 WHERE account_kind = $1 AND account_id = $2 AND line_id > $3 ORDER BY line_id LIMIT $4`,
		a.Kind, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: ledger of %s: %w", a, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			l        api.LedgerLine
			contract sql.NullInt64
			kind     string
			acctID   uint64
		)
		if err := rows.Scan(u64Col{&l.ID}, timeCol{&l.Time}, nullTimeCol{&l.PeriodStart}, &contract, &kind, u64Col{&acctID},
			&l.Amount, &l.Kind, &l.Reference); err != nil {
			return nil, fmt.Errorf("store: ledger of %s: %w", a, err)
		}
		l.ContractID = uint64(contract.Int64)
		l.Account = api.AccountName(kind, acctID)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: ledger of %s: %w", a, err)
	}
	return out, nil
}
