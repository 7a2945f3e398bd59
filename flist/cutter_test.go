package flist

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestCutter(t *testing.T) {
	var mu sync.Mutex
	stored := map[ID]int{}
	sink := BlockSinkFunc(func(_ context.Context, id ID, enc []byte) error {
		if _, err := DecodeBlock(id, enc, -1); err != nil {
			return err
		}
		mu.Lock()
		stored[id]++
		mu.Unlock()
		return nil
	})
	c := NewCutter(context.Background(), sink, 2)
	big := bytes.Repeat([]byte("0123456789abcdef"), MaxBlockSize/16+1) // 1 MiB + 16 bytes
	blocks, size, err := c.Cut(bytes.NewReader(big))
	if err != nil || size != int64(len(big)) || len(blocks) != 2 || blocks[0].Size != MaxBlockSize || blocks[1].Size != 16 {
		t.Fatalf("Cut: %v %d %+v", err, size, blocks)
	}
	// The same content again, and an empty file: nothing new is stored.
	again, _, err := c.Cut(bytes.NewReader(big))
	if err != nil || again[0] != blocks[0] {
		t.Fatal(err)
	}
	empty, n, err := c.Cut(strings.NewReader(""))
	if err != nil || n != 0 || empty == nil || len(empty) != 0 {
		t.Fatalf("empty: %v %d %v", err, n, empty)
	}
	if err := c.Wait(); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 2 || stored[blocks[0].ID] != 1 || stored[blocks[1].ID] != 1 {
		t.Fatalf("stored: %v", stored)
	}

	// A failing sink fails Cut (soon) and Wait.
	boom := errors.New("disk full")
	c = NewCutter(context.Background(), BlockSinkFunc(func(context.Context, ID, []byte) error { return boom }), 1)
	var cutErr error
	for i := 0; i < 100 && cutErr == nil; i++ {
		_, _, cutErr = c.Cut(strings.NewReader(strings.Repeat("x", i+1)))
	}
	if !errors.Is(cutErr, boom) || !errors.Is(c.Wait(), boom) {
		t.Fatalf("failing sink: Cut %v, Wait %v", cutErr, c.Wait())
	}
}
