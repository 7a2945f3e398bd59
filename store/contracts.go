package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// refusal is a rule that refused a change: its text says which, and it
// matches ErrConflict.
type refusal string

func (r refusal) Error() string { return string(r) }

// Is makes a refusal match ErrConflict.
func (r refusal) Is(target error) bool { return target == ErrConflict }

// Refusals of CreateContract, UpdateContract and Credit; each matches
// ErrConflict, and its text is fit for the caller.
var (
	// ErrNodeRented: the node is rented by another twin.
	ErrNodeRented error = refusal("the node is rented")
	// ErrRentedAlready: a rent contract was asked for a node the twin
	// rents already.
	ErrRentedAlready error = refusal("the twin rents the node already: one rent contract covers it")
	// ErrNodeInUse: a rent contract was asked for a node where another
	// twin has live contracts.
	ErrNodeInUse error = refusal("another twin has contracts on the node")
	// ErrDedicated: a node contract on a dedicated farm's node that the
	// twin does not rent.
	ErrDedicated error = refusal("the node is in a dedicated farm: rent it first")
	// ErrContractDeleted: the contract is deleted and can no longer change.
	ErrContractDeleted error = refusal("the contract is deleted")
	// ErrNotNodeContract: only node contracts have a hash and resources.
	ErrNotNodeContract error = refusal("not a node contract")
	// ErrCreditReused: a credit's reference was used for the twin with
	// another amount.
	ErrCreditReused error = refusal("the reference was credited with another amount")
)

// lockRow is the dialect's row lock for a SELECT in a write transaction
// (SQLite's IMMEDIATE transaction holds the database already).
func (db *DB) lockRow() string {
	if db.pg() {
		return " FOR UPDATE"
	}
	return ""
}

// SetFarmPricing appends a price setting of farm farmID made at at.
// ErrNotFound if there is no such farm; ErrConflict if the farm has a
// setting at that very time already.
func (db *DB) SetFarmPricing(ctx context.Context, farmID uint64, at time.Time, p api.Prices) (api.PricingEntry, error) {
	id, ok := idArg(farmID)
	if !ok {
		return api.PricingEntry{}, fmt.Errorf("store: set pricing of farm %d: %w", farmID, ErrNotFound)
	}
	for _, v := range []int64{p.CRU, p.MRU, p.SRU, p.HRU, p.IPv4} {
		if v < 0 {
			return api.PricingEntry{}, fmt.Errorf("store: set pricing of farm %d: negative price: %w", farmID, ErrInvalid)
		}
	}
	at = utc(at)
	_, err := db.rw.ExecContext(ctx,
		`INSERT INTO farm_pricing (farm_id, set_at, cru, mru, sru, hru, ipv4) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		id, db.ts(at), p.CRU, p.MRU, p.SRU, p.HRU, p.IPv4)
	switch {
	case err == nil:
		return api.PricingEntry{SetAt: at, Prices: p}, nil
	case isForeignKey(err):
		return api.PricingEntry{}, fmt.Errorf("store: set pricing of farm %d: %w", farmID, ErrNotFound)
	case isUnique(err):
		return api.PricingEntry{}, fmt.Errorf("store: set pricing of farm %d: a setting at %s exists: %w", farmID, at.Format(time.RFC3339Nano), ErrConflict)
	default:
		return api.PricingEntry{}, fmt.Errorf("store: set pricing of farm %d: %w", farmID, err)
	}
}

// maxPricingHistory bounds FarmPricing's answer.
const maxPricingHistory = 100

// FarmPricing returns the price settings of farm farmID, newest first (at
// most 100). ErrNotFound if there is no such farm.
func (db *DB) FarmPricing(ctx context.Context, farmID uint64) ([]api.PricingEntry, error) {
	if _, err := db.Farm(ctx, farmID); err != nil {
		return nil, fmt.Errorf("store: pricing of farm %d: %w", farmID, err)
	}
	rows, err := db.ro.QueryContext(ctx,
		`SELECT set_at, cru, mru, sru, hru, ipv4 FROM farm_pricing WHERE farm_id = $1 ORDER BY set_at DESC LIMIT $2`,
		int64(farmID), maxPricingHistory)
	if err != nil {
		return nil, fmt.Errorf("store: pricing of farm %d: %w", farmID, err)
	}
	defer rows.Close()
	out := []api.PricingEntry{}
	for rows.Next() {
		var e api.PricingEntry
		p := &e.Prices
		if err := rows.Scan(timeCol{&e.SetAt}, &p.CRU, &p.MRU, &p.SRU, &p.HRU, &p.IPv4); err != nil {
			return nil, fmt.Errorf("store: pricing of farm %d: %w", farmID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pricing of farm %d: %w", farmID, err)
	}
	return out, nil
}

// SetFarmSLA sets farm farmID's uptime promise. ErrNotFound if there is no
// such farm; ErrInvalid for a percentage above 100.
func (db *DB) SetFarmSLA(ctx context.Context, farmID uint64, at time.Time, s api.SLA) error {
	id, ok := idArg(farmID)
	if !ok {
		return fmt.Errorf("store: set SLA of farm %d: %w", farmID, ErrNotFound)
	}
	if s.UptimePercent > 100 || s.DiscountPercent > 100 {
		return fmt.Errorf("store: set SLA of farm %d: percentage above 100: %w", farmID, ErrInvalid)
	}
	return db.execOwned(ctx, fmt.Sprintf("set SLA of farm %d", farmID),
		`INSERT INTO farm_sla (farm_id, uptime_percent, discount_percent, updated_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (farm_id) DO UPDATE SET uptime_percent = excluded.uptime_percent,
		   discount_percent = excluded.discount_percent, updated_at = excluded.updated_at`,
		id, int64(s.UptimePercent), int64(s.DiscountPercent), db.ts(at))
}

// FarmSLA returns farm farmID's uptime promise (zero when it made none).
// ErrNotFound if there is no such farm.
func (db *DB) FarmSLA(ctx context.Context, farmID uint64) (api.SLA, error) {
	if _, err := db.Farm(ctx, farmID); err != nil {
		return api.SLA{}, fmt.Errorf("store: SLA of farm %d: %w", farmID, err)
	}
	var up, off int64
	err := db.ro.QueryRowContext(ctx, `SELECT uptime_percent, discount_percent FROM farm_sla WHERE farm_id = $1`, int64(farmID)).Scan(&up, &off)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return api.SLA{}, nil
	case err != nil:
		return api.SLA{}, fmt.Errorf("store: SLA of farm %d: %w", farmID, err)
	}
	return api.SLA{UptimePercent: uint32(up), DiscountPercent: uint32(off)}, nil
}

const contractCols = `contract_id, twin_id, node_id, type, deployment_hash, cru, mru, sru, hru, ipv4,
	state, created_at, updated_at, grace_since, deleted_at, deleted_reason, billed_until`

// scanContract reads the contractCols of one row.
func scanContract(row interface{ Scan(...any) error }) (api.Contract, error) {
	var c api.Contract
	r := &c.Resources
	err := row.Scan(u64Col{&c.ContractID}, u64Col{&c.TwinID}, u64Col{&c.NodeID}, &c.Type, &c.DeploymentHash,
		u64Col{&r.CRU}, u64Col{&r.MRU}, u64Col{&r.SRU}, u64Col{&r.HRU}, u64Col{&r.IPv4},
		&c.State, timeCol{&c.CreatedAt}, timeCol{&c.UpdatedAt}, nullTimeCol{&c.GraceSince}, nullTimeCol{&c.DeletedAt},
		&c.DeletedReason, timeCol{&c.BilledUntil})
	return c, err
}

// capacityArgs converts resources for storage.
func capacityArgs(r api.Capacity) ([]any, error) {
	out := make([]any, 0, 5)
	for _, f := range []struct {
		name string
		v    uint64
	}{{"cru", r.CRU}, {"mru", r.MRU}, {"sru", r.SRU}, {"hru", r.HRU}, {"ipv4", r.IPv4}} {
		v, err := toInt64(f.name, f.v)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// CreateContract stores a new active contract of c.TwinID on c.NodeID
// (Type, DeploymentHash and Resources from c) made at at, billed from the
// period containing at. The rules are checked under the node's lock, so
// concurrent requests on one node are decided one after the other:
// ErrNotFound if the twin or node does not exist; ErrNodeRented,
// ErrRentedAlready, ErrNodeInUse or ErrDedicated (all ErrConflict) when
// the node is not available to the twin.
func (db *DB) CreateContract(ctx context.Context, c api.Contract, at time.Time) (api.Contract, error) {
	node, ok := idArg(c.NodeID)
	if !ok {
		return api.Contract{}, fmt.Errorf("store: create contract: node %d: %w", c.NodeID, ErrNotFound)
	}
	twin, ok := idArg(c.TwinID)
	if !ok {
		return api.Contract{}, fmt.Errorf("store: create contract: twin %d: %w", c.TwinID, ErrNotFound)
	}
	res, err := capacityArgs(c.Resources)
	if err != nil {
		return api.Contract{}, fmt.Errorf("store: create contract: %w", err)
	}
	at = utc(at)
	var out api.Contract
	err = db.inTx(ctx, func(tx *sql.Tx) error {
		if err := db.checkNodeAvailable(ctx, tx, node, twin, c.Type); err != nil {
			return err
		}
		vals := append([]any{twin, node, c.Type, c.DeploymentHash}, res...)
		vals = append(vals, db.ts(at), db.ts(api.Period(at)))
		var err error
		out, err = scanContract(tx.QueryRowContext(ctx,
			`INSERT INTO contracts (twin_id, node_id, type, deployment_hash, cru, mru, sru, hru, ipv4,
			   state, created_at, updated_at, billed_until)
			 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'active', $10, $10, $11) RETURNING `+contractCols, vals...))
		switch {
		case isUnique(err):
			return ErrNodeRented
		case isForeignKey(err):
			return fmt.Errorf("twin %d: %w", c.TwinID, ErrNotFound)
		}
		return err
	})
	if err != nil {
		return api.Contract{}, fmt.Errorf("store: create %s contract on node %d: %w", c.Type, c.NodeID, err)
	}
	return out, nil
}

// checkNodeAvailable decides, under node's row lock, whether twin may
// make a contract of type typ on node (see CreateContract).
func (db *DB) checkNodeAvailable(ctx context.Context, tx *sql.Tx, node, twin int64, typ string) error {
	var dedicated bool
	err := tx.QueryRowContext(ctx,
		`SELECT f.dedicated FROM nodes n JOIN farms f ON f.farm_id = n.farm_id WHERE n.node_id = $1`+db.lockRowOf("n"), node).Scan(&dedicated)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("node %d: %w", node, ErrNotFound)
	}
	if err != nil {
		return err
	}
	var renter int64
	err = tx.QueryRowContext(ctx,
		`SELECT twin_id FROM contracts WHERE node_id = $1 AND type = 'rent' AND state <> 'deleted'`, node).Scan(&renter)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	switch {
	case renter != 0 && renter != twin:
		return ErrNodeRented
	case typ == api.ContractRent && renter == twin:
		return ErrRentedAlready
	case typ == api.ContractNode && dedicated && renter != twin:
		return ErrDedicated
	case typ == api.ContractRent:
		var others bool
		err := tx.QueryRowContext(ctx,
			`SELECT EXISTS (SELECT 1 FROM contracts WHERE node_id = $1 AND state <> 'deleted' AND twin_id <> $2)`, node, twin).Scan(&others)
		if err != nil {
			return err
		}
		if others {
			return ErrNodeInUse
		}
	}
	return nil
}

// lockRowOf is lockRow for the table alias t of a join.
func (db *DB) lockRowOf(t string) string {
	if db.pg() {
		return " FOR UPDATE OF " + t
	}
	return ""
}

// Contract returns contract id; ErrNotFound if none.
func (db *DB) Contract(ctx context.Context, id uint64) (api.Contract, error) {
	cid, ok := idArg(id)
	if !ok {
		return api.Contract{}, fmt.Errorf("store: contract %d: %w", id, ErrNotFound)
	}
	c, err := scanContract(db.ro.QueryRowContext(ctx, `SELECT `+contractCols+` FROM contracts WHERE contract_id = $1`, cid))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Contract{}, fmt.Errorf("store: contract %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return api.Contract{}, fmt.Errorf("store: contract %d: %w", id, err)
	}
	return c, nil
}

// ContractFilter selects contracts for ListContracts; zero fields match
// every contract.
type ContractFilter struct {
	TwinID, NodeID uint64
	// State is "active", "grace", "deleted" or "" (any).
	State string
	// DeletedSince, when not zero, keeps deleted contracts only when they
	// were deleted at or after it (what a node needs to follow).
	DeletedSince time.Time
	// AfterID keeps contracts with a larger id (keyset paging).
	AfterID uint64
	// Size is the page size (0: DefaultPageSize; at most MaxPageSize).
	Size uint64
}

// ListContracts returns the contracts matching f in contract_id order.
// The result is never nil.
func (db *DB) ListContracts(ctx context.Context, f ContractFilter) ([]api.Contract, error) {
	out := []api.Contract{}
	limit, _, _ := Page{Size: f.Size}.limitOffset()
	var (
		a     args
		conds []string
	)
	for _, c := range []struct {
		col string
		v   uint64
	}{{"twin_id", f.TwinID}, {"node_id", f.NodeID}} {
		if c.v == 0 {
			continue
		}
		id, ok := idArg(c.v)
		if !ok {
			return out, nil
		}
		conds = append(conds, c.col+" = "+a.add(id))
	}
	if f.State != "" {
		conds = append(conds, "state = "+a.add(f.State))
	}
	if !f.DeletedSince.IsZero() {
		conds = append(conds, "(state <> 'deleted' OR deleted_at >= "+a.add(db.ts(f.DeletedSince))+")")
	}
	if f.AfterID > 0 {
		after, err := toInt64("after_id", f.AfterID)
		if err != nil {
			return out, nil
		}
		conds = append(conds, "contract_id > "+a.add(after))
	}
	rows, err := db.ro.QueryContext(ctx,
		`SELECT `+contractCols+` FROM contracts`+where(conds)+` ORDER BY contract_id LIMIT `+a.add(limit), a...)
	if err != nil {
		return nil, fmt.Errorf("store: list contracts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanContract(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list contracts: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list contracts: %w", err)
	}
	return out, nil
}

// UpdateContract changes the deployment hash and resources of node
// contract id (nil: unchanged). ErrNotFound if there is no such contract;
// ErrContractDeleted or ErrNotNodeContract (ErrConflict) otherwise.
func (db *DB) UpdateContract(ctx context.Context, id uint64, hash *string, res *api.Capacity, at time.Time) (api.Contract, error) {
	cid, ok := idArg(id)
	if !ok {
		return api.Contract{}, fmt.Errorf("store: update contract %d: %w", id, ErrNotFound)
	}
	var h any
	if hash != nil {
		h = *hash
	}
	rv := []any{nil, nil, nil, nil, nil}
	if res != nil {
		var err error
		if rv, err = capacityArgs(*res); err != nil {
			return api.Contract{}, fmt.Errorf("store: update contract %d: %w", id, err)
		}
	}
	var out api.Contract
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := scanContract(tx.QueryRowContext(ctx, `SELECT `+contractCols+` FROM contracts WHERE contract_id = $1`+db.lockRow(), cid))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrNotFound
		case err != nil:
			return err
		case cur.State == api.StateDeleted:
			return ErrContractDeleted
		case cur.Type != api.ContractNode:
			return ErrNotNodeContract
		}
		vals := append([]any{cid, h}, rv...)
		vals = append(vals, db.ts(at))
		out, err = scanContract(tx.QueryRowContext(ctx,
			`UPDATE contracts SET deployment_hash = COALESCE($2, deployment_hash), cru = COALESCE($3, cru),
			   mru = COALESCE($4, mru), sru = COALESCE($5, sru), hru = COALESCE($6, hru), ipv4 = COALESCE($7, ipv4),
			   updated_at = $8
			 WHERE contract_id = $1 RETURNING `+contractCols, vals...))
		return err
	})
	if err != nil {
		return api.Contract{}, fmt.Errorf("store: update contract %d: %w", id, err)
	}
	return out, nil
}

// DeleteContract ends contract id at at for reason (api.ReasonCancelled,
// ...). Deleting a deleted contract changes nothing and returns it as it
// is. ErrNotFound if there is no such contract.
func (db *DB) DeleteContract(ctx context.Context, id uint64, reason string, at time.Time) (api.Contract, error) {
	cid, ok := idArg(id)
	if !ok {
		return api.Contract{}, fmt.Errorf("store: delete contract %d: %w", id, ErrNotFound)
	}
	// An active contract is still billed for its periods up to and with
	// the one it ends in (see billClaim); one in grace is not (the
	// periods in grace are not billed): its billed_until moves past them.
	c, err := scanContract(db.rw.QueryRowContext(ctx,
		`UPDATE contracts SET state = 'deleted', deleted_at = $2, deleted_reason = $3, updated_at = $2, grace_since = NULL,
		   billed_until = CASE WHEN state = 'grace' AND billed_until < $4 THEN $4 ELSE billed_until END
		 WHERE contract_id = $1 AND state <> 'deleted' RETURNING `+contractCols,
		cid, db.ts(at), reason, db.ts(api.Period(at).Add(time.Hour))))
	if errors.Is(err, sql.ErrNoRows) {
		return db.Contract(ctx, id)
	}
	if err != nil {
		return api.Contract{}, fmt.Errorf("store: delete contract %d: %w", id, err)
	}
	return c, nil
}

// ErrUsageChanged: a usage report for a contract and period already
// reported with other figures (matches ErrConflict).
var ErrUsageChanged error = refusal("usage already reported with other figures")

// UsageError names the contract for which RecordUsage refused a report.
type UsageError struct {
	ContractID uint64
	Err        error
}

func (e *UsageError) Error() string { return fmt.Sprintf("contract %d: %v", e.ContractID, e.Err) }

// Unwrap returns the reason (ErrNotFound, ErrNotNodesContract,
// ErrUsageChanged, ...).
func (e *UsageError) Unwrap() error { return e.Err }

// ErrNotNodesContract: a node reported usage of a contract on another node.
var ErrNotNodesContract = errors.New("the contract is not on this node")

// RecordUsage stores what node nodeID's contracts used during the period
// starting at period, received at at. It is idempotent per contract and
// period: figures already reported are accepted again; other figures fail
// with ErrUsageChanged and nothing of the report is stored. A contract
// that does not exist gives ErrNotFound, one on another node
// ErrNotNodesContract; each within a *UsageError naming the contract.
func (db *DB) RecordUsage(ctx context.Context, nodeID uint64, period time.Time, usage []api.Usage, at time.Time) error {
	node, ok := idArg(nodeID)
	if !ok {
		return fmt.Errorf("store: record usage of node %d: %w", nodeID, ErrNotFound)
	}
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for _, u := range usage {
			if err := db.recordOneUsage(ctx, tx, node, period, u, at); err != nil {
				return &UsageError{ContractID: u.ContractID, Err: err}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record usage of node %d for %s: %w", nodeID, period.UTC().Format(time.RFC3339), err)
	}
	return nil
}

// recordOneUsage is one contract of RecordUsage.
func (db *DB) recordOneUsage(ctx context.Context, tx *sql.Tx, node int64, period time.Time, u api.Usage, at time.Time) error {
	cid, ok := idArg(u.ContractID)
	if !ok {
		return ErrNotFound
	}
	var owner int64
	err := tx.QueryRowContext(ctx, `SELECT node_id FROM contracts WHERE contract_id = $1`, cid).Scan(&owner)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ErrNotFound
	case err != nil:
		return err
	case owner != node:
		return ErrNotNodesContract
	}
	vals, err := capacityArgs(u.Capacity)
	if err != nil {
		return err
	}
	vals = append([]any{cid, db.ts(period)}, vals...)
	vals = append(vals, db.ts(at))
	res, err := tx.ExecContext(ctx,
		`INSERT INTO contract_usage (contract_id, period_start, cru, mru, sru, hru, ipv4, reported_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (contract_id, period_start) DO NOTHING`, vals...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var same bool
	err = tx.QueryRowContext(ctx,
		`SELECT cru = $3 AND mru = $4 AND sru = $5 AND hru = $6 AND ipv4 = $7 FROM contract_usage
		 WHERE contract_id = $1 AND period_start = $2`, vals[:7]...).Scan(&same)
	if err != nil {
		return err
	}
	if !same {
		return ErrUsageChanged
	}
	return nil
}
