package store

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// maxCachedStmts bounds a pool's prepared-statement cache. The store's
// query texts form a small fixed set (list filters combine into a few dozen
// variants), so the bound is only a safety net.
const maxCachedStmts = 256

// pool is a connection pool that, when cache is set, prepares each query
// text once and reuses the statement. SQLite (modernc) re-parses the SQL
// text of every unprepared call, which costs more than executing these
// small queries; pgx caches prepared statements by itself, so PostgreSQL
// pools do not cache here.
type pool struct {
	*sql.DB
	cache bool
	stmts sync.Map // query text → *sql.Stmt
	n     atomic.Int64
}

func newPool(db *sql.DB, cache bool) *pool { return &pool{DB: db, cache: cache} }

// stmt returns the cached statement for q, preparing it if needed; nil when
// caching is off, full, or the statement cannot be prepared (the caller
// then runs q unprepared, which reports any error).
func (p *pool) stmt(ctx context.Context, q string) *sql.Stmt {
	if !p.cache {
		return nil
	}
	if s, ok := p.stmts.Load(q); ok {
		return s.(*sql.Stmt)
	}
	if p.n.Load() >= maxCachedStmts {
		return nil
	}
	s, err := p.DB.PrepareContext(ctx, q)
	if err != nil {
		return nil
	}
	if prev, loaded := p.stmts.LoadOrStore(q, s); loaded {
		s.Close()
		return prev.(*sql.Stmt)
	}
	p.n.Add(1)
	return s
}

// QueryRowContext is sql.DB's, through the statement cache.
func (p *pool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if s := p.stmt(ctx, q); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return p.DB.QueryRowContext(ctx, q, args...)
}

// QueryContext is sql.DB's, through the statement cache.
func (p *pool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if s := p.stmt(ctx, q); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return p.DB.QueryContext(ctx, q, args...)
}

// ExecContext is sql.DB's, through the statement cache.
func (p *pool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if s := p.stmt(ctx, q); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return p.DB.ExecContext(ctx, q, args...)
}

// txStmt returns q prepared for tx, a transaction on p: the cached
// statement if there is one, else q prepared on tx for this transaction
// only (preparing through the pool would wait for the connection tx
// holds, the only one of a SQLite writer). warm caches it afterwards.
func (p *pool) txStmt(ctx context.Context, tx *sql.Tx, q string) (*sql.Stmt, error) {
	if s, ok := p.stmts.Load(q); ok {
		return tx.StmtContext(ctx, s.(*sql.Stmt)), nil
	}
	return tx.PrepareContext(ctx, q)
}

// warm prepares and caches q, outside any transaction.
func (p *pool) warm(ctx context.Context, q string) { p.stmt(ctx, q) }

// Close closes the cached statements and the pool.
func (p *pool) Close() error {
	p.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		p.stmts.Delete(k)
		return true
	})
	return p.DB.Close()
}
