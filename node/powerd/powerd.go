// Package power is powerd: it tracks how long the node has been up and
// whether it is healthy. registrar_light asks it before each uptime
// report, and an unhealthy node skips the report: an uptime report tells
// the grid the node is up and usable, which an unhealthy node is not.
//
// # Health checks
//
//   - uptime: /proc/uptime (under the configured root) can be read and
//     parsed; without it the node cannot say how long it has been up.
//   - bus: the node's Redis answers a PING; without it the modules cannot
//     talk to each other.
//   - data_writable: a file can be created, written, synced and removed in
//     the data directory; a read-only or failing disk loses state.
//   - disk_space: the data directory's file system has at least MinFree
//     bytes available.
//   - maintenance: no file named "maintenance" in the data directory. An
//     operator creates it (its first line is the reason shown) to take a
//     node out of service without stopping it.
//
// The node is healthy when every check passes. Health is evaluated afresh
// on each call (the checks are a few system calls), and a background loop
// re-evaluates it every CheckInterval to log changes.
package powerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grid4/grid4/node/internal/clock"
)

// Check names.
const (
	CheckUptime       = "uptime"
	CheckBus          = "bus"
	CheckDataWritable = "data_writable"
	CheckDiskSpace    = "disk_space"
	CheckMaintenance  = "maintenance"
)

// MaintenanceFile is the file in the data directory that marks the node
// as under maintenance.
const MaintenanceFile = "maintenance"

// Defaults of Config.
const (
	DefaultCheckInterval = 30 * time.Second
	DefaultMinFree       = 100 << 20
)

// ErrUptime wraps a failure to read the uptime.
var ErrUptime = errors.New("cannot read uptime")

// Pinger checks that the bus answers; *bus.Client is one.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures a Monitor.
type Config struct {
	// Root is the directory /proc is read under ("/" when empty).
	Root string
	// DataDir is the node's data directory, checked for writes and space.
	DataDir string
	// MinFree is the least free space, in bytes, the data directory's file
	// system must have (DefaultMinFree when 0).
	MinFree uint64
	// CheckInterval is how often the background loop re-evaluates health
	// (DefaultCheckInterval when 0).
	CheckInterval time.Duration
}

// CheckResult is the outcome of one health check.
type CheckResult struct {
	Name string `json:"name"`
	OK   bool   `json:"ok"`
	// Reason says why the check failed.
	Reason string `json:"reason,omitempty"`
}

// Health is the node's health at one moment.
type Health struct {
	Healthy bool          `json:"healthy"`
	Checks  []CheckResult `json:"checks"`
	At      time.Time     `json:"at"`
}

// Reason joins the reasons of the failed checks ("" when healthy).
func (h Health) Reason() string {
	var out []string
	for _, c := range h.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Reason)
		}
	}
	return strings.Join(out, "; ")
}

// Status is what powerd reports: uptime and health.
type Status struct {
	// Uptime is the time since boot, in seconds.
	Uptime float64 `json:"uptime"`
	// BootTime is now minus Uptime.
	BootTime time.Time `json:"boot_time"`
	Health   Health    `json:"health"`
}

// Monitor evaluates the node's uptime and health.
type Monitor struct {
	cfg   Config
	bus   Pinger
	clock clock.Clock
	log   *slog.Logger
}

// New returns a Monitor. bus may be nil (the bus check is then skipped, for
// tools that run without one).
func New(cfg Config, bus Pinger, c clock.Clock, log *slog.Logger) (*Monitor, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("power: no data directory")
	}
	if cfg.Root == "" {
		cfg.Root = "/"
	}
	if cfg.MinFree == 0 {
		cfg.MinFree = DefaultMinFree
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if c == nil {
		c = clock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{cfg: cfg, bus: bus, clock: c, log: log}, nil
}

// Uptime returns the time since the machine booted, from /proc/uptime.
func (m *Monitor) Uptime(context.Context) (time.Duration, error) {
	p := filepath.Join(m.cfg.Root, "proc", "uptime")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrUptime, err)
	}
	d, err := parseUptime(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrUptime, p, err)
	}
	return d, nil
}

// parseUptime reads the first field of /proc/uptime ("12345.67 8901.23").
func parseUptime(b []byte) (time.Duration, error) {
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, errors.New("empty")
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil || secs < 0 || secs > 1e12 {
		return 0, fmt.Errorf("%q is not an uptime in seconds", f[0])
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// Health evaluates every check now.
func (m *Monitor) Health(ctx context.Context) (Health, error) {
	h := Health{Healthy: true, At: m.clock.Now()}
	add := func(name string, err error) {
		r := CheckResult{Name: name, OK: err == nil}
		if err != nil {
			r.Reason = err.Error()
			h.Healthy = false
		}
		h.Checks = append(h.Checks, r)
	}
	_, err := m.Uptime(ctx)
	add(CheckUptime, err)
	if m.bus != nil {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := m.bus.Ping(pctx)
		cancel()
		add(CheckBus, err)
	}
	add(CheckDataWritable, m.checkWritable())
	add(CheckDiskSpace, m.checkSpace())
	add(CheckMaintenance, m.checkMaintenance())
	return h, nil
}

// Status returns uptime and health.
func (m *Monitor) Status(ctx context.Context) (Status, error) {
	h, err := m.Health(ctx)
	if err != nil {
		return Status{}, err
	}
	up, err := m.Uptime(ctx)
	if err != nil {
		return Status{Health: h}, nil
	}
	return Status{Uptime: up.Seconds(), BootTime: h.At.Add(-up).Truncate(time.Second), Health: h}, nil
}

func (m *Monitor) checkWritable() error {
	f, err := os.CreateTemp(m.cfg.DataDir, ".health-*")
	if err != nil {
		return fmt.Errorf("cannot create a file in %s: %w", m.cfg.DataDir, err)
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write([]byte("ok\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write to %s: %w", m.cfg.DataDir, err)
	}
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("cannot remove a file in %s: %w", m.cfg.DataDir, err)
	}
	return nil
}

func (m *Monitor) checkSpace() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(m.cfg.DataDir, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", m.cfg.DataDir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < m.cfg.MinFree {
		return fmt.Errorf("%s has %d bytes free, less than the %d required", m.cfg.DataDir, free, m.cfg.MinFree)
	}
	return nil
}

func (m *Monitor) checkMaintenance() error {
	p := filepath.Join(m.cfg.DataDir, MaintenanceFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s exists (unreadable: %v)", p, err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	reason := strings.TrimSpace(string(line))
	if reason == "" {
		reason = "no reason given"
	}
	return fmt.Errorf("under maintenance (%s): %s", p, reason)
}

// Watch re-evaluates health every CheckInterval until ctx ends and logs
// each change, so the log says when and why the node became unhealthy.
func (m *Monitor) Watch(ctx context.Context) error {
	t := m.clock.NewTimer(0)
	defer t.Stop()
	last := ""
	first := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
		}
		h, _ := m.Health(ctx)
		reason := h.Reason()
		if first || reason != last {
			if h.Healthy {
				m.log.Info("node is healthy")
			} else {
				m.log.Warn("node is unhealthy: uptime reports are skipped", "reason", reason)
			}
		}
		first, last = false, reason
		t.Reset(m.cfg.CheckInterval)
	}
}
