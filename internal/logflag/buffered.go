package logflag

import (
	"io"
	"sync"
	"time"
)

// maxBuffered is how many bytes a Buffered holds before it writes them
// out at once, whatever the interval.
const maxBuffered = 64 << 10

// Buffered is an io.Writer for log records that collects them and writes
// them to the underlying writer together: at most an interval after the
// first record waiting, at once when 64 KiB are waiting, and on Flush or
// Close. A server that logs one record per request then makes one write
// system call per interval instead of one per request, which on a busy
// registrar was half of what its access log cost. Records keep their
// order; a record is never split. What is still waiting when the process
// dies without Close (a crash) is lost: at most one interval of records.
type Buffered struct {
	w     io.Writer
	every time.Duration

	mu     sync.Mutex
	buf    []byte
	armed  bool // a flush is scheduled
	closed bool // writes go straight through
	err    error
}

// NewBuffered returns a Buffered writing to w at most every interval (a
// non-positive interval: every record at once, as w itself).
func NewBuffered(w io.Writer, every time.Duration) *Buffered {
	return &Buffered{w: w, every: every, closed: every <= 0}
}

// Write queues p (one record; slog handlers write each record with one
// call). It reports the error of an earlier write to the underlying
// writer, if any, once.
func (b *Buffered) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= maxBuffered {
		b.flushLocked()
	} else if !b.armed {
		b.armed = true
		time.AfterFunc(b.every, b.timed)
	}
	err := b.err
	b.err = nil
	return len(p), err
}

// timed is the scheduled flush.
func (b *Buffered) timed() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	b.flushLocked()
}

// flushLocked writes what is waiting; the caller holds mu, so that
// records reach w in the order they were written.
func (b *Buffered) flushLocked() {
	if len(b.buf) == 0 {
		return
	}
	if _, err := b.w.Write(b.buf); err != nil && b.err == nil {
		b.err = err
	}
	if cap(b.buf) > 4*maxBuffered {
		b.buf = nil // a burst made it large: do not keep that much
	} else {
		b.buf = b.buf[:0]
	}
}

// Flush writes what is waiting now and returns the first error of a
// write to the underlying writer since the last one reported.
func (b *Buffered) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	err := b.err
	b.err = nil
	return err
}

// Close flushes, and from then on writes every record at once.
func (b *Buffered) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.flushLocked()
	b.closed = true
	err := b.err
	b.err = nil
	return err
}
