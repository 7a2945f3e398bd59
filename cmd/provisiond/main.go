// Command provisiond runs a node's provisioning engine and its user API,
// zos-api-light. Everything is in package node/provisiond/daemon; see
// docs/provisioning.md and docs/zos-api.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/grid4/grid4/node/provisiond/daemon"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(daemon.Main(ctx, version, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}
