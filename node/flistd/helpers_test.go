package flistd

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/hub"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/keys"
)

// env is a real hub on loopback behind a proxy that can cut or falsify
// block downloads.
type env struct {
	t       *testing.T
	hubDir  string
	url     string
	pub     *hubclient.Client
	key     keys.KeyPair
	faults  *faults
	cacheTo string
	// log is the Mounters' logger, writing into the file logs.
	log  *slog.Logger
	logs string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, hubDir: t.TempDir(), key: kp, faults: newFaults(), cacheTo: filepath.Join(t.TempDir(), "cache"), logs: filepath.Join(t.TempDir(), "log")}
	// A file, not a buffer: FUSE handlers log while the test reads.
	lf, err := os.Create(e.logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	e.log = slog.New(slog.NewTextHandler(lf, nil))
	cfg := hub.DefaultConfig()
	cfg.DataDir = e.hubDir
	cfg.Publishers = []hub.Publisher{{Name: "tf", ID: hub.PublisherID("tf"), PublicKey: kp.Public().Key}}
	srv, err := hub.New(cfg, hub.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(e.faults.wrap(srv.Handler()))
	t.Cleanup(ts.Close)
	e.url = ts.URL
	anon, err := hubclient.New(ts.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e.pub, err = anon.AsPublisher(context.Background(), "tf", kp); err != nil {
		t.Fatal(err)
	}
	return e
}

// manager opens a Manager on the env's cache directory.
func (e *env) manager(cfg Config) *Manager {
	e.t.Helper()
	cfg.HubURL = e.url
	cfg.CacheDir = e.cacheTo
	if cfg.RetryDelay == 0 {
		cfg.RetryDelay = time.Millisecond
	}
	m, err := New(cfg, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.Close() })
	return m
}

// publish builds and publishes a tree, returning its flist.
func (e *env) publish(name string, files map[string]string) *flist.Flist {
	e.t.Helper()
	dir := e.t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(p, "/")))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			e.t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(p, "/"):
			err := os.MkdirAll(full, 0o755)
			if err != nil {
				e.t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(content[2:], full); err != nil {
				e.t.Fatal(err)
			}
		default:
			mode := fs.FileMode(0o644)
			if strings.HasPrefix(content, "#!") {
				mode = 0o755
			}
			if err := os.WriteFile(full, []byte(content), mode); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	res, err := e.pub.PublishDir(ctxT(e.t), "tf", "zos", name, dir, hubclient.PublishOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Flist
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func random(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// faults sits in front of the hub: it records block requests and can cut
// a response mid-body or answer with other bytes.
type faults struct {
	mu          sync.Mutex
	cut         map[flist.ID]int // responses still to cut
	stall       map[flist.ID]int // responses still to stall after half the body
	lie         map[flist.ID]int // responses still to falsify (-1: always)
	ranges      map[flist.ID][]string
	requests    int
	inflight    int
	maxInflight int
	delay       time.Duration
}

func newFaults() *faults {
	return &faults{cut: map[flist.ID]int{}, stall: map[flist.ID]int{}, lie: map[flist.ID]int{}, ranges: map[flist.ID][]string{}}
}

func (f *faults) blockRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *faults) rangesOf(id flist.ID) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ranges[id]...)
}

func (f *faults) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/blocks/")
		id, err := flist.ParseID(rest)
		if !ok || err != nil || r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		f.mu.Lock()
		f.requests++
		f.ranges[id] = append(f.ranges[id], r.Header.Get("Range"))
		f.inflight++
		f.maxInflight = max(f.maxInflight, f.inflight)
		cut := f.cut[id] > 0
		if cut {
			f.cut[id]--
		}
		stall := f.stall[id] > 0
		if stall {
			f.stall[id]--
		}
		lie := f.lie[id] != 0
		if f.lie[id] > 0 {
			f.lie[id]--
		}
		delay := f.delay
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.inflight--
			f.mu.Unlock()
		}()
		time.Sleep(delay)
		switch {
		case lie:
			other := flist.EncodeBlock([]byte("not what you asked for " + id.String()))
			w.Header().Set("Content-Length", strconv.Itoa(len(other)))
			_, _ = w.Write(other)
		case cut || stall:
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = io.Copy(w, bytes.NewReader(body[:len(body)/2]))
			http.NewResponseController(w).Flush()
			if stall {
				// Send nothing more until the client gives up.
				<-r.Context().Done()
			}
			// Drop the connection: the client sees a short body.
			panic(http.ErrAbortHandler)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// sameTree compares a materialised tree with an flist's source files map.
func checkTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(strings.TrimSuffix(p, "/")))
		st, err := os.Lstat(full)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		switch {
		case strings.HasSuffix(p, "/"):
			if !st.IsDir() || st.Mode().Perm() != flist.ModeDir {
				t.Errorf("%s: mode %v, want a %v directory", p, st.Mode(), flist.ModeDir)
			}
		case strings.HasPrefix(content, "->"):
			target, err := os.Readlink(full)
			if err != nil || target != content[2:] {
				t.Errorf("%s: symlink to %q (%v), want %q", p, target, err, content[2:])
			}
		default:
			b, err := os.ReadFile(full)
			if err != nil || string(b) != content {
				t.Errorf("%s: content differs (%v)", p, err)
			}
			want := flist.ModeFile
			if strings.HasPrefix(content, "#!") {
				want = flist.ModeExecutable
			}
			if st.Mode() != want {
				t.Errorf("%s: mode %v, want %v", p, st.Mode(), want)
			}
		}
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
