package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/bench/load"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/store"
	"github.com/grid4/grid4/store/storetest"
)

// asRegistrar makes the test binary behave as the registrar command: the
// smoke test starts it that way, as the separate process loadgen expects,
// without building cmd/registrar.
const asRegistrar = "GRID4_LOADGEN_TEST_AS_REGISTRAR"

func TestMain(m *testing.M) {
	if os.Getenv(asRegistrar) == "1" {
		os.Exit(serveRegistrar(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// serveRegistrar is what cmd/registrar does: settings from args, the
// store, serve until SIGTERM.
func serveRegistrar(args []string) int {
	cfg, err := registrar.ParseConfig(args, os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "registrar: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	db, err := store.Open(ctx, cfg.DB)
	if err != nil {
		fmt.Fprintf(os.Stderr, "registrar: %v\n", err)
		return 1
	}
	defer db.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: log})
	if err == nil {
		err = srv.Run(ctx)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "registrar: %v\n", err)
		return 1
	}
	return 0
}

// smokeRequests is the number of measured requests per run of the smoke
// test.
const smokeRequests = 200

// TestLoadgenSmoke runs the load generator end to end at a tiny scale on
// both stores: seed a fleet, start the registrar as a process, run every
// scenario, read the JSON results, then extend the seeded fleet. It checks
// behaviour only (every request answered with success, counts that add up,
// percentiles in order, memory read), never speed.
func TestLoadgenSmoke(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(asRegistrar, "1") // inherited by the registrar process
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			db := "sqlite:" + filepath.Join(t.TempDir(), "bench.db")
			if backend == "postgres" {
				db = storetest.PostgresURL(t)
			}
			dir := t.TempDir()
			jsonOut := filepath.Join(dir, "results.json")
			// 180 nodes in farms of 50: the last farm is partial, and the
			// requests (with the warm-up) report some nodes twice.
			stdout := runLoadgen(t, "-db", db, "-nodes", "180", "-farm-size", "50",
				"-registrar", self, "-registrar-log", filepath.Join(dir, "registrar.log"),
				"-scenario", "uptime,status,list", "-auth", "v2,legacy",
				"-c", "4", "-n", fmt.Sprint(smokeRequests), "-duration", "3s", "-warmup", "20", "-json", jsonOut)
			t.Log(stdout)
			b, err := os.ReadFile(jsonOut)
			if err != nil {
				t.Fatal(err)
			}
			var results []load.Result
			if err := json.Unmarshal(b, &results); err != nil {
				t.Fatalf("results: %v\n%s", err, b)
			}
			var names []string
			for _, r := range results {
				names = append(names, r.Name)
				checkResult(t, r)
				if r.Scenario == load.ScenarioUptime && r.Restarts != 0 {
					t.Errorf("%s: %d restarts: every report should be of the current boot", r.Name, r.Restarts)
				}
			}
			if got := strings.Join(names, " "); got != "uptime-v2 uptime-legacy status-v2 status-legacy list" {
				t.Errorf("runs %q, want uptime-v2 uptime-legacy status-v2 status-legacy list", got)
			}
			for _, name := range names {
				if !strings.Contains(stdout, "== "+name+":") {
					t.Errorf("output lacks run %s:\n%s", name, stdout)
				}
			}

			// The status filters of the list, over the whole fleet: the
			// seeded statuses (and those just reported) are recent, and
			// most nodes are healthy with 8 GiB free, so pages are full.
			jsonOut = filepath.Join(dir, "filtered.json")
			runLoadgen(t, "-db", db, "-nodes", "180", "-farm-size", "50", "-registrar", self,
				"-scenario", "list", "-list-fleet", "-list-query", "healthy=true&free_mru=8GiB",
				"-c", "4", "-n", fmt.Sprint(smokeRequests), "-duration", "3s", "-warmup", "20", "-json", jsonOut)
			if b, err = os.ReadFile(jsonOut); err != nil {
				t.Fatal(err)
			}
			results = nil
			if err := json.Unmarshal(b, &results); err != nil || len(results) != 1 {
				t.Fatalf("filtered list results (%v): %s", err, b)
			}
			checkResult(t, results[0])

			// Signing inline (not presigned), on a fleet of its own: a new
			// loadgen process knows only the wall clock, while the runs
			// above reported uptimes ahead of it (each uptime run starts
			// where the one before ended), so on their fleet the registrar
			// would rightly see restarts.
			inlineDB := "sqlite:" + filepath.Join(t.TempDir(), "inline.db")
			if backend == "postgres" {
				inlineDB = storetest.PostgresURL(t)
			}
			jsonOut = filepath.Join(dir, "inline.json")
			runLoadgen(t, "-db", inlineDB, "-nodes", "180", "-farm-size", "50", "-registrar", self,
				"-scenario", "uptime", "-auth", "v2", "-presign=false",
				"-c", "4", "-n", fmt.Sprint(smokeRequests), "-duration", "3s", "-warmup", "0", "-json", jsonOut)
			if b, err = os.ReadFile(jsonOut); err != nil {
				t.Fatal(err)
			}
			results = nil
			if err := json.Unmarshal(b, &results); err != nil || len(results) != 1 {
				t.Fatalf("inline results (%v): %s", err, b)
			}
			if r := results[0]; r.Presigned || r.Restarts != 0 {
				t.Errorf("inline run: presigned %v, %d restarts", r.Presigned, r.Restarts)
			}
			checkResult(t, results[0])

			// A second run reuses the seeded fleet, tops up the partial
			// farm and adds one.
			stdout = runLoadgen(t, "-db", db, "-nodes", "230", "-farm-size", "50", "-seed-only")
			if want := "fleet ready: 230 nodes in 5 farms (50 seeded now)"; !strings.Contains(stdout, want) {
				t.Errorf("second run: %q, want %q", stdout, want)
			}
			// ... and refuses another farm size.
			var out, errOut bytes.Buffer
			err = run(context.Background(), []string{"-db", db, "-nodes", "230", "-farm-size", "40", "-seed-only"}, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), "farm size") {
				t.Errorf("reuse with another farm size: %v, want an error about the farm size", err)
			}
		})
	}
}

// TestLoadgenNothingSucceeded: a run in which no request succeeded (here
// no registrar listens) fails the command, after printing what it saw.
func TestLoadgenNothingSucceeded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), []string{"-db", "sqlite:" + filepath.Join(t.TempDir(), "bench.db"), "-nodes", "20", "-farm-size", "10",
		"-url", url, "-scenario", "list", "-c", "2", "-n", "10", "-warmup", "0"}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "run list: none of its 10 requests succeeded") {
		t.Errorf("err %v, want none of its 10 requests succeeded\nstdout:\n%s", err, &stdout)
	}
	if !strings.Contains(stdout.String(), "== list:") {
		t.Errorf("the run's figures are not printed:\n%s", &stdout)
	}
}

// runLoadgen runs the command with args and returns its output.
func runLoadgen(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("loadgen %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, &stdout, &stderr)
	}
	return stdout.String()
}

// checkResult checks one run's figures for consistency.
func checkResult(t *testing.T, r load.Result) {
	t.Helper()
	sum := r.TransportErrors
	for _, n := range r.Status {
		sum += n
	}
	hist := 0
	for _, b := range r.Histogram {
		hist += b.Count
	}
	l := r.Latency
	switch {
	case r.Requests == 0:
		t.Errorf("%s: no requests", r.Name)
	case r.Requests != sum:
		t.Errorf("%s: %d requests, but statuses and transport errors add up to %d", r.Name, r.Requests, sum)
	case r.Requests != hist:
		t.Errorf("%s: %d requests, %d in the histogram", r.Name, r.Requests, hist)
	case r.OK != r.Requests || r.TransportErrors != 0 || r.BadBodies != 0:
		t.Errorf("%s: %d of %d ok (%v, %d transport errors, %d bad bodies); first error: %s",
			r.Name, r.OK, r.Requests, r.Status, r.TransportErrors, r.BadBodies, r.FirstError)
	case r.Requests != smokeRequests && r.Stop == load.StopCount:
		t.Errorf("%s: stopped by count after %d requests, want %d", r.Name, r.Requests, smokeRequests)
	case r.Stop != load.StopCount && r.Stop != load.StopDuration:
		t.Errorf("%s: stopped by %q", r.Name, r.Stop)
	case !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Mean <= l.Max):
		t.Errorf("%s: latency percentiles out of order: %+v", r.Name, l)
	case r.Throughput <= 0 || r.ElapsedSeconds <= 0:
		t.Errorf("%s: throughput %g over %g s", r.Name, r.Throughput, r.ElapsedSeconds)
	case r.Memory == nil || r.Memory.RSS == 0 || r.Memory.HWM < r.Memory.RSS || r.PeakRSS == 0:
		t.Errorf("%s: registrar memory not read: %+v, peak %d", r.Name, r.Memory, r.PeakRSS)
	}
	wantOK := map[string]int{load.ScenarioUptime: 201, load.ScenarioStatus: 201, load.ScenarioList: 200}[r.Scenario]
	if r.Status[wantOK] != r.Requests {
		t.Errorf("%s: statuses %v, want all %d", r.Name, r.Status, wantOK)
	}
}
