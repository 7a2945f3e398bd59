package vmd

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkBoot measures Start of a machine (initramfs, virtiofsd, QEMU)
// until its entrypoint's first line is on the console: under TCG on the
// test machines. The Stop after each is not counted.
func BenchmarkBoot(b *testing.B) {
	needHost(b)
	s := newService(b, config(b))
	sp := spec(b, "bench", `echo "entrypoint runs"; exec sleep 1000`)
	ctx, dir := context.Background(), b.TempDir()
	for i := 0; b.Loop(); i++ {
		sp.ID = fmt.Sprintf("bench-%d", i)
		// A console per boot: the line must be this boot's.
		sp.Console = filepath.Join(dir, sp.ID+".log")
		if err := s.Start(ctx, sp); err != nil {
			b.Fatal(err)
		}
		consoleHas(b, sp, "entrypoint runs\n")
		b.StopTimer()
		if err := s.Stop(ctx, sp.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
