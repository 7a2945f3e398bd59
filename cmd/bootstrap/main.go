// Command bootstrap is what the host starts on a grid4 node: it starts
// the current generation's zosd, verified, watches it, and switches back
// from a generation that fails. See docs/upgrade.md.
//
//	bootstrap --data DIR --zosd PATH --upgrade-publisher-key KEY -- [zosd flags]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/grid4/grid4/node/bootstrap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bootstrap.Main(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
