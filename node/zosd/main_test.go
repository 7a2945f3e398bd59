package zosd

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/process"
)

// TestMain runs the test binary as zosd's hidden subcommand when flistd
// starts it to serve a lazy flist mount (a node in process starts
// os.Executable(), the test binary), or the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == FlistServeCommand {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := Main(ctx, os.Args[1:], Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// stopFlistServers stops, when the test ends, the servers of the lazy
// flist mounts of the node on data: they outlive the node, as on a
// machine.
func stopFlistServers(t *testing.T, data string) {
	t.Cleanup(func() {
		pids, _ := filepath.Glob(filepath.Join(data, "flist", "lazy", "*.pid"))
		for _, p := range pids {
			_ = process.Stop(context.Background(), p, strings.TrimSuffix(p, ".pid"), time.Second)
		}
	})
}
