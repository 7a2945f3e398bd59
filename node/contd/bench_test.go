package contd

import (
	"context"
	"fmt"
	"testing"

	"github.com/grid4/grid4/node/internal/hosttest"
)

// BenchmarkStart measures Start of a container on a network (namespace,
// veth, runtime spec, runc run) until its first process runs; the Stop
// after each is not counted.
func BenchmarkStart(b *testing.B) {
	benchStart(b, true)
}

// BenchmarkStartNoNetwork is Start without a network: the runtime alone.
func BenchmarkStartNoNetwork(b *testing.B) { benchStart(b, false) }

func benchStart(b *testing.B, network bool) {
	s := newService(b)
	sp := spec(b, "bench", `trap 'exit 0' TERM; while true; do sleep 1; done`)
	if network {
		l := hosttest.NewLAN(b, 211)
		sp.Network = &Network{Bridge: l.Bridge, IP: l.Addr(5), Gateway: l.Addr(1).Addr()}
	}
	sp.CPU, sp.Memory = 1, 64<<20
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		sp.ID = fmt.Sprintf("bench-%d", i)
		if err := s.Start(ctx, sp); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.Stop(ctx, sp.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
