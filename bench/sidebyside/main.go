// Command sidebyside compares two registrars that speak the public Grid v4
// API, given only their URLs: it seeds the same fleet on each through the
// API (accounts, farms, nodes, legacy X-Auth), then runs the same request
// mixes against them alternately, round after round, and prints the
// medians: throughput, latency percentiles and, given each registrar's PID
// and PostgreSQL database, the CPU the registrar and its database backends
// spent per request.
//
//	sidebyside \
//	    -a name=public,url=http://127.0.0.1:8081,pid=1234,db=postgres://postgres@127.0.0.1/public_side \
//	    -b name=grid4,url=http://127.0.0.1:8082,pid=1235,db=postgres://postgres@127.0.0.1/grid4_side \
//	    -nodes 20000 -farms 20 -mix uptime:32,list:1,list:8,version:8 -rounds 3 -duration 10s
//
// The first account seeded is the admin that sets the ZOS version when
// none is set: on a fresh database it is twin 1 (start grid4 with
// --admin-twin 1 and without rate limits: --rate-ip 0 --rate-twin 0).
// The measured requests go out through the load generator's own HTTP/1.1
// client (-nethttp: net/http's); its CPU per request is the last column.
// See docs/benchmarks.md.
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
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/bench/load"
)

func main() { load.Main("sidebyside", run) }

// parseTarget parses "name=N,url=U[,pid=P][,db=D]".
func parseTarget(s string) (load.Target, error) {
	var t load.Target
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return t, fmt.Errorf("target %q: want name=N,url=U[,pid=P][,db=postgres://...]", s)
		}
		switch k {
		case "name":
			t.Name = v
		case "url":
			t.URL = v
		case "pid":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return t, fmt.Errorf("target %q: pid %q", s, v)
			}
			t.PID = n
		case "db":
			t.DB = v
		default:
			return t, fmt.Errorf("target %q: unknown key %q", s, k)
		}
	}
	if t.Name == "" || t.URL == "" {
		return t, fmt.Errorf("target %q: name and url are required", s)
	}
	return t, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		a, b, mixes, jsonOut string
		cfg                  load.SideConfig
	)
	fs := flag.NewFlagSet("sidebyside", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&a, "a", "", "first registrar: name=N,url=http://127.0.0.1:PORT[,pid=PID][,db=postgres://...] (required)")
	fs.StringVar(&b, "b", "", "second registrar, same form (required)")
	fs.IntVar(&cfg.Nodes, "nodes", 20_000, "nodes seeded on each registrar (each with its own twin)")
	fs.IntVar(&cfg.Farms, "farms", 20, "farms the nodes are spread over")
	fs.StringVar(&mixes, "mix", "uptime:32,list:1,list:8,version:8", "request mixes, route:in-flight; routes: uptime, list, version")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each runs every mix on both registrars, alternating which goes first")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time of each run")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "unmeasured time before each run")
	fs.IntVar(&cfg.MaxUptime, "max-uptime", 100_000, "most uptime reports per run (signed before it)")
	fs.IntVar(&cfg.SeedConcurrency, "seed-c", 16, "seeding requests in flight")
	fs.StringVar(&jsonOut, "json", "", "also write every run as JSON to this file")
	fs.BoolVar(&cfg.NetHTTP, "nethttp", false, "send the measured requests with net/http's client instead of the load generator's own (which costs less CPU per request)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, s := range []string{a, b} {
		t, err := parseTarget(s)
		if err != nil {
			return err
		}
		cfg.Targets = append(cfg.Targets, t)
	}
	if cfg.Targets[0].Name == cfg.Targets[1].Name {
		return errors.New("the two registrars need different names")
	}
	var err error
	if cfg.Mixes, err = load.ParseMixes(mixes); err != nil {
		return err
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	runs, err := load.Side(ctx, cfg)
	if jsonOut != "" && len(runs) > 0 {
		raw, jerr := json.MarshalIndent(runs, "", "  ")
		if jerr == nil {
			jerr = os.WriteFile(jsonOut, append(raw, '\n'), 0o644)
		}
		if jerr != nil {
			return errors.Join(err, fmt.Errorf("writing %s: %w", jsonOut, jerr))
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d nodes in %d farms, %d rounds of %v (medians):\n\n", cfg.Nodes, cfg.Farms, cfg.Rounds, cfg.Duration)
	return load.WriteSide(stdout, load.Summarize(runs, cfg.Mixes, cfg.Targets), cfg.Targets)
}
