package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/grid4/grid4/registrar/api"
)

const accountCols = `twin_id, public_key, relays, rmb_enc_key, created_at, updated_at`

// scanAccount reads the accountCols of one row.
func scanAccount(row interface{ Scan(...any) error }) (api.Account, error) {
	var (
		a      api.Account
		relays []byte
	)
	if err := row.Scan(u64Col{&a.TwinID}, &a.PublicKey, &relays, &a.RMBEncKey,
		timeCol{&a.CreatedAt}, timeCol{&a.UpdatedAt}); err != nil {
		return api.Account{}, err
	}
	if err := json.Unmarshal(relays, &a.Relays); err != nil {
		return api.Account{}, fmt.Errorf("decode relays: %w", err)
	}
	if a.Relays == nil {
		a.Relays = []string{}
	}
	return a, nil
}

// jsonList encodes a list column; nil encodes as [] rather than null.
func jsonList[T any](v []T) (string, error) {
	if v == nil {
		v = []T{}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// CreateAccount stores a new account and returns it with its TwinID,
// CreatedAt and UpdatedAt assigned (a given TwinID and times are ignored).
// ErrConflict when the public key is taken.
func (db *DB) CreateAccount(ctx context.Context, a api.Account) (api.Account, error) {
	relays, err := jsonList(a.Relays)
	if err != nil {
		return api.Account{}, fmt.Errorf("store: create account: relays: %w", err)
	}
	t := now()
	row := db.rw.QueryRowContext(ctx,
		`INSERT INTO accounts (public_key, relays, rmb_enc_key, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $4) RETURNING `+accountCols,
		a.PublicKey, relays, a.RMBEncKey, db.ts(t))
	out, err := scanAccount(row)
	if err != nil {
		if isUnique(err) {
			return api.Account{}, fmt.Errorf("store: create account: public key %q already registered: %w", a.PublicKey, ErrConflict)
		}
		return api.Account{}, fmt.Errorf("store: create account: %w", err)
	}
	return out, nil
}

// AccountByTwin returns the account of twinID; ErrNotFound if none.
func (db *DB) AccountByTwin(ctx context.Context, twinID uint64) (api.Account, error) {
	id, ok := idArg(twinID)
	if !ok {
		return api.Account{}, fmt.Errorf("store: account %d: %w", twinID, ErrNotFound)
	}
	a, err := scanAccount(db.ro.QueryRowContext(ctx,
		`SELECT `+accountCols+` FROM accounts WHERE twin_id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Account{}, fmt.Errorf("store: account %d: %w", twinID, ErrNotFound)
	}
	if err != nil {
		return api.Account{}, fmt.Errorf("store: account %d: %w", twinID, err)
	}
	return a, nil
}

// TwinKey returns the public key of twinID (base64, as registered) and
// the id of the twin's node, 0 when it has none, in one indexed query: what
// a signed request needs to authenticate its twin and, for a node's own
// routes (uptime reports), to check the node is the twin's (on PostgreSQL
// the query is shared with concurrent calls: see batch.go). ErrNotFound if
// there is no such account.
func (db *DB) TwinKey(ctx context.Context, twinID uint64) (pubB64 string, nodeID uint64, err error) {
	id, ok := idArg(twinID)
	if !ok {
		return "", 0, fmt.Errorf("store: key of twin %d: %w", twinID, ErrNotFound)
	}
	var r twinKeyRow
	if db.batch != nil && db.batch.twinKey != nil {
		r, err = db.batch.twinKey.do(ctx, id)
	} else {
		r, err = db.twinKeyOne(ctx, id)
	}
	if err != nil {
		return "", 0, fmt.Errorf("store: key of twin %d: %w", twinID, err)
	}
	if !r.found {
		return "", 0, fmt.Errorf("store: key of twin %d: %w", twinID, ErrNotFound)
	}
	return r.pub, r.nodeID, nil
}

// AccountByPublicKey returns the account whose public key is pubB64 (the
// base64 text exactly as registered); ErrNotFound if none.
func (db *DB) AccountByPublicKey(ctx context.Context, pubB64 string) (api.Account, error) {
	a, err := scanAccount(db.ro.QueryRowContext(ctx,
		`SELECT `+accountCols+` FROM accounts WHERE public_key = $1`, pubB64))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Account{}, fmt.Errorf("store: account with public key %q: %w", pubB64, ErrNotFound)
	}
	if err != nil {
		return api.Account{}, fmt.Errorf("store: account with public key %q: %w", pubB64, err)
	}
	return a, nil
}

// UpdateAccount replaces the relays (unless relays is nil) and the RMB
// encryption key (unless rmbEncKey is nil) of twinID, and returns the
// account as stored. An empty non-nil relays clears them. ErrNotFound if
// there is no such account.
func (db *DB) UpdateAccount(ctx context.Context, twinID uint64, relays []string, rmbEncKey *string) (api.Account, error) {
	id, ok := idArg(twinID)
	if !ok {
		return api.Account{}, fmt.Errorf("store: update account %d: %w", twinID, ErrNotFound)
	}
	var relaysArg, keyArg any
	if relays != nil {
		s, err := jsonList(relays)
		if err != nil {
			return api.Account{}, fmt.Errorf("store: update account %d: relays: %w", twinID, err)
		}
		relaysArg = s
	}
	if rmbEncKey != nil {
		keyArg = *rmbEncKey
	}
	a, err := scanAccount(db.rw.QueryRowContext(ctx,
		`UPDATE accounts SET relays = COALESCE($2, relays), rmb_enc_key = COALESCE($3, rmb_enc_key), updated_at = $4
		 WHERE twin_id = $1 RETURNING `+accountCols,
		id, relaysArg, keyArg, db.ts(now())))
	if errors.Is(err, sql.ErrNoRows) {
		return api.Account{}, fmt.Errorf("store: update account %d: %w", twinID, ErrNotFound)
	}
	if err != nil {
		return api.Account{}, fmt.Errorf("store: update account %d: %w", twinID, err)
	}
	return a, nil
}
