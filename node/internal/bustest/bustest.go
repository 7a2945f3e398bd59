// Package bustest gives the node packages' tests a bus on the shared test
// Redis (GRID4_TEST_REDIS, default redis://127.0.0.1:6379/0), under a key
// prefix of their own that is deleted when the test ends.
package bustest

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/bus"
)

// URL is the test Redis.
func URL() string {
	if u := os.Getenv("GRID4_TEST_REDIS"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Prefix returns a fresh key prefix for t.
func Prefix(t testing.TB) string {
	return fmt.Sprintf("nodetest:%s:%s:", strings.ReplaceAll(t.Name(), "/", "_"), rand.Text()[:8])
}

// New opens a client on the test Redis under a fresh prefix. It fails the
// test, loudly, when Redis is unreachable.
func New(t testing.TB) *bus.Client {
	t.Helper()
	return Open(t, Prefix(t))
}

// Open opens a client on the test Redis under prefix (a module of the same
// node opens another with the same prefix) and deletes the prefix's keys
// at the end of the test.
func Open(t testing.TB, prefix string) *bus.Client {
	t.Helper()
	c, err := bus.Open(URL(), bus.Options{Prefix: prefix, Logger: slog.New(slog.DiscardHandler), DefaultTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open test redis %s: %v", URL(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("the test Redis at %s (GRID4_TEST_REDIS) is unreachable: %v; start it with `make test-services`", URL(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Redis().Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Redis().Del(ctx, iter.Val())
		}
		c.Close()
	})
	return c
}

// Serve serves object with methods through c until the test ends.
func Serve(t testing.TB, c *bus.Client, object string, methods bus.Methods) {
	t.Helper()
	srv := bus.NewServer(c, bus.ServerOptions{})
	if err := srv.Handle(object, methods); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", object, err)
		}
	})
}

// DocListsMethods fails t unless the section "## The bus object `object`"
// of the Markdown file md has a table listing exactly the methods served
// (rows starting "| `Method` |"): the docs say what the object serves.
func DocListsMethods(t testing.TB, md, object string, served bus.Methods) {
	t.Helper()
	b, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## The bus object `"+object+"`\n")
	if !ok {
		t.Fatalf("%s has no section for %s", md, object)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Za-z]+)` \\|").FindAllStringSubmatch(sec, -1) {
		documented = append(documented, m[1])
	}
	slices.Sort(documented)
	if want := slices.Sorted(maps.Keys(served)); !slices.Equal(documented, want) {
		t.Errorf("%s documents %v; %s serves %v", md, documented, object, want)
	}
}
