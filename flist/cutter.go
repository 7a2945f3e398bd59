package flist

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"

	"golang.org/x/sync/errgroup"
)

// Cutter cuts file contents into blocks of MaxBlockSize bytes (the last
// one shorter) and hands each distinct block, encoded (EncodeBlock), to a
// BlockSink once, compressing and storing on several goroutines while the
// caller reads on. Build uses one for a directory; other builders (the
// container image converter) use one for what they read.
type Cutter struct {
	ctx  context.Context
	g    *errgroup.Group
	jobs chan cutJob
	seen map[ID]bool
	buf  []byte
	done bool
}

type cutJob struct {
	id   ID
	data []byte
}

// NewCutter starts workers goroutines (0: GOMAXPROCS) storing blocks in
// sink. Call Wait when done.
func NewCutter(ctx context.Context, sink BlockSink, workers int) *Cutter {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	c := &Cutter{ctx: gctx, g: g, jobs: make(chan cutJob, workers), seen: make(map[ID]bool)}
	for range workers {
		g.Go(func() error {
			for j := range c.jobs {
				if err := sink.PutBlock(gctx, j.id, EncodeBlock(j.data)); err != nil {
					return fmt.Errorf("flist: storing block %s: %w", j.id, err)
				}
			}
			return nil
		})
	}
	return c
}

// Cut reads r to its end and returns its blocks (an empty, non-nil list
// for empty content) and length. Blocks not seen before by this Cutter go
// to the sink. Calls must not overlap. After a sink failure (or the
// context's end) it returns that error; Wait returns the sink's.
func (c *Cutter) Cut(r io.Reader) ([]BlockRef, int64, error) {
	if c.buf == nil {
		c.buf = make([]byte, MaxBlockSize)
	}
	blocks := []BlockRef{}
	var size int64
	for {
		if err := c.ctx.Err(); err != nil {
			return nil, 0, context.Cause(c.ctx)
		}
		n, err := fill(r, c.buf)
		if n > 0 {
			data := c.buf[:n]
			id := Sum(data)
			if !c.seen[id] {
				c.seen[id] = true
				select {
				case c.jobs <- cutJob{id: id, data: slices.Clone(data)}:
				case <-c.ctx.Done():
					return nil, 0, context.Cause(c.ctx)
				}
			}
			blocks = append(blocks, BlockRef{ID: id, Size: int64(n)})
			size += int64(n)
		}
		switch {
		case err == io.EOF:
			return blocks, size, nil
		case err != nil:
			return nil, 0, err
		}
	}
}

// fill reads into buf until it is full or r ends (io.EOF, possibly with
// n > 0). Unlike io.ReadFull it passes on every other error as is: a
// reader's io.ErrUnexpectedEOF (a truncated tar entry) is a failure, not
// the end of the content.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Wait ends the cutting (no Cut after it) and waits until every block has
// been stored; it returns the first error of the sink.
func (c *Cutter) Wait() error {
	if !c.done {
		c.done = true
		close(c.jobs)
	}
	return c.g.Wait()
}
