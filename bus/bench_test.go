package bus

import (
	"context"
	"testing"
)

func benchServer(b *testing.B, workers int) *Client {
	c := newTestClient(b, Options{Logger: testLogger(b)})
	srv := NewServer(c, ServerOptions{Workers: workers})
	err := srv.Handle("benchd/echo@1.0", Methods{
		"Echo": Func1(func(_ context.Context, s string) (string, error) { return s, nil }),
	})
	if err != nil {
		b.Fatal(err)
	}
	serve(b, srv)
	return sibling(b, c)
}

// BenchmarkCall measures one round trip: a caller, a server and Redis.
func BenchmarkCall(b *testing.B) {
	caller := benchServer(b, 16)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Call[string](ctx, caller, "benchd/echo@1.0", "Echo", "hello"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallParallel measures throughput with many calls in flight from
// one client to one server.
func BenchmarkCallParallel(b *testing.B) {
	caller := benchServer(b, 16)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := Call[string](ctx, caller, "benchd/echo@1.0", "Echo", "hello"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
