// Command gridctl is the ThreeFold Grid v4 command line. The commands live in
// package gridctl; this is only the process wrapper.
package main

import (
	"context"
	"os"
	"os/signal"

	"github.com/grid4/grid4/gridctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := gridctl.Run(ctx, os.Args[1:], gridctl.Env{
		Stdin:  os.Stdin,
		Stdout: os.Stdout,
		Stderr: os.Stderr,
		Getenv: os.Getenv,
	})
	stop()
	os.Exit(code)
}
