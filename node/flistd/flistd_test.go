package flistd

import (
	"bytes"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/flist"
)

func TestFetchMaterializeRoundTrip(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{
		"bin/":              "",
		"bin/zos":           "#!/bin/sh\nexec zos\n",
		"etc/":              "",
		"etc/zos.toml":      "network = \"main\"\n",
		"etc/empty":         "",
		"lib/":              "",
		"lib/big.so":        random(t, 2*flist.MaxBlockSize+777),
		"lib/libzos.so":     "->big.so",
		"lib/same-a":        strings.Repeat("a", 100_000),
		"lib/same-b":        strings.Repeat("a", 100_000),
		"share/doc/":        "",
		"share/doc/link-up": "->../../etc/zos.toml",
	}
	f := e.publish("zos", files)
	m := e.manager(Config{})
	ctx := ctxT(t)
	got, err := m.Fetch(ctx, f.ID())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "gen1", "zos")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := m.Materialize(ctx, got, out); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, files)
	st := m.Stats()
	if st.Downloads != int64(len(f.Blocks())) || st.CacheMisses != int64(len(f.Blocks())) {
		t.Fatalf("stats %+v, want %d downloads", st, len(f.Blocks()))
	}
	// A second materialisation comes from the cache alone.
	before := e.faults.blockRequests()
	out2 := filepath.Join(filepath.Dir(out), "zos-again")
	if err := m.Materialize(ctx, got, out2); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out2, files)
	if n := e.faults.blockRequests() - before; n != 0 {
		t.Fatalf("second materialisation made %d block requests", n)
	}
	// The document is kept locally.
	if _, err := os.Stat(filepath.Join(e.cacheTo, "flists", f.ID().String())); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fetch(ctx, flist.Sum([]byte("unknown"))); err == nil {
		t.Fatal("fetching an unknown flist succeeded")
	}
}

func TestInterruptedDownloadResumes(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"blob": random(t, 900_000)}
	f := e.publish("blob", files)
	id := f.Blocks()[0].ID
	e.faults.cut[id] = 1
	m := e.manager(Config{})
	out := filepath.Join(t.TempDir(), "out")
	if err := m.Materialize(ctxT(t), f, out); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, files)
	ranges := e.faults.rangesOf(id)
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Fatalf("requests' ranges %q, want a full request then a resume", ranges)
	}
	if st := m.Stats(); st.Resumed != 1 || st.Downloads != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStalledDownloadResumes(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"blob": random(t, 500_000)}
	f := e.publish("blob", files)
	id := f.Blocks()[0].ID
	e.faults.stall[id] = 1
	m := e.manager(Config{BlockTimeout: 300 * time.Millisecond})
	out := filepath.Join(t.TempDir(), "out")
	if err := m.Materialize(ctxT(t), f, out); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, files)
	if ranges := e.faults.rangesOf(id); len(ranges) != 2 || ranges[1] == "" {
		t.Fatalf("ranges %q, want a resume after the stall", ranges)
	}
}

func TestInterruptedDownloadResumesAfterRestart(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"blob": random(t, 600_000)}
	f := e.publish("blob", files)
	id := f.Blocks()[0].ID
	e.faults.cut[id] = 1
	m := e.manager(Config{Attempts: 1})
	out := filepath.Join(t.TempDir(), "out")
	if err := m.Materialize(ctxT(t), f, out); err == nil {
		t.Fatal("materialize succeeded through a cut connection with one attempt")
	}
	if _, err := os.Lstat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed materialisation left %s", out)
	}
	part, err := os.Stat(filepath.Join(e.cacheTo, "partial", id.String()+".part"))
	if err != nil || part.Size() == 0 {
		t.Fatalf("no partial download kept: %v", err)
	}
	m.Close()

	m2 := e.manager(Config{})
	if err := m2.Materialize(ctxT(t), f, out); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, files)
	ranges := e.faults.rangesOf(id)
	if want := "bytes=" + itoa(part.Size()) + "-"; len(ranges) != 2 || ranges[1] != want {
		t.Fatalf("ranges %q, want the second to be %q", ranges, want)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestTamperedBlockIsRefused(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"bin/": "", "bin/zos": "#!" + random(t, 50_000), "ok": "fine"}
	f := e.publish("zos", files)
	var target flist.BlockRef
	for _, en := range f.Entries {
		if en.Path == "bin/zos" {
			target = en.Blocks[0]
		}
	}
	// The hub's copy of the block is replaced with other bytes on its disk.
	stored := filepath.Join(e.hubDir, "blocks", target.ID.String()[:2], target.ID.String())
	if err := os.WriteFile(stored, flist.EncodeBlock([]byte("#!/bin/sh\nrm -rf /\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	m := e.manager(Config{Attempts: 3})
	parent := t.TempDir()
	out := filepath.Join(parent, "zos")
	err := m.Materialize(ctxT(t), f, out)
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, flist.ErrCorruptBlock) {
		t.Fatalf("got %v, want ErrCorrupt", err)
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Fatalf("a refused materialisation left %d entries", len(ents))
	}
	if n := len(e.faults.rangesOf(target.ID)); n != 3 {
		t.Fatalf("block requested %d times, want 3 (every attempt)", n)
	}
	if m.cache.has(target.ID) {
		t.Fatal("the corrupt block was cached")
	}
	if _, err := os.Stat(m.cache.partialPath(target.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("the corrupt download was kept for resuming")
	}
	if st := m.Stats(); st.CorruptDownloads != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOneBadAnswerIsRetried(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"f": random(t, 10_000)}
	f := e.publish("f", files)
	e.faults.lie[f.Blocks()[0].ID] = 1
	m := e.manager(Config{})
	out := filepath.Join(t.TempDir(), "out")
	if err := m.Materialize(ctxT(t), f, out); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, files)
	if st := m.Stats(); st.CorruptDownloads != 1 || st.Downloads != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCacheLimitAndEviction(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		files[n] = random(t, 100_000)
	}
	f := e.publish("five", files)
	// Room for three of the five blocks.
	m := e.manager(Config{CacheLimit: 3*100_001 + 10})
	out := filepath.Join(t.TempDir(), "out")
	if err := m.Materialize(ctxT(t), f, out); err != nil {
		t.Fatal(err)
	}
	checkTree(t, out, files)
	st := m.Stats()
	if st.CachedBlocks != 3 || st.CachedBytes > 3*100_001+10 || st.Evictions != 2 {
		t.Fatalf("stats %+v, want 3 blocks cached and 2 evicted", st)
	}
	var onDisk int64
	_ = filepath.WalkDir(filepath.Join(e.cacheTo, "blocks"), func(_ string, d fs.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			info, _ := d.Info()
			onDisk += info.Size()
		}
		return nil
	})
	if onDisk != st.CachedBytes {
		t.Fatalf("cache holds %d bytes on disk, index says %d", onDisk, st.CachedBytes)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { now = now.Add(time.Second); return now }
	c, err := openCache(dir, 30, ".part", clock, discard())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]flist.ID{}
	put := func(name string) {
		id := flist.Sum([]byte(name))
		ids[name] = id
		p := c.partialPath(id)
		if err := os.WriteFile(p, bytes.Repeat([]byte("x"), 10), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := c.install(id, p, 10); err != nil {
			t.Fatal(err)
		}
	}
	put("a")
	put("b")
	put("c")
	if _, ok := c.get(ids["a"]); !ok {
		t.Fatal("a not cached")
	}
	put("d") // evicts b, the least recently used
	if c.has(ids["b"]) || !c.has(ids["a"]) || !c.has(ids["c"]) || !c.has(ids["d"]) {
		t.Fatal("eviction did not pick the least recently used block")
	}
	// The order survives a restart (kept in mtimes): c is now the oldest.
	c2, err := openCache(dir, 30, ".part", clock, discard())
	if err != nil {
		t.Fatal(err)
	}
	if n, size, _ := c2.usage(); n != 3 || size != 30 {
		t.Fatalf("reopened cache: %d blocks, %d bytes", n, size)
	}
	put2 := func(name string) {
		id := flist.Sum([]byte(name))
		p := c2.partialPath(id)
		_ = os.WriteFile(p, bytes.Repeat([]byte("x"), 10), 0o644)
		if err := c2.install(id, p, 10); err != nil {
			t.Fatal(err)
		}
	}
	put2("e")
	if c2.has(ids["c"]) || !c2.has(ids["a"]) || !c2.has(ids["d"]) {
		t.Fatal("after a restart, eviction did not pick the least recently used block")
	}
	// A smaller limit on reopening evicts down to it.
	c3, err := openCache(dir, 10, ".part", clock, discard())
	if err != nil {
		t.Fatal(err)
	}
	if n, size, _ := c3.usage(); n != 1 || size != 10 {
		t.Fatalf("reopened with a smaller limit: %d blocks, %d bytes", n, size)
	}
}

func TestCacheSurvivesRestartAndCorruptionIsDetected(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{"x": random(t, 70_000), "y": "small"}
	f := e.publish("xy", files)
	m := e.manager(Config{})
	if err := m.Download(ctxT(t), f); err != nil {
		t.Fatal(err)
	}
	m.Close()
	before := e.faults.blockRequests()
	m = e.manager(Config{})
	out := filepath.Join(t.TempDir(), "out")
	if err := m.Materialize(ctxT(t), f, out); err != nil {
		t.Fatal(err)
	}
	if n := e.faults.blockRequests() - before; n != 0 {
		t.Fatalf("after a restart, %d blocks were downloaded again", n)
	}
	// Damage a cached block: it is detected on use and fetched again.
	ref := f.Entries[0].Blocks[0]
	p := m.cache.path(ref.ID)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := m.Block(ctxT(t), ref)
	if err != nil || flist.Sum(data) != ref.ID {
		t.Fatalf("Block after damage: %v", err)
	}
	if st := m.Stats(); st.CorruptCached != 1 {
		t.Fatalf("stats %+v", st)
	}
	if n := e.faults.blockRequests() - before; n != 1 {
		t.Fatalf("%d downloads after damage, want 1", n)
	}
	// Only one manager per cache directory.
	if _, err := New(Config{HubURL: e.url, CacheDir: e.cacheTo, LockWait: 50 * time.Millisecond}, nil); !errors.Is(err, ErrCacheLocked) {
		t.Fatalf("second manager: %v, want ErrCacheLocked", err)
	}
}

// TestLockWaitsForAMomentaryHolder: a lock held for a moment (a crashed
// process's child between fork and exec) does not fail New.
func TestLockWaitsForAMomentaryHolder(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	go func() { time.Sleep(200 * time.Millisecond); f.Close() }()
	m, err := New(Config{HubURL: "http://127.0.0.1:1", CacheDir: dir, LockWait: 10 * time.Second}, nil)
	if err != nil {
		t.Fatalf("New while the lock is released after 200ms: %v", err)
	}
	m.Close()
}

func TestDownloadsAreConcurrencyLimited(t *testing.T) {
	e := newEnv(t)
	files := map[string]string{}
	for i := range 10 {
		files[string(rune('a'+i))] = random(t, 1000)
	}
	f := e.publish("ten", files)
	e.faults.delay = 30 * time.Millisecond
	m := e.manager(Config{Concurrency: 3})
	if err := m.Download(ctxT(t), f); err != nil {
		t.Fatal(err)
	}
	if e.faults.maxInflight > 3 || e.faults.maxInflight < 2 {
		t.Fatalf("%d block downloads at once, want 2 to 3", e.faults.maxInflight)
	}
}

func TestFetchRefusesUnsafeDocuments(t *testing.T) {
	docs := map[string]string{
		"traversal":      `{"entries":[{"blocks":[],"mode":420,"path":"../x","size":0,"type":"file"}],"format":"grid4-flist/1"}`,
		"absolute":       `{"entries":[{"blocks":[],"mode":420,"path":"/etc/passwd","size":0,"type":"file"}],"format":"grid4-flist/1"}`,
		"symlink escape": `{"entries":[{"path":"l","target":"../../etc","type":"symlink"}],"format":"grid4-flist/1"}`,
		"absolute link":  `{"entries":[{"path":"l","target":"/etc","type":"symlink"}],"format":"grid4-flist/1"}`,
	}
	byID := map[string]string{}
	for _, d := range docs {
		byID[flist.Sum([]byte(d)).String()] = d
	}
	// A hub that serves whatever documents it is given.
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := byID[strings.TrimPrefix(r.URL.Path, "/api/v1/flists/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(d))
	}))
	defer ts.Close()
	m, err := New(Config{HubURL: ts.URL, CacheDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for name, d := range docs {
		if _, err := m.Fetch(ctxT(t), flist.Sum([]byte(d))); !errors.Is(err, flist.ErrInvalid) {
			t.Errorf("%s: Fetch = %v, want flist.ErrInvalid", name, err)
		}
	}
	// An flist made in memory with a traversal is refused before anything
	// is downloaded or written.
	bad := &flist.Flist{Entries: []flist.Entry{{Path: "../../x", Type: flist.TypeFile, Blocks: []flist.BlockRef{}}}}
	out := filepath.Join(t.TempDir(), "out")
	if err := m.Materialize(ctxT(t), bad, out); !errors.Is(err, flist.ErrInvalid) {
		t.Fatalf("Materialize: %v", err)
	}
}
