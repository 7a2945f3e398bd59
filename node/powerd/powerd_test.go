package powerd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/clock"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture makes a root with /proc/uptime and a data directory.
func fixture(t *testing.T, uptime string) (root, data string) {
	t.Helper()
	root, data = t.TempDir(), t.TempDir()
	if uptime != "" {
		os.MkdirAll(filepath.Join(root, "proc"), 0o755)
		if err := os.WriteFile(filepath.Join(root, "proc", "uptime"), []byte(uptime), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, data
}

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func check(h Health, name string) CheckResult {
	for _, c := range h.Checks {
		if c.Name == name {
			return c
		}
	}
	return CheckResult{Name: "missing " + name}
}

func TestParseUptime(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"12345.67 8901.23\n": 12345*time.Second + 670*time.Millisecond,
		"0.00 0.00":          0,
		"42":                 42 * time.Second,
	} {
		if got, err := parseUptime([]byte(in)); err != nil || got != want {
			t.Errorf("parseUptime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc 1", "-5 1", "1e13 0"} {
		if _, err := parseUptime([]byte(in)); err == nil {
			t.Errorf("parseUptime(%q) accepted", in)
		}
	}
}

func TestHealthy(t *testing.T) {
	root, data := fixture(t, "3600.5 100.0\n")
	m, err := New(Config{Root: root, DataDir: data, MinFree: 1}, pinger{}, clock.NewFake(t0), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	up, err := m.Uptime(ctx)
	if err != nil || up != 3600*time.Second+500*time.Millisecond {
		t.Fatalf("Uptime: %v %v", up, err)
	}
	h, _ := m.Health(ctx)
	if !h.Healthy || len(h.Checks) != 5 || h.Reason() != "" || !h.At.Equal(t0) {
		t.Errorf("health: %+v", h)
	}
	st, _ := m.Status(ctx)
	if st.Uptime != 3600.5 || !st.BootTime.Equal(t0.Add(-3600*time.Second-500*time.Millisecond).Truncate(time.Second)) {
		t.Errorf("status: %+v", st)
	}
	if entries, _ := os.ReadDir(data); len(entries) != 0 {
		t.Errorf("the write check left %v behind", entries)
	}
}

// TestUnhealthy: each check fails for its reason, and the reason says it.
func TestUnhealthy(t *testing.T) {
	ctx := context.Background()
	t.Run("maintenance", func(t *testing.T) {
		root, data := fixture(t, "10 10")
		os.WriteFile(filepath.Join(data, MaintenanceFile), []byte("replacing a disk\nmore\n"), 0o644)
		m, _ := New(Config{Root: root, DataDir: data, MinFree: 1}, nil, nil, nil)
		h, _ := m.Health(ctx)
		if h.Healthy || !strings.Contains(h.Reason(), "maintenance: under maintenance") || !strings.Contains(h.Reason(), "replacing a disk") {
			t.Errorf("health: %+v", h)
		}
		if len(h.Checks) != 4 {
			t.Errorf("bus check ran without a bus: %+v", h.Checks)
		}
	})
	t.Run("disk full", func(t *testing.T) {
		root, data := fixture(t, "10 10")
		m, _ := New(Config{Root: root, DataDir: data, MinFree: 1 << 62}, nil, nil, nil)
		h, _ := m.Health(ctx)
		if c := check(h, CheckDiskSpace); c.OK || !strings.Contains(c.Reason, "bytes free") || h.Healthy {
			t.Errorf("disk_space: %+v", c)
		}
	})
	t.Run("no uptime", func(t *testing.T) {
		root, data := fixture(t, "")
		m, _ := New(Config{Root: root, DataDir: data, MinFree: 1}, nil, nil, nil)
		if _, err := m.Uptime(ctx); !errors.Is(err, ErrUptime) {
			t.Errorf("Uptime: %v", err)
		}
		h, _ := m.Health(ctx)
		if c := check(h, CheckUptime); c.OK || h.Healthy {
			t.Errorf("uptime: %+v", c)
		}
	})
	t.Run("data dir gone", func(t *testing.T) {
		root, data := fixture(t, "10 10")
		m, _ := New(Config{Root: root, DataDir: filepath.Join(data, "gone"), MinFree: 1}, nil, nil, nil)
		h, _ := m.Health(ctx)
		if c := check(h, CheckDataWritable); c.OK || !strings.Contains(c.Reason, "cannot create") {
			t.Errorf("data_writable: %+v", c)
		}
	})
	t.Run("bus down", func(t *testing.T) {
		root, data := fixture(t, "10 10")
		m, _ := New(Config{Root: root, DataDir: data, MinFree: 1}, pinger{errors.New("connection refused")}, nil, nil)
		h, _ := m.Health(ctx)
		if c := check(h, CheckBus); c.OK || c.Reason != "connection refused" {
			t.Errorf("bus: %+v", c)
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWatchLogsChanges: the health loop runs every CheckInterval on the
// clock and logs when health changes, with the reason.
func TestWatchLogsChanges(t *testing.T) {
	root, data := fixture(t, "10 10")
	var logs syncBuffer
	c := clock.NewFake(t0)
	m, _ := New(Config{Root: root, DataDir: data, MinFree: 1, CheckInterval: time.Minute}, nil, c, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Watch(ctx) }()
	wait := func() {
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		defer wcancel()
		if err := c.WaitTimers(wctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	wait()
	os.WriteFile(filepath.Join(data, MaintenanceFile), []byte("move"), 0o644)
	c.AdvanceToNext()
	wait()
	c.AdvanceToNext() // unchanged: no new line
	wait()
	os.Remove(filepath.Join(data, MaintenanceFile))
	if now, _ := c.AdvanceToNext(); !now.Equal(t0.Add(3 * time.Minute)) {
		t.Errorf("third check at %v", now)
	}
	wait()
	cancel()
	<-done
	out := logs.String()
	if strings.Count(out, "node is healthy") != 2 || strings.Count(out, "node is unhealthy") != 1 || !strings.Contains(out, "under maintenance") {
		t.Errorf("logs:\n%s", out)
	}
}

func TestServiceOverBus(t *testing.T) {
	root, data := fixture(t, "7200 1")
	c := bustest.New(t)
	m, _ := New(Config{Root: root, DataDir: data, MinFree: 1}, c, nil, nil)
	bustest.Serve(t, c, Object, m.Methods())
	s := NewStub(c)
	ctx := context.Background()
	if up, err := s.Uptime(ctx); err != nil || up != 2*time.Hour {
		t.Errorf("Uptime: %v %v", up, err)
	}
	h, err := s.Health(ctx)
	if err != nil || !h.Healthy || check(h, CheckBus).OK != true {
		t.Errorf("Health: %+v %v", h, err)
	}
	if st, err := s.Status(ctx); err != nil || st.Uptime != 7200 || !st.Health.Healthy {
		t.Errorf("Status: %+v %v", st, err)
	}
}
