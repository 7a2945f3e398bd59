package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/grid4/grid4/registrar/api"
)

// The current ZOS version is read by every node every report interval and
// changes a few times a year, so CurrentZosVersion answers from memory.
// What makes that safe is invalidation:
//
//   - a SetZosVersion of this process invalidates the cache when it
//     commits;
//   - on PostgreSQL, SetZosVersion also sends a notification on
//     zosChannel in its transaction (delivered when it commits), and
//     every process that serves the version LISTENs on a connection of
//     its own: the notification invalidates its cache at once. While that
//     connection is down (and until it listens again) nothing is cached:
//     every call reads the database, as it would without a cache;
//   - SQLite serves one process, so its own writes are all there is.
//
// A read racing with an invalidation never caches what it read (the
// generation it started with has gone), so an invalidation is never undone
// by a slower read of the old value.

// zosChannel is the PostgreSQL notification channel of version changes;
// the payload is the schema whose version changed (several registrars may
// share a database in different schemas).
const zosChannel = "grid4_zos_version"

// zosListenRetry bounds the wait before the listener connects again.
const zosListenRetry = 5 * time.Second

// zosCache is the in-memory current version. The zero value caches
// nothing until enable is called.
type zosCache struct {
	mu sync.Mutex
	// gen changes on every invalidation.
	gen uint64
	// live is true while the cache may be used: always on SQLite, on
	// PostgreSQL while the listener is listening.
	live bool
	have bool
	v    api.ZosVersion
	err  error // ErrNotFound-wrapped when no version was ever set
}

// get returns the cached answer, if there is one.
func (c *zosCache) get() (api.ZosVersion, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || !c.have {
		return api.ZosVersion{}, nil, false
	}
	return c.v, c.err, true
}

// generation returns the current generation, to pass to put.
func (c *zosCache) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put caches an answer read at generation gen, unless an invalidation
// came since.
func (c *zosCache) put(gen uint64, v api.ZosVersion, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen && c.live {
		c.v, c.err, c.have = v, err, true
	}
}

// invalidate drops the cached answer; live says whether the cache may be
// used from now on.
func (c *zosCache) invalidate(live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.have = false
	c.live = live
}

// invalidateKeep drops the cached answer and keeps live as it is.
func (c *zosCache) invalidateKeep() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.have = false
}

// CurrentZosVersion returns the current ZOS version; ErrNotFound if none
// was ever set. It answers from memory while that is known to be current
// (see zoscache.go); the first call on PostgreSQL starts listening for
// changes made by other processes.
func (db *DB) CurrentZosVersion(ctx context.Context) (api.ZosVersion, error) {
	if db.listen != nil {
		db.listen.start(db.listenZos)
	}
	if v, err, ok := db.zos.get(); ok {
		return v, err
	}
	gen := db.zos.generation()
	v, err := db.readZosVersion(ctx)
	if err == nil || errors.Is(err, ErrNotFound) {
		db.zos.put(gen, v, err)
	}
	return v, err
}

// listenZos keeps a connection listening on zosChannel until ctx ends,
// invalidating the cache on every notification for this schema, and
// disabling it while not listening.
func (db *DB) listenZos(l *listener) {
	defer close(l.done)
	for l.ctx.Err() == nil {
		err := db.listenZosOnce(l)
		db.zos.invalidate(false)
		if l.ctx.Err() != nil {
			return
		}
		l.log.Warn("store: listening for ZOS version changes failed; reading the version from the database until it listens again",
			"error", err, "retry_in", zosListenRetry)
		select {
		case <-l.ctx.Done():
			return
		case <-time.After(zosListenRetry):
		}
	}
}

// listenZosOnce connects, listens and handles notifications until the
// connection fails or the listener stops.
func (db *DB) listenZosOnce(l *listener) error {
	conn, err := pgx.ConnectConfig(l.ctx, l.cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(l.ctx))
	var schema string
	if err := conn.QueryRow(l.ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if _, err := conn.Exec(l.ctx, `LISTEN `+zosChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Changes made while nobody listened were missed: start afresh.
	db.zos.invalidate(true)
	for {
		n, err := conn.WaitForNotification(l.ctx)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		if n.Payload == schema {
			db.zos.invalidateKeep()
		}
	}
}

// listener is the PostgreSQL connection config and lifetime of the
// version listener.
type listener struct {
	cfg    *pgx.ConnConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu               sync.Mutex
	started, stopped bool
}

func newListener(cfg *pgx.ConnConfig) *listener {
	ctx, cancel := context.WithCancel(context.Background())
	return &listener{cfg: cfg, log: slog.Default(), ctx: ctx, cancel: cancel, done: make(chan struct{})}
}

// start runs run in a goroutine the first time it is called, unless the
// listener was stopped.
func (l *listener) start(run func(*listener)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started || l.stopped {
		return
	}
	l.started = true
	go run(l)
}

// stop ends the listener and waits for it, if it was started. It may be
// called more than once.
func (l *listener) stop() {
	l.mu.Lock()
	l.stopped = true
	started := l.started
	l.mu.Unlock()
	l.cancel()
	if started {
		<-l.done
	}
}

// stopListener stops the version listener, if any.
func (db *DB) stopListener() {
	if db.listen != nil {
		db.listen.stop()
	}
}
