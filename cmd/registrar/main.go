// Command registrar runs the grid4 registrar: the HTTP server where twins,
// farms and nodes register, nodes report uptime and the ZOS version is
// published.
//
//	registrar [--listen :8080] [--db sqlite:registrar.db] [--admin-twin ID[,ID]] ...
//
// Every flag can also be set with an environment variable REGISTRAR_<FLAG>
// (REGISTRAR_LISTEN, REGISTRAR_DB, REGISTRAR_ADMIN_TWIN, ...); a flag wins
// over its variable. `registrar --help` lists them all. See
// docs/registrar.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/registrar"
	"github.com/grid4/grid4/store"
)

func main() {
	cfg, err := registrar.ParseConfig(os.Args[1:], os.Getenv, os.Stdout)
	if errors.Is(err, registrar.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "registrar: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		// Errors of package registrar already start with its name.
		fmt.Fprintf(os.Stderr, "registrar: %s\n", oneLine(strings.TrimPrefix(err.Error(), "registrar: ")))
		os.Exit(1)
	}
}

// oneLine joins the lines of an error message with spaces: PostgreSQL's
// driver lists each address it failed to reach on a line of its own, and
// the program's error is one line.
func oneLine(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return strings.Join(lines, " ")
}

// gcPercent is the registrar's GOGC unless the environment sets one. Its
// live heap is small (tens of MB, the fleet lives in the database) and
// every request allocates, so the default of 100 spent about a fifth of
// the CPU of a node list on collections; 400 costs a few tens of MB more
// and lifted node lists by up to a third (docs/benchmarks.md).
const gcPercent = 400

// logFlushInterval is how long log records may wait to be written
// together (logflag.Buffered): at the default level the registrar logs
// every request, and one write per record was half of the access log's
// cost.
const logFlushInterval = 100 * time.Millisecond

func run(cfg registrar.Config) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := logflag.NewBuffered(os.Stderr, logFlushInterval)
	defer out.Close()
	log := logflag.New(out, cfg.LogLevel, cfg.LogFormat)

	db, err := store.Open(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer db.Close()
	log.Info("store open", "dialect", db.Dialect())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := registrar.New(cfg, registrar.Deps{Store: db, Logger: log, Metrics: reg})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
