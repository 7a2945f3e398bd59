package zosd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/process"
)

// TestLeftRedisIsFound: a running redis-server, which has rewritten its
// command line into its title, is found by its socket and killed; one on
// another socket is not.
func TestLeftRedisIsFound(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("needs redis-server: run `make test-services`")
	}
	dir := t.TempDir()
	start := func(sock string) *exec.Cmd {
		c := exec.Command("redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--loglevel", "warning")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		for i := 0; ; i++ {
			if _, err := os.Stat(sock); err == nil {
				return c
			}
			if i == 500 {
				t.Fatalf("redis-server made no socket %s", sock)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	mine, other := filepath.Join(dir, "redis.sock"), filepath.Join(dir, "other.sock")
	left, kept := start(mine), start(other)
	waited := make(chan struct{})
	go func() { left.Wait(); close(waited) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := process.KillMatching(ctx, redisOn(mine))
	if err != nil || n != 1 {
		t.Fatalf("killed %d, %v; want the one redis-server on %s", n, err, mine)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the redis-server on the socket still runs")
	}
	if kept.ProcessState != nil || kept.Process.Signal(syscall.Signal(0)) != nil {
		t.Fatal("the redis-server on another socket was killed")
	}
}
