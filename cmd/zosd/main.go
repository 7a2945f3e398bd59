// Command zosd is the grid4 node daemon: it registers the machine with a
// registrar and keeps it reported, running the node's modules over a
// Redis bus. See docs/node.md.
//
//	zosd --registrar URL --farm ID [--data DIR] [--interface NAME] [--redis URL]
//	zosd run MODULE [flags]
//	zosd status [--data DIR] [-o json]
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/grid4/grid4/node/zosd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := zosd.Main(ctx, os.Args[1:], zosd.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
