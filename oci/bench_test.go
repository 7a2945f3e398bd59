package oci_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/oci"
	"github.com/grid4/grid4/oci/ocitest"
)

// BenchmarkConvert converts a 64 MiB image (a 48 MiB file, half random
// and half text, and 4,000 files of 4 KiB over two layers), its blocks
// thrown away (the conversion alone) or written to a scratch block store
// (as gridctl hub push-image does before uploading).
func BenchmarkConvert(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 48<<20)
	for i := range big[:len(big)/2] {
		big[i] = byte(rng.Uint32())
	}
	for i := len(big) / 2; i < len(big); i++ {
		big[i] = "the quick brown fox jumps over the lazy dog\n"[i%44]
	}
	small := ocitest.Layer{}
	for i := range 4000 {
		data := make([]byte, 4096)
		for j := range data {
			data[j] = byte(rng.Uint32() % 64)
		}
		small[fmt.Sprintf("usr/share/f%03d/%d", i%100, i)] = ocitest.Bytes(data, 0o644)
	}
	img := ocitest.Image{Layers: []ocitest.Layer{{"usr/lib/big": ocitest.Bytes(big, 0o644)}, small}}
	for _, f := range []struct {
		name   string
		format ocitest.Format
		gzip   bool
	}{{"docker-save", ocitest.DockerSave, false}, {"oci-gzip", ocitest.OCIArchive, true}} {
		for _, store := range []bool{false, true} {
			name := f.name + "/discard"
			if store {
				name = f.name + "/scratch-store"
			}
			b.Run(name, func(b *testing.B) {
				img.Format, img.Gzip = f.format, f.gzip
				p := ocitest.Archive(b, b.TempDir(), img)
				b.SetBytes(int64(len(big) + 4000*4096))
				for b.Loop() {
					var sink flist.BlockSink = discard
					if store {
						s, err := flist.NewDirStore(b.TempDir())
						if err != nil {
							b.Fatal(err)
						}
						s.NoSync = true
						sink = s
					}
					if _, err := oci.Convert(context.Background(), p, sink, oci.Options{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
