// Command hub runs the grid4 hub: the HTTP server of flists, their blocks,
// tags (releases) and tag links.
//
//	hub [--listen :8090] [--data-dir hub-data] --publisher NAME=PUBLIC_KEY ...
//
// Every flag can also be set with an environment variable HUB_<FLAG>
// (HUB_LISTEN, HUB_DATA_DIR, HUB_PUBLISHER, ...); a flag wins over its
// variable. `hub --help` lists them all. See docs/hub.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/grid4/grid4/hub"
	"github.com/grid4/grid4/internal/logflag"
)

func main() {
	cfg, err := hub.ParseConfig(os.Args[1:], os.Getenv, os.Stdout)
	if errors.Is(err, hub.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hub: %v\n", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		// Errors of package hub already start with its name.
		fmt.Fprintf(os.Stderr, "hub: %s\n", strings.TrimPrefix(err.Error(), "hub: "))
		os.Exit(1)
	}
}

func run(cfg hub.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	log := logflag.New(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	if len(cfg.Publishers) == 0 {
		log.Warn("no publisher configured: the hub is read-only (add --publisher NAME=PUBLIC_KEY)")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	srv, err := hub.New(cfg, hub.Deps{Logger: log, Metrics: reg})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
