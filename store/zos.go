package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/grid4/grid4/internal/ctxsleep"
	"github.com/grid4/grid4/registrar/api"
)

const zosCols = `serial, version, safe_to_upgrade, test_farms, set_by, created_at`

// scanZos reads the zosCols of one row.
func scanZos(row interface{ Scan(...any) error }) (api.ZosVersion, error) {
	var (
		v     api.ZosVersion
		farms []byte
	)
	if err := row.Scan(u64Col{&v.Serial}, &v.Version, &v.SafeToUpgrade, &farms, u64Col{&v.SetBy}, timeCol{&v.CreatedAt}); err != nil {
		return api.ZosVersion{}, err
	}
	if err := json.Unmarshal(farms, &v.TestFarms); err != nil {
		return api.ZosVersion{}, fmt.Errorf("decode test_farms: %w", err)
	}
	if v.TestFarms == nil {
		v.TestFarms = []uint64{}
	}
	return v, nil
}

// zosRetries bounds how often SetZosVersion retries after another process
// took the serial it wanted.
const zosRetries = 100

// SetZosVersion records v (Version, SafeToUpgrade, TestFarms, SetBy) as the
// new current ZOS version and returns it with its Serial and CreatedAt.
// TestFarms is stored sorted, without duplicates. The serial is the
// previous one plus one, with no gaps, also when several processes set
// versions at once on one PostgreSQL. ErrNotChanged if version,
// safe_to_upgrade and test_farms equal the current ones.
func (db *DB) SetZosVersion(ctx context.Context, v api.ZosVersion) (api.ZosVersion, error) {
	farms := slices.Clone(v.TestFarms)
	slices.Sort(farms)
	farms = slices.Compact(farms)
	if farms == nil {
		farms = []uint64{}
	}
	for _, f := range farms {
		if _, err := toInt64("test farm", f); err != nil {
			return api.ZosVersion{}, fmt.Errorf("store: set zos version %q: %w", v.Version, err)
		}
	}
	setBy, err := toInt64("set_by", v.SetBy)
	if err != nil {
		return api.ZosVersion{}, fmt.Errorf("store: set zos version %q: %w", v.Version, err)
	}
	farmsJSON, err := json.Marshal(farms)
	if err != nil {
		return api.ZosVersion{}, fmt.Errorf("store: set zos version %q: %w", v.Version, err)
	}
	for attempt := 0; ; attempt++ {
		var out api.ZosVersion
		err := db.inTx(ctx, func(tx *sql.Tx) error {
			cur, err := scanZos(tx.QueryRowContext(ctx, `SELECT `+zosCols+` FROM zos_versions ORDER BY serial DESC LIMIT 1`))
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return err
			case cur.Version == v.Version && cur.SafeToUpgrade == v.SafeToUpgrade && slices.Equal(cur.TestFarms, farms):
				return fmt.Errorf("version %q is already the current one (serial %d): %w", v.Version, cur.Serial, ErrNotChanged)
			}
			// Serial = current + 1. A concurrent writer that committed the
			// same serial first makes this INSERT fail on the primary key;
			// the whole transaction is then retried and sees its row.
			out, err = scanZos(tx.QueryRowContext(ctx,
				`INSERT INTO zos_versions (serial, version, safe_to_upgrade, test_farms, set_by, created_at)
				 VALUES ($1, $2, $3, $4, $5, $6) RETURNING `+zosCols,
				int64(cur.Serial)+1, v.Version, v.SafeToUpgrade, string(farmsJSON), setBy, db.ts(now())))
			if err != nil || !db.pg() {
				return err
			}
			// Every registrar process on the database drops its cached
			// version when this commits (see zoscache.go).
			_, err = tx.ExecContext(ctx, `SELECT pg_notify('`+zosChannel+`', current_schema())`)
			return err
		})
		// Whatever happened, this process reads the version afresh.
		db.zos.invalidateKeep()
		switch {
		case err == nil:
			return out, nil
		case isUnique(err) && attempt < zosRetries:
			if err := ctxsleep.Sleep(ctx, time.Duration(attempt+1)*time.Millisecond); err != nil {
				return api.ZosVersion{}, fmt.Errorf("store: set zos version %q: %w", v.Version, err)
			}
		case isUnique(err):
			return api.ZosVersion{}, fmt.Errorf("store: set zos version %q: too many concurrent changes: %w", v.Version, ErrConflict)
		default:
			return api.ZosVersion{}, fmt.Errorf("store: set zos version %q: %w", v.Version, err)
		}
	}
}

// readZosVersion reads the current ZOS version from the database;
// ErrNotFound if none was ever set.
func (db *DB) readZosVersion(ctx context.Context) (api.ZosVersion, error) {
	v, err := scanZos(db.ro.QueryRowContext(ctx, `SELECT `+zosCols+` FROM zos_versions ORDER BY serial DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return api.ZosVersion{}, fmt.Errorf("store: current zos version: never set: %w", ErrNotFound)
	}
	if err != nil {
		return api.ZosVersion{}, fmt.Errorf("store: current zos version: %w", err)
	}
	return v, nil
}

// ZosVersionHistory returns a page of the ZOS versions ever set, newest
// (highest serial) first. The result is never nil.
func (db *DB) ZosVersionHistory(ctx context.Context, page Page) ([]api.ZosVersion, error) {
	out := []api.ZosVersion{}
	limit, offset, ok := page.limitOffset()
	if !ok {
		return out, nil
	}
	rows, err := db.ro.QueryContext(ctx,
		`SELECT `+zosCols+` FROM zos_versions ORDER BY serial DESC LIMIT $1 OFFSET $2`, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("store: zos version history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		v, err := scanZos(rows)
		if err != nil {
			return nil, fmt.Errorf("store: zos version history: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: zos version history: %w", err)
	}
	return out, nil
}

// UseNonce records that keyID used nonce, until expires, for replay
// protection shared by every registrar process on the database. It returns
// an error wrapping ErrConflict if the pair is recorded and not expired; an
// expired record is reused. The check and the record are one atomic
// statement (on PostgreSQL, shared with concurrent calls: see batch.go).
func (db *DB) UseNonce(ctx context.Context, keyID, nonce string, expires time.Time) error {
	if db.batch != nil {
		ok, err := db.batch.nonce.do(ctx, nonceArgs{keyID: keyID, nonce: nonce, expires: expires})
		if err != nil {
			return fmt.Errorf("store: use nonce: %w", err)
		}
		if !ok {
			return fmt.Errorf("store: use nonce %q of key %q: already used: %w", nonce, keyID, ErrConflict)
		}
		return nil
	}
	ok, err := db.useNonceOne(ctx, keyID, nonce, expires)
	if err != nil {
		return fmt.Errorf("store: use nonce: %w", err)
	}
	if !ok {
		return fmt.Errorf("store: use nonce %q of key %q: already used: %w", nonce, keyID, ErrConflict)
	}
	return nil
}

// useNonceSQL records nonce $2 of key $1 until $3 unless a record live at
// $4 exists; it affects one row when it records.
const useNonceSQL = `INSERT INTO nonces (key_id, nonce, expires_at) VALUES ($1, $2, $3)
	ON CONFLICT (key_id, nonce) DO UPDATE SET expires_at = excluded.expires_at
	WHERE nonces.expires_at <= $4`

// useNonceOne records one nonce; false means it is already recorded and
// live.
func (db *DB) useNonceOne(ctx context.Context, keyID, nonce string, expires time.Time) (bool, error) {
	res, err := db.rw.ExecContext(ctx, useNonceSQL, keyID, nonce, db.ts(expires), db.ts(now()))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// PruneNonces deletes the nonces that expired at or before now and returns
// how many it deleted. On PostgreSQL it then vacuums the table (unless
// another process is vacuuming it): one row per signed request is
// deleted, and without a vacuum the space of the deleted rows is not
// reused, so the table would grow for as long as autovacuum does not run
// (it may be off, or busy elsewhere). The table holds a few minutes of
// requests, so the vacuum is short.
func (db *DB) PruneNonces(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.rw.ExecContext(ctx, `DELETE FROM nonces WHERE expires_at <= $1`, db.ts(now))
	if err != nil {
		return 0, fmt.Errorf("store: prune nonces: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune nonces: %w", err)
	}
	if n > 0 && db.pg() {
		if _, err := db.rw.ExecContext(ctx, `VACUUM (SKIP_LOCKED) nonces`); err != nil {
			return n, fmt.Errorf("store: prune nonces: vacuum: %w", err)
		}
	}
	return n, nil
}
