package logflag

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// writes records every Write call it gets.
type writes struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (w *writes) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, string(p))
	return len(p), w.err
}

func (w *writes) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.calls...)
}

func TestBufferedWritesTogetherAfterTheInterval(t *testing.T) {
	var out writes
	b := NewBuffered(&out, 50*time.Millisecond)
	log := New(b, slog.LevelInfo, "text")
	for i := range 100 {
		log.Info("request", "i", i)
	}
	if got := out.snapshot(); len(got) != 0 {
		t.Fatalf("written before the interval: %d writes", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(out.snapshot()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("nothing written 5 s after the records")
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := out.snapshot()
	if len(got) != 1 {
		t.Fatalf("%d writes, want the 100 records in one", len(got))
	}
	lines := strings.Split(strings.TrimSuffix(got[0], "\n"), "\n")
	if len(lines) != 100 {
		t.Fatalf("%d lines, want 100", len(lines))
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, fmt.Sprintf("msg=request i=%d", i)) {
			t.Fatalf("line %d out of order or cut: %q", i, l)
		}
	}
	// A record after the flush is scheduled anew.
	log.Info("later")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.snapshot(); len(got) != 2 || !strings.Contains(got[1], "msg=later") {
		t.Fatalf("after Flush: %q", got)
	}
}

func TestBufferedWritesAtOnceWhenFull(t *testing.T) {
	var out writes
	b := NewBuffered(&out, time.Hour)
	rec := bytes.Repeat([]byte("x"), 1000)
	rec[len(rec)-1] = '\n'
	for range maxBuffered/len(rec) + 1 {
		if _, err := b.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	got := out.snapshot()
	if len(got) != 1 || len(got[0])%len(rec) != 0 || len(got[0]) < maxBuffered {
		t.Fatalf("%d writes (first %d bytes), want one of whole records once %d bytes wait", len(got), len(got[0]), maxBuffered)
	}
}

func TestBufferedCloseFlushesAndWritesThrough(t *testing.T) {
	var out writes
	b := NewBuffered(&out, time.Hour)
	_, _ = b.Write([]byte("first\n"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = b.Write([]byte("second\n"))
	if got := out.snapshot(); len(got) != 2 || got[0] != "first\n" || got[1] != "second\n" {
		t.Fatalf("writes %q", got)
	}
	// No interval: every record at once.
	var direct writes
	_, _ = NewBuffered(&direct, 0).Write([]byte("now\n"))
	if got := direct.snapshot(); len(got) != 1 {
		t.Fatalf("interval 0: %q", got)
	}
}

func TestBufferedReportsWriteErrors(t *testing.T) {
	out := writes{err: errors.New("disk full")}
	b := NewBuffered(&out, time.Hour)
	if _, err := b.Write([]byte("a\n")); err != nil {
		t.Fatalf("queued write: %v", err)
	}
	if err := b.Flush(); err == nil || err.Error() != "disk full" {
		t.Fatalf("Flush: %v, want disk full", err)
	}
	if err := b.Flush(); err != nil {
		t.Fatalf("second Flush with nothing waiting: %v", err)
	}
}
