package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/grid4/grid4/bench/load"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/store"
	"github.com/grid4/grid4/store/storetest"
)

// startRegistrar serves a grid4 registrar on a fresh store of backend over
// loopback, as an operator would start it for a side-by-side run: twin 1
// is the admin, no rate limits.
func startRegistrar(t *testing.T, backend string) (url, dbURL string) {
	t.Helper()
	dbURL = storetest.URL(t, backend)
	db, err := store.Open(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := registrar.DefaultConfig()
	cfg.RateIP, cfg.RateTwin, cfg.AdminTwins = 0, 0, []uint64{1}
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts.URL, dbURL
}

// TestSideBySide seeds a small fleet on two registrars through the API,
// runs every mix on both and checks that every request succeeded and that
// the figures asked for are there. A second run reuses the seeded fleets.
func TestSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds two registrars")
	}
	sqlURL, _ := startRegistrar(t, storetest.SQLite)
	pgURL, pgDB := startRegistrar(t, storetest.Postgres)
	jsonOut := filepath.Join(t.TempDir(), "runs.json")
	args := []string{
		"-a", "name=sqlite,url=" + sqlURL,
		"-b", "name=postgres,url=" + pgURL + ",pid=" + strconv.Itoa(os.Getpid()) + ",db=" + pgDB,
		"-nodes", "24", "-farms", "3", "-rounds", "2", "-duration", "300ms", "-warmup", "50ms",
		"-max-uptime", "400", "-mix", "uptime:4,list:2,version:2", "-json", jsonOut,
	}
	for pass := range 2 {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), args, &stdout, &stderr); err != nil {
			t.Fatalf("pass %d: %v\n%s", pass, err, stderr.String())
		}
		raw, err := os.ReadFile(jsonOut)
		if err != nil {
			t.Fatal(err)
		}
		var runs []load.SideRun
		if err := json.Unmarshal(raw, &runs); err != nil {
			t.Fatal(err)
		}
		if len(runs) != 2*3*2 {
			t.Fatalf("pass %d: %d runs, want 12", pass, len(runs))
		}
		for _, r := range runs {
			res := r.Result
			if res.Requests == 0 || res.OK != res.Requests {
				t.Errorf("pass %d: %s %s round %d: %d of %d ok, first error %q", pass, r.Target, r.Mix, r.Round, res.OK, res.Requests, res.FirstError)
			}
			if r.Target == "postgres" && res.ServerCPUSeconds <= 0 {
				t.Errorf("%s %s: no registrar CPU measured", r.Target, r.Mix)
			}
		}
		out := stdout.String()
		for _, want := range []string{"| uptime | 4 | sqlite |", "| list | 2 | postgres |", "| version | 2 | postgres |"} {
			if !strings.Contains(out, want) {
				t.Errorf("pass %d: the table lacks %q:\n%s", pass, want, out)
			}
		}
	}
}
