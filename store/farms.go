package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/grid4/grid4/registrar/api"
)

const farmCols = `farm_id, farm_name, twin_id, stellar_address, dedicated, created_at, updated_at`

// scanFarm reads the farmCols of one row.
func scanFarm(row interface{ Scan(...any) error }) (api.Farm, error) {
	var f api.Farm
	err := row.Scan(u64Col{&f.FarmID}, &f.FarmName, u64Col{&f.TwinID}, &f.StellarAddress, &f.Dedicated,
		timeCol{&f.CreatedAt}, timeCol{&f.UpdatedAt})
	return f, err
}

// FarmFilter selects farms for ListFarms. Zero fields match every farm.
type FarmFilter struct {
	FarmID uint64
	TwinID uint64
	// NameContains matches farm names containing it, case-insensitively.
	NameContains string
}

// CreateFarm stores a new farm and returns it with its FarmID, CreatedAt
// and UpdatedAt assigned. ErrConflict when the name is taken (names are
// unique case-insensitively); ErrNotFound when the owning twin does not
// exist.
func (db *DB) CreateFarm(ctx context.Context, f api.Farm) (api.Farm, error) {
	twin, ok := idArg(f.TwinID)
	if !ok {
		return api.Farm{}, fmt.Errorf("store: create farm %q: twin %d: %w", f.FarmName, f.TwinID, ErrNotFound)
	}
	t := now()
	out, err := scanFarm(db.rw.QueryRowContext(ctx,
		`INSERT INTO farms (farm_name, twin_id, stellar_address, dedicated, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $5) RETURNING `+farmCols,
		f.FarmName, twin, f.StellarAddress, f.Dedicated, db.ts(t)))
	switch {
	case err == nil:
		return out, nil
	case isUnique(err):
		return api.Farm{}, fmt.Errorf("store: create farm %q: name taken: %w", f.FarmName, ErrConflict)
	case isForeignKey(err):
		return api.Farm{}, fmt.Errorf("store: create farm %q: twin %d: %w", f.FarmName, f.TwinID, ErrNotFound)
	default:
		return api.Farm{}, fmt.Errorf("store: create farm %q: %w", f.FarmName, err)
	}
}

// Farm returns farm farmID; ErrNotFound if none.
func (db *DB) Farm(ctx context.Context, farmID uint64) (api.Farm, error) {
	id, ok := idArg(farmID)
	if !ok {
		return api.Farm{}, fmt.Errorf("store: farm %d: %w", farmID, ErrNotFound)
	}
	f, err := scanFarm(db.ro.QueryRowContext(ctx, `SELECT `+farmCols+` FROM farms WHERE farm_id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Farm{}, fmt.Errorf("store: farm %d: %w", farmID, ErrNotFound)
	}
	if err != nil {
		return api.Farm{}, fmt.Errorf("store: farm %d: %w", farmID, err)
	}
	return f, nil
}

// ListFarms returns a page of the farms matching filter, in farm_id order.
// The result is never nil.
func (db *DB) ListFarms(ctx context.Context, filter FarmFilter, page Page) ([]api.Farm, error) {
	out := []api.Farm{}
	limit, offset, ok := page.limitOffset()
	if !ok {
		return out, nil
	}
	var (
		a     args
		conds []string
	)
	if filter.FarmID != 0 {
		id, ok := idArg(filter.FarmID)
		if !ok {
			return out, nil
		}
		conds = append(conds, "farm_id = "+a.add(id))
	}
	if filter.TwinID != 0 {
		id, ok := idArg(filter.TwinID)
		if !ok {
			return out, nil
		}
		conds = append(conds, "twin_id = "+a.add(id))
	}
	if filter.NameContains != "" {
		conds = append(conds, `lower(farm_name) LIKE `+a.add(likePattern(filter.NameContains))+` ESCAPE '\'`)
	}
	q := `SELECT ` + farmCols + ` FROM farms` + where(conds) +
		` ORDER BY farm_id LIMIT ` + a.add(limit) + ` OFFSET ` + a.add(offset)
	rows, err := db.ro.QueryContext(ctx, q, a...)
	if err != nil {
		return nil, fmt.Errorf("store: list farms: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		f, err := scanFarm(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list farms: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list farms: %w", err)
	}
	return out, nil
}

// UpdateFarm changes the non-nil fields of u on farm farmID and returns the
// farm as stored. ErrNotFound if there is no such farm; ErrConflict if the
// new name is taken.
func (db *DB) UpdateFarm(ctx context.Context, farmID uint64, u api.UpdateFarmRequest) (api.Farm, error) {
	id, ok := idArg(farmID)
	if !ok {
		return api.Farm{}, fmt.Errorf("store: update farm %d: %w", farmID, ErrNotFound)
	}
	var name, stellar, dedicated any
	if u.FarmName != nil {
		name = *u.FarmName
	}
	if u.StellarAddress != nil {
		stellar = *u.StellarAddress
	}
	if u.Dedicated != nil {
		dedicated = *u.Dedicated
	}
	f, err := scanFarm(db.rw.QueryRowContext(ctx,
		`UPDATE farms SET farm_name = COALESCE($2, farm_name), stellar_address = COALESCE($3, stellar_address),
		   dedicated = COALESCE($4, dedicated), updated_at = $5
		 WHERE farm_id = $1 RETURNING `+farmCols,
		id, name, stellar, dedicated, db.ts(now())))
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, sql.ErrNoRows):
		return api.Farm{}, fmt.Errorf("store: update farm %d: %w", farmID, ErrNotFound)
	case isUnique(err):
		return api.Farm{}, fmt.Errorf("store: update farm %d: name %q taken: %w", farmID, name, ErrConflict)
	default:
		return api.Farm{}, fmt.Errorf("store: update farm %d: %w", farmID, err)
	}
}
