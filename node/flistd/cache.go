package flistd

import (
	"container/list"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grid4/grid4/flist"
)

// cache is the on-disk block cache: stored blocks (as the hub serves them,
// compressed) under blocks/ab/<id>, bounded in total size with least
// recently used eviction. Recency is kept in the files' mtimes, so the
// order survives restarts. Blocks are not trusted: every read is checked
// by the caller (flist.DecodeBlock), which is why writes need no fsync — a
// block damaged by a crash is found on use and fetched again.
//
// Other processes may use the same directory at once (flistd and the
// servers of its lazy mounts): a block enters blocks/ only by an atomic
// rename of a complete file, each process downloads into partial files
// of its own (suffix), and a block another process installed is taken
// into the index when first read. Each process bounds the blocks it knows
// of; a block evicted by another is downloaded again when needed.
type cache struct {
	blocks   string
	partials string
	suffix   string
	limit    int64
	now      func() time.Time
	log      *slog.Logger

	mu        sync.Mutex
	lru       *list.List // of *cacheEntry, most recently used first
	index     map[flist.ID]*list.Element
	total     int64
	evictions int64
}

type cacheEntry struct {
	id   flist.ID
	size int64
}

// partialMaxAge is how long an interrupted download is kept for resuming.
const partialMaxAge = 24 * time.Hour

// openCache opens the cache under dir, indexing what a previous run left
// and evicting down to limit.
func openCache(dir string, limit int64, suffix string, now func() time.Time, log *slog.Logger) (*cache, error) {
	c := &cache{
		blocks: filepath.Join(dir, "blocks"), partials: filepath.Join(dir, "partial"), suffix: suffix,
		limit: limit, now: now, log: log, lru: list.New(), index: map[flist.ID]*list.Element{},
	}
	for _, d := range []string{c.blocks, c.partials} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("flistd: cache: %w", err)
		}
	}
	type found struct {
		id    flist.ID
		size  int64
		mtime time.Time
	}
	var all []found
	err := filepath.WalkDir(c.blocks, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		id, perr := flist.ParseID(d.Name())
		info, ierr := d.Info()
		if perr != nil || ierr != nil || !info.Mode().IsRegular() || filepath.Base(filepath.Dir(p)) != d.Name()[:2] {
			// Leftovers of an interrupted install, or foreign files.
			_ = os.Remove(p)
			return nil
		}
		all = append(all, found{id: id, size: info.Size(), mtime: info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("flistd: cache: scanning %s: %w", c.blocks, err)
	}
	slices.SortFunc(all, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	for _, f := range all {
		c.index[f.id] = c.lru.PushFront(&cacheEntry{id: f.id, size: f.size})
		c.total += f.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()

	ents, _ := os.ReadDir(c.partials)
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || !strings.HasSuffix(e.Name(), ".part") || now().Sub(info.ModTime()) > partialMaxAge {
			_ = os.Remove(filepath.Join(c.partials, e.Name()))
		}
	}
	return c, nil
}

func (c *cache) path(id flist.ID) string {
	h := id.String()
	return filepath.Join(c.blocks, h[:2], h)
}

// partialPath is where a download of id is assembled.
func (c *cache) partialPath(id flist.ID) string {
	return filepath.Join(c.partials, id.String()+c.suffix)
}

// has reports whether id is cached (not whether it is intact).
func (c *cache) has(id flist.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.index[id]
	return ok
}

// get returns the stored bytes of id and marks it recently used. A block
// not in the index is looked for on disk: another process sharing the
// cache may have installed it.
func (c *cache) get(id flist.ID) ([]byte, bool) {
	c.mu.Lock()
	el, ok := c.index[id]
	if ok {
		c.lru.MoveToFront(el)
	}
	c.mu.Unlock()
	b, err := os.ReadFile(c.path(id))
	if err != nil {
		// Evicted meanwhile, or removed behind our back.
		if ok {
			c.forget(id)
		}
		return nil, false
	}
	if !ok {
		c.adopt(id, int64(len(b)))
	}
	now := c.now()
	_ = os.Chtimes(c.path(id), now, now)
	return b, true
}

// adopt indexes a block another process installed.
func (c *cache) adopt(id flist.ID, size int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.index[id]; ok {
		return
	}
	c.index[id] = c.lru.PushFront(&cacheEntry{id: id, size: size})
	c.total += size
	c.evictLocked()
}

// forget drops id from the index (the file is already gone).
func (c *cache) forget(id flist.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(id)
}

// forgetLocked drops id from the index and its size from the total.
func (c *cache) forgetLocked(id flist.ID) {
	if el, ok := c.index[id]; ok {
		c.total -= el.Value.(*cacheEntry).size
		c.lru.Remove(el)
		delete(c.index, id)
	}
}

// remove deletes a (corrupt) block.
func (c *cache) remove(id flist.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(id)
	_ = os.Remove(c.path(id))
}

// install moves a verified download into the cache and evicts down to the
// limit.
func (c *cache) install(id flist.ID, partial string, size int64) error {
	final := c.path(id)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return fmt.Errorf("flistd: cache: %w", err)
	}
	now := c.now()
	_ = os.Chtimes(partial, now, now)
	if err := os.Rename(partial, final); err != nil {
		return fmt.Errorf("flistd: cache: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.forgetLocked(id)
	c.index[id] = c.lru.PushFront(&cacheEntry{id: id, size: size})
	c.total += size
	c.evictLocked()
	return nil
}

// evictLocked removes least recently used blocks until the total fits the
// limit. The most recent block stays even if it alone is larger.
func (c *cache) evictLocked() {
	for c.total > c.limit && c.lru.Len() > 1 {
		el := c.lru.Back()
		e := el.Value.(*cacheEntry)
		if err := os.Remove(c.path(e.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("cache: evicting a block failed", "block", e.id.String(), "error", err)
		}
		c.lru.Remove(el)
		delete(c.index, e.id)
		c.total -= e.size
		c.evictions++
	}
}

// usage returns the cached blocks, their total stored size and the
// evictions so far.
func (c *cache) usage() (blocks int, bytes int64, evictions int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len(), c.total, c.evictions
}
