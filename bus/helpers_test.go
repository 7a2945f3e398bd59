package bus

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// testRedisURL is the shared test Redis (see the Makefile).
func testRedisURL() string {
	if u := os.Getenv("GRID4_TEST_REDIS"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// testLogger logs to the test's output at level Warn and above (Debug with
// -v and BUS_DEBUG=1).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("BUS_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: level}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newTestClient opens a client on the shared test Redis under a prefix of
// its own, and deletes the prefix's keys when the test ends. It fails the
// test, loudly, when Redis is unreachable.
func newTestClient(t testing.TB, opts Options) *Client {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = fmt.Sprintf("bustest:%s:%s:", strings.ReplaceAll(t.Name(), "/", "_"), rand.Text()[:8])
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	url := testRedisURL()
	c, err := Open(url, opts)
	if err != nil {
		t.Fatalf("open test redis %s: %v", url, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("the test Redis at %s (GRID4_TEST_REDIS) is unreachable: %v — start it with scripts/test-services.sh or `make test-services`", url, err)
	}
	t.Cleanup(func() {
		cleanupPrefix(t, c.rdb, opts.Prefix)
		c.Close()
	})
	return c
}

// sibling opens another client on the same Redis and prefix as c, as
// another module would.
func sibling(t testing.TB, c *Client) *Client {
	t.Helper()
	opts := c.opts
	opts.Logger = testLogger(t)
	c2 := NewClient(c.rdb, opts)
	t.Cleanup(func() { c2.Close() })
	return c2
}

func cleanupPrefix(t testing.TB, rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+"*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Logf("cleanup %s*: %v", prefix, err)
		return
	}
	if len(keys) > 0 {
		if err := rdb.Del(ctx, keys...).Err(); err != nil {
			t.Logf("cleanup %s*: %v", prefix, err)
		}
	}
}

// serve runs srv until the test ends and checks that Serve returned nil.
func serve(t testing.TB, srv *Server) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
}

// privateRedis is a redis-server of the test's own on a unix socket, which
// the test may kill and restart.
type privateRedis struct {
	t    testing.TB
	bin  string
	dir  string
	sock string
	cmd  *exec.Cmd
}

func startPrivateRedis(t testing.TB) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server is needed for this test (apt-get install redis-server): %v", err)
	}
	// Unix socket paths are limited to ~108 bytes: keep it short.
	dir, err := os.MkdirTemp("", "bus-redis-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &privateRedis{t: t, bin: bin, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	r.start()
	t.Cleanup(r.kill)
	return r
}

func (r *privateRedis) url() string { return "unix://" + r.sock }

func (r *privateRedis) start() {
	r.t.Helper()
	cmd := exec.Command(r.bin,
		"--port", "0",
		"--unixsocket", r.sock,
		"--unixsocketperm", "700",
		"--save", "",
		"--appendonly", "no",
		"--dir", r.dir,
	)
	cmd.Stdout = io.Discard
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	rdb := redis.NewClient(&redis.Options{Network: "unix", Addr: r.sock, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("private redis-server on %s did not come up: %v", r.sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill kills the server the hard way, as a crash would.
func (r *privateRedis) kill() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
	os.Remove(r.sock)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
