// Package flistd is the node side of flists: it fetches flists and their
// blocks from a hub, checks every block against its hash, keeps blocks in
// a shared on-disk cache bounded in size (least recently used eviction,
// surviving restarts), and materialises flists into read-only trees.
//
// Downloads are made to last: an interrupted block download resumes from
// the partial file with an HTTP range request (across restarts too); a
// block whose content does not match its hash is thrown away and fetched
// again, and never installed or written into a tree; a cached block found
// damaged when used is fetched again. Releases (tags) are checked against
// the publisher's key, so a hub serving other bytes cannot change what a
// node installs.
//
// Mounter mounts flists for workloads under overlays with a writable
// layer each, over a materialised tree or, on a node, a lazy FUSE mount
// fetching blocks on first read. Each lazy mount is served by a process
// of its own (MounterConfig.ServeCommand running ServeLazyMain), started
// detached with a pid file, so the mounts and the workloads over them
// survive restarts of flistd and zosd: a new Mounter finds the server
// again by its pid file and keeps it; one that died is replaced.
package flistd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/flist"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/internal/atomicfile"
)

// Errors callers branch on. Errors from the hub client (hubclient.ErrNotFound,
// hubclient.ErrUnreachable, ...) and the format (flist.ErrInvalid,
// flist.ErrBadSignature, flist.ErrExist) pass through wrapped.
var (
	// ErrCorrupt: the hub kept serving a block whose content does not
	// match its hash, every attempt. The error also wraps
	// flist.ErrCorruptBlock.
	ErrCorrupt = errors.New("hub serves corrupt content")
	// ErrTagMismatch: the hub served a tag document naming another
	// publisher, repository or tag than the one asked for.
	ErrTagMismatch = errors.New("tag document does not match the tag asked for")
	// ErrCacheLocked: another process uses the cache directory.
	ErrCacheLocked = errors.New("cache directory in use by another process")
)

// Defaults of Config.
const (
	DefaultCacheLimit   = 2 << 30
	DefaultConcurrency  = 8
	DefaultAttempts     = 4
	DefaultRetryDelay   = 250 * time.Millisecond
	DefaultBlockTimeout = 2 * time.Minute
	DefaultLockWait     = 5 * time.Second
)

// Config configures a Manager.
type Config struct {
	// HubURL is the hub's base URL, e.g. https://hub.grid.tf. Required.
	HubURL string
	// CacheDir holds the block cache, partial downloads and flist
	// documents, under the node's data directory. Required.
	CacheDir string
	// CacheLimit bounds the cached blocks' total size in bytes
	// (DefaultCacheLimit). Flist documents are not counted. Make it larger
	// than the largest package, or materialising it downloads blocks one
	// at a time.
	CacheLimit int64
	// Concurrency bounds parallel block downloads (DefaultConcurrency).
	Concurrency int
	// Attempts is how many times a block is requested before giving up
	// (DefaultAttempts); network errors and corrupt content both count.
	Attempts int
	// RetryDelay is the wait before the second attempt, doubling after
	// (DefaultRetryDelay).
	RetryDelay time.Duration
	// BlockTimeout bounds one block request (DefaultBlockTimeout), so a
	// stalled connection is abandoned; what arrived is kept and the next
	// attempt resumes from it.
	BlockTimeout time.Duration
	// LockWait is how long New waits for the cache lock before giving up
	// with ErrCacheLocked (DefaultLockWait). A process killed while it
	// was starting a child leaves that child holding a copy of the lock
	// until it execs, so a restart right after a crash can find the lock
	// taken for a moment.
	LockWait time.Duration
	// Logger receives warnings (corrupt blocks, retries) and debug records
	// (nil: discarded).
	Logger *slog.Logger
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Stats are counters of a Manager since it was created, plus the cache's
// current size.
type Stats struct {
	// CacheHits counts blocks found intact in the cache.
	CacheHits int64 `json:"cache_hits"`
	// CacheMisses counts blocks that had to be downloaded.
	CacheMisses int64 `json:"cache_misses"`
	// Downloads counts blocks downloaded, checked and cached.
	Downloads int64 `json:"downloads"`
	// DownloadedBytes counts the bytes received for blocks (stored form,
	// failed attempts included).
	DownloadedBytes int64 `json:"downloaded_bytes"`
	// Resumed counts requests that continued a partial download.
	Resumed int64 `json:"resumed"`
	// CorruptDownloads counts downloads thrown away because the content
	// did not match.
	CorruptDownloads int64 `json:"corrupt_downloads"`
	// CorruptCached counts cached blocks found damaged when used.
	CorruptCached int64 `json:"corrupt_cached"`
	// Evictions counts blocks evicted to respect the limit.
	Evictions int64 `json:"evictions"`
	// CachedBlocks is the number of blocks in the cache now.
	CachedBlocks int `json:"cached_blocks"`
	// CachedBytes is their total stored size.
	CachedBytes int64 `json:"cached_bytes"`
}

// Manager fetches and materialises flists. It is safe for concurrent use.
type Manager struct {
	cfg   Config
	hub   *hubclient.Client
	cache *cache
	log   *slog.Logger
	docs  string
	lock  *os.File
	sem   chan struct{}

	mu       sync.Mutex
	inflight map[flist.ID]*call

	hits, misses, downloads, downloaded, resumed, corruptDL, corruptCached atomic.Int64
}

// call is one block download other callers can wait for.
type call struct {
	done chan struct{}
	data []byte
	err  error
}

// New opens the cache (creating it) and returns a Manager talking to the
// hub with hc (nil: http.DefaultClient). Only one Manager (one process) may
// use a cache directory at a time (ErrCacheLocked), besides the servers of
// lazy mounts, which share it (see ServeLazy). Close releases it.
func New(cfg Config, hc *http.Client) (*Manager, error) {
	return newManager(cfg, hc, false)
}

// newManager is New; a shared Manager (a lazy mount's server) takes no
// lock: it uses the cache beside flistd's Manager, which is safe because
// blocks enter the cache by atomic rename from a partial file of the
// process's own and every block read is checked.
func newManager(cfg Config, hc *http.Client, shared bool) (*Manager, error) {
	if cfg.CacheDir == "" {
		return nil, errors.New("flistd: Config.CacheDir is required")
	}
	if cfg.CacheLimit <= 0 {
		cfg.CacheLimit = DefaultCacheLimit
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = DefaultRetryDelay
	}
	if cfg.BlockTimeout <= 0 {
		cfg.BlockTimeout = DefaultBlockTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LockWait <= 0 {
		cfg.LockWait = DefaultLockWait
	}
	client, err := hubclient.New(cfg.HubURL, hc)
	if err != nil {
		return nil, fmt.Errorf("flistd: %w", err)
	}
	if err := os.MkdirAll(cfg.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("flistd: %w", err)
	}
	var lock *os.File
	partialSuffix := ".part"
	if shared {
		// Its own partial files: two processes never append to one.
		partialSuffix = "." + strconv.Itoa(os.Getpid()) + ".part"
	} else {
		l, err := os.OpenFile(filepath.Join(cfg.CacheDir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("flistd: %w", err)
		}
		// The lock dies with the process, so a crash never leaves the
		// cache locked for long.
		if err := lockFile(l, cfg.LockWait); err != nil {
			l.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("flistd: %s: %w", cfg.CacheDir, ErrCacheLocked)
			}
			return nil, fmt.Errorf("flistd: locking %s: %w", cfg.CacheDir, err)
		}
		lock = l
	}
	c, err := openCache(cfg.CacheDir, cfg.CacheLimit, partialSuffix, cfg.Now, cfg.Logger)
	if err != nil {
		closeLock(lock)
		return nil, err
	}
	docs := filepath.Join(cfg.CacheDir, "flists")
	if err := os.MkdirAll(docs, 0o755); err != nil {
		closeLock(lock)
		return nil, fmt.Errorf("flistd: %w", err)
	}
	return &Manager{
		cfg: cfg, hub: client.WithAttempts(cfg.Attempts), cache: c, log: cfg.Logger, docs: docs, lock: lock,
		sem: make(chan struct{}, cfg.Concurrency), inflight: map[flist.ID]*call{},
	}, nil
}

// Close releases the cache directory. Calls in progress must have
// returned.
func (m *Manager) Close() error {
	return closeLock(m.lock)
}

// closeLock releases the cache lock (nil: a shared Manager holds none).
func closeLock(lock *os.File) error {
	if lock == nil {
		return nil
	}
	return lock.Close()
}

// Hub returns the hub client the manager uses.
func (m *Manager) Hub() *hubclient.Client { return m.hub }

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	blocks, bytes, evictions := m.cache.usage()
	return Stats{
		CacheHits: m.hits.Load(), CacheMisses: m.misses.Load(),
		Downloads: m.downloads.Load(), DownloadedBytes: m.downloaded.Load(), Resumed: m.resumed.Load(),
		CorruptDownloads: m.corruptDL.Load(), CorruptCached: m.corruptCached.Load(),
		Evictions: evictions, CachedBlocks: blocks, CachedBytes: bytes,
	}
}

// Fetch returns flist id, from the local copy of its document when there
// is an intact one, else from the hub. The document is checked against id
// and validated (flist.ErrInvalid: paths escaping the tree, bad sizes...).
func (m *Manager) Fetch(ctx context.Context, id flist.ID) (*flist.Flist, error) {
	local := filepath.Join(m.docs, id.String())
	if doc, err := os.ReadFile(local); err == nil {
		if flist.Sum(doc) == id {
			if f, err := flist.Parse(doc); err == nil {
				return f, nil
			}
		}
		m.log.Warn("cached flist document damaged; fetching it again", "flist", id.String())
		_ = os.Remove(local)
	}
	doc, err := m.hub.FlistDocument(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("flistd: fetching flist %s: %w", id, err)
	}
	f, err := flist.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("flistd: flist %s from the hub: %w", id, err)
	}
	if err := atomicfile.WriteFile(local, doc, 0o600); err != nil {
		m.log.Warn("keeping a copy of an flist document failed", "flist", id.String(), "error", err)
	}
	return f, nil
}

// Download makes sure every block of f is in the cache, downloading the
// missing ones in parallel (at most Config.Concurrency at once). It skips
// the prefetch (returning nil) when the missing blocks would not fit in the
// cache: Materialize then fetches them as it writes.
func (m *Manager) Download(ctx context.Context, f *flist.Flist) error {
	var missing []flist.BlockRef
	var size int64
	for _, b := range f.Blocks() {
		if !m.cache.has(b.ID) {
			missing = append(missing, b)
			size += b.Size
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if size > m.cfg.CacheLimit {
		m.log.Warn("package larger than the block cache: downloading block by block while writing", "missing_bytes", size, "cache_limit", m.cfg.CacheLimit)
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(m.cfg.Concurrency)
	for _, b := range missing {
		g.Go(func() error {
			_, err := m.Block(gctx, b)
			return err
		})
	}
	return g.Wait()
}

// Materialize writes f into dir (which must not exist) as a read-only
// tree, atomically (see flist.Materialize): it downloads the missing
// blocks first, then writes, checking every block again.
func (m *Manager) Materialize(ctx context.Context, f *flist.Flist, dir string) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("flistd: %w", err)
	}
	if err := m.Download(ctx, f); err != nil {
		return fmt.Errorf("flistd: materialize %s: %w", dir, err)
	}
	if err := flist.Materialize(ctx, f, dir, m); err != nil {
		return fmt.Errorf("flistd: %w", err)
	}
	return nil
}

// Block returns the checked content of a block: from the cache when it is
// there and intact, else downloaded (and cached). It implements
// flist.BlockSource.
func (m *Manager) Block(ctx context.Context, ref flist.BlockRef) ([]byte, error) {
	if stored, ok := m.cache.get(ref.ID); ok {
		data, err := flist.DecodeBlock(ref.ID, stored, ref.Size)
		if err == nil {
			m.hits.Add(1)
			return data, nil
		}
		m.corruptCached.Add(1)
		m.log.Warn("cached block damaged; fetching it again", "block", ref.ID.String(), "error", err)
		m.cache.remove(ref.ID)
	}
	m.misses.Add(1)
	for {
		m.mu.Lock()
		c, waiting := m.inflight[ref.ID]
		if !waiting {
			c = &call{done: make(chan struct{})}
			m.inflight[ref.ID] = c
		}
		m.mu.Unlock()
		if !waiting {
			c.data, c.err = m.download(ctx, ref)
			m.mu.Lock()
			delete(m.inflight, ref.ID)
			m.mu.Unlock()
			close(c.done)
			return c.data, c.err
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-c.done:
		}
		// The other caller gave up (its context ended): try ourselves.
		if c.err != nil && (errors.Is(c.err, context.Canceled) || errors.Is(c.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			continue
		}
		return c.data, c.err
	}
}

// download fetches a block into its partial file, resuming what is there,
// checks it and installs it in the cache.
func (m *Manager) download(ctx context.Context, ref flist.BlockRef) ([]byte, error) {
	select {
	case m.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	defer func() { <-m.sem }()

	part := m.cache.partialPath(ref.ID)
	var last error
	for attempt := range m.cfg.Attempts {
		if attempt > 0 {
			t := time.NewTimer(m.cfg.RetryDelay << (attempt - 1))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("flistd: block %s: %w (last error: %w)", ref.ID, context.Cause(ctx), last)
			case <-t.C:
			}
		}
		err := m.fetchPartial(ctx, ref.ID, part)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("flistd: block %s: %w", ref.ID, context.Cause(ctx))
			}
			if errors.Is(err, hubclient.ErrNotFound) {
				return nil, fmt.Errorf("flistd: block %s: %w", ref.ID, err)
			}
			last = err
			m.log.Debug("block download interrupted; will resume", "block", ref.ID.String(), "attempt", attempt+1, "error", err)
			continue
		}
		stored, err := os.ReadFile(part)
		if err != nil {
			return nil, fmt.Errorf("flistd: block %s: %w", ref.ID, err)
		}
		data, err := flist.DecodeBlock(ref.ID, stored, ref.Size)
		if err != nil {
			// Never resume from bad bytes: start over.
			_ = os.Remove(part)
			m.corruptDL.Add(1)
			m.log.Warn("hub served a corrupt block; fetching it again", "block", ref.ID.String(), "attempt", attempt+1, "error", err)
			last = err
			continue
		}
		if err := m.cache.install(ref.ID, part, int64(len(stored))); err != nil {
			return nil, err
		}
		m.downloads.Add(1)
		return data, nil
	}
	if errors.Is(last, flist.ErrCorruptBlock) {
		return nil, fmt.Errorf("flistd: block %s: %w after %d attempts: %w", ref.ID, ErrCorrupt, m.cfg.Attempts, last)
	}
	return nil, fmt.Errorf("flistd: block %s: %d attempts failed: %w", ref.ID, m.cfg.Attempts, last)
}

// fetchPartial makes one request for the rest of the block after what the
// partial file holds and appends it. An error leaves the partial file for
// the next attempt.
func (m *Manager) fetchPartial(ctx context.Context, id flist.ID, part string) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.BlockTimeout)
	defer cancel()
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if off > flist.MaxStoredBlockSize {
		if err := truncate(f); err != nil {
			return err
		}
		off = 0
	}
	body, err := m.hub.OpenBlock(ctx, id, off)
	var ae *hubclient.APIError
	if errors.As(err, &ae) && ae.Status == http.StatusRequestedRangeNotSatisfiable && off > 0 {
		// The partial holds the whole block already (the previous run
		// stopped before checking it): let the check decide.
		return nil
	}
	if err != nil {
		return err
	}
	defer body.Close()
	if off > 0 {
		if body.Offset == off {
			m.resumed.Add(1)
		} else {
			// The hub sent the whole block: start over.
			if err := truncate(f); err != nil {
				return err
			}
			off = 0
		}
	}
	n, err := io.Copy(f, io.LimitReader(body, flist.MaxStoredBlockSize-off+1))
	m.downloaded.Add(n)
	if err != nil {
		return err
	}
	if off+n > flist.MaxStoredBlockSize {
		_ = truncate(f)
		return fmt.Errorf("%w: block %s: the hub sends more than %d bytes", flist.ErrCorruptBlock, id, flist.MaxStoredBlockSize)
	}
	if body.Total >= 0 && off+n != body.Total {
		return fmt.Errorf("block %s: %d of %d bytes: %w", id, off+n, body.Total, io.ErrUnexpectedEOF)
	}
	return nil
}

func truncate(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.Seek(0, io.SeekStart)
	return err
}

// lockFile takes an exclusive flock on f, trying again for up to wait while
// another open file description holds it.
func lockFile(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
