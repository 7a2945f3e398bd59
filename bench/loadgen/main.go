// Command loadgen benchmarks the registrar: it seeds a fleet of nodes
// straight into the registrar's database (or reuses one seeded before),
// starts the registrar (or targets one running on loopback) and drives
// signed uptime and status reports and node listings (by farm, or over the
// fleet with -list-fleet, filtered with -list-query) at it, then prints
// throughput, latency percentiles, answers by status and the registrar's
// memory.
//
//	loadgen -db postgres://postgres:postgres@127.0.0.1:5432/grid4_bench \
//	    -nodes 1000000 -registrar bin/registrar -scenario uptime,list -auth v2,legacy
//
// See docs/benchmarks.md for the figures and how they were made.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/bench/load"
	"github.com/grid4/grid4/store"
)

func main() { load.Main("loadgen", run) }

// options are the command line.
type options struct {
	db           string
	nodes        int
	farmSize     int
	seedOnly     bool
	registrar    string
	registrarArg stringList
	registrarLog string
	url          string
	scenarios    []string
	auths        []string
	run          load.RunConfig
	jsonOut      string
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, " ") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var (
		o                     options
		scenarios, authScheme string
	)
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.db, "db", "", "registrar database to seed and read the fleet from: sqlite:PATH or postgres://... (required)")
	fs.IntVar(&o.nodes, "nodes", 10_000, "nodes in the fleet (seeded if the database holds fewer)")
	fs.IntVar(&o.farmSize, "farm-size", load.DefaultFarmSize, "nodes per farm")
	fs.BoolVar(&o.seedOnly, "seed-only", false, "seed the fleet and exit")
	fs.StringVar(&o.registrar, "registrar", "", "registrar executable to start on a free loopback port (its memory is then reported)")
	fs.Var(&o.registrarArg, "registrar-arg", "extra argument for the started registrar (repeatable), e.g. -registrar-arg=--key-cache-ttl=1m")
	fs.StringVar(&o.registrarLog, "registrar-log", "", "file for the started registrar's output (default: discarded)")
	fs.StringVar(&o.url, "url", "", "base URL of a running registrar on loopback (instead of -registrar)")
	fs.StringVar(&scenarios, "scenario", "uptime,list", "scenarios to run, in order: uptime, status, list")
	fs.StringVar(&authScheme, "auth", "v2,legacy", "auth schemes of the uptime and status scenarios, each a run: v2, legacy")
	fs.IntVar(&o.run.Concurrency, "c", load.DefaultConcurrency, "requests in flight (connections)")
	fs.IntVar(&o.run.Requests, "n", load.DefaultRequests, "most requests per run (measured)")
	fs.DurationVar(&o.run.Duration, "duration", load.DefaultDuration, "longest measured phase per run")
	fs.IntVar(&o.run.Warmup, "warmup", 1000, "requests sent before each measured phase, not counted")
	fs.BoolVar(&o.run.Presign, "presign", true, "sign all uptime reports before the measured phase (else: sign each just before sending)")
	fs.DurationVar(&o.run.SignWindow, "sign-window", load.DefaultSignWindow, "the registrar's --uptime-window (and --legacy-window): presigned runs end before it passes")
	fs.Float64Var(&o.run.Rate, "rate", 0, "pace each run at this many requests/s (0: as fast as answered)")
	fs.IntVar(&o.run.PageSize, "page-size", load.DefaultPageSize, "size parameter of the list scenario")
	fs.StringVar(&o.run.ListQuery, "list-query", "", "added to the list scenario's query, e.g. healthy=true&free_mru=8GiB")
	fs.BoolVar(&o.run.ListFleet, "list-fleet", false, "list the whole fleet, not a random farm (no farm_id)")
	fs.Uint64Var(&o.run.Seed, "seed", 1, "random seed: order of the nodes, farms listed")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.db == "":
		return o, errors.New("-db is required (the fleet is seeded into it and read back from it)")
	case o.nodes < 1 || o.farmSize < 1:
		return o, errors.New("-nodes and -farm-size must be at least 1")
	case !o.seedOnly && (o.registrar == "") == (o.url == ""):
		return o, errors.New("give one of -registrar (start it) and -url (a running registrar)")
	}
	if o.url != "" {
		if err := load.CheckLoopback(o.url); err != nil {
			return o, err
		}
	}
	o.scenarios = splitList(scenarios)
	o.auths = splitList(authScheme)
	for _, s := range o.scenarios {
		if s != load.ScenarioUptime && s != load.ScenarioStatus && s != load.ScenarioList {
			return o, fmt.Errorf("-scenario %q: want %s, %s or %s", s, load.ScenarioUptime, load.ScenarioStatus, load.ScenarioList)
		}
	}
	for _, a := range o.auths {
		if a != load.AuthV2 && a != load.AuthLegacy {
			return o, fmt.Errorf("-auth %q: want %s or %s", a, load.AuthV2, load.AuthLegacy)
		}
	}
	if len(o.scenarios) == 0 || ((slices.Contains(o.scenarios, load.ScenarioUptime) || slices.Contains(o.scenarios, load.ScenarioStatus)) && len(o.auths) == 0) {
		return o, errors.New("-scenario and -auth must name at least one")
	}
	return o, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// run is the command: seed, start, run every scenario, report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	fleet, err := prepare(ctx, o, log)
	if err != nil {
		return err
	}
	if o.seedOnly {
		fmt.Fprintf(stdout, "fleet ready: %d nodes in %d farms (%d seeded now)\n", len(fleet.Nodes), len(fleet.Farms), fleet.Seeded)
		return nil
	}

	base := o.url
	var srv *load.Server
	if o.registrar != "" {
		if srv, err = startRegistrar(ctx, o, log); err != nil {
			return err
		}
		defer srv.Stop()
		base = srv.URL
	}
	pid := 0
	if srv != nil {
		pid = srv.PID()
	}
	probe, err := load.NewProbe(ctx, pid, o.db)
	if err != nil {
		return err
	}
	defer probe.Close()

	results, err := runScenarios(ctx, o, fleet, base, probe, stdout, log)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := load.WriteSummary(stdout, results); err != nil {
		return err
	}
	if o.jsonOut != "" {
		b, err := json.MarshalIndent(results, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding results: %w", err)
		}
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("writing results: %w", err)
		}
	}
	if srv != nil {
		probe.Close()
		if err := srv.Stop(); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", err)
	}
	// A run that measured only failures (registrar unreachable, every
	// answer an error) is no measurement: say so in the exit status.
	for _, r := range results {
		if r.Requests > 0 && r.OK == 0 {
			return fmt.Errorf("run %s: none of its %d requests succeeded (%d transport errors, statuses %v)", r.Name, r.Requests, r.TransportErrors, r.Status)
		}
	}
	return nil
}

// startRegistrar starts the registrar binary of --registrar on the
// fleet's database and waits until it answers.
func startRegistrar(ctx context.Context, o options, log *slog.Logger) (*load.Server, error) {
	var logw io.Writer
	if o.registrarLog != "" {
		f, err := os.Create(o.registrarLog)
		if err != nil {
			return nil, fmt.Errorf("registrar log: %w", err)
		}
		// The registrar holds its own descriptor; ours is not needed.
		defer f.Close()
		logw = f
	}
	start := time.Now()
	srv, err := load.StartServer(ctx, load.ServerConfig{Binary: o.registrar, DB: o.db, Args: o.registrarArg, Log: logw})
	if err != nil {
		return nil, err
	}
	m, err := load.ReadMemory(srv.PID())
	if err != nil {
		srv.Stop()
		return nil, err
	}
	log.Info("registrar ready", "url", srv.URL, "pid", srv.PID(), "startup", time.Since(start).Round(time.Millisecond), "rss", load.MiB(m.RSS))
	return srv, nil
}

// runScenarios runs every scenario (uptime once per auth scheme) against
// base, measuring each with probe, and writes each result as it comes.
func runScenarios(ctx context.Context, o options, fleet *load.Fleet, base string, probe *load.Probe, stdout io.Writer, log *slog.Logger) ([]load.Result, error) {
	var results []load.Result
	for _, sc := range o.scenarios {
		schemes := []string{""}
		if sc == load.ScenarioUptime || sc == load.ScenarioStatus {
			schemes = o.auths
		}
		for _, scheme := range schemes {
			cfg := o.run
			cfg.BaseURL, cfg.Scenario, cfg.Auth, cfg.Logger = base, sc, scheme, log
			if err := probe.Start(ctx); err != nil {
				return nil, err
			}
			res, err := load.Run(ctx, fleet, cfg)
			if err != nil {
				return nil, err
			}
			if err := probe.Finish(ctx, &res); err != nil {
				return nil, err
			}
			if err := load.WriteResult(stdout, res); err != nil {
				return nil, err
			}
			results = append(results, res)
			if ctx.Err() != nil {
				return results, nil
			}
		}
	}
	return results, nil
}

// prepare opens the database, seeds or reads back the fleet and closes
// the database again (the registrar is its only user during the runs).
func prepare(ctx context.Context, o options, log *slog.Logger) (*load.Fleet, error) {
	db, err := store.Open(ctx, o.db)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	f, err := load.PrepareFleet(ctx, db, load.FleetConfig{Nodes: o.nodes, FarmSize: o.farmSize, Logger: log})
	if err != nil {
		db.Close()
		return nil, err
	}
	log.Info("fleet ready", "nodes", len(f.Nodes), "farms", len(f.Farms), "seeded", f.Seeded, "elapsed", time.Since(start).Round(time.Millisecond))
	if err := db.Close(); err != nil {
		return nil, fmt.Errorf("closing the database: %w", err)
	}
	return f, nil
}
