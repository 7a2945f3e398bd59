package load

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Probe measures what a run costs the machine: the registrar's memory and
// CPU time (when it runs as process PID) and the CPU time of the
// PostgreSQL backends serving its database (when the store is PostgreSQL
// on this machine). Start it before a run and Finish it after.
type Probe struct {
	pid     int
	sampler *MemorySampler
	pg      *sql.DB

	cpu0 time.Duration
	db0  map[int]time.Duration
}

// NewProbe makes a probe for registrar process pid (0: not known, no
// process figures) and database dbURL (backend CPU for postgres:// URLs
// only). Close releases it.
func NewProbe(ctx context.Context, pid int, dbURL string) (*Probe, error) {
	p := &Probe{pid: pid}
	if pid != 0 {
		p.sampler = SampleMemory(ctx, pid, 100*time.Millisecond)
	}
	if strings.HasPrefix(dbURL, "postgres://") || strings.HasPrefix(dbURL, "postgresql://") {
		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("load: probe: %w", err)
		}
		db.SetMaxOpenConns(1)
		p.pg = db
	}
	return p, nil
}

// Close stops the probe. It may be called more than once.
func (p *Probe) Close() {
	if p.sampler != nil {
		p.sampler.Stop()
	}
	if p.pg != nil {
		p.pg.Close()
		p.pg = nil
	}
}

// Start notes the CPU times before a run and starts a new memory peak.
func (p *Probe) Start(ctx context.Context) error {
	var err error
	if p.pid != 0 {
		if p.cpu0, err = ReadCPU(p.pid); err != nil {
			return err
		}
		if _, _, err = p.sampler.Take(); err != nil {
			return err
		}
	}
	if p.pg != nil {
		if p.db0, err = p.backendCPU(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Finish fills r's Memory, PeakRSS, ServerCPUSeconds and DBCPUSeconds
// with what was used since Start.
func (p *Probe) Finish(ctx context.Context, r *Result) error {
	if p.pid != 0 {
		cpu, err := ReadCPU(p.pid)
		if err != nil {
			return err
		}
		m, peak, err := p.sampler.Take()
		if err != nil {
			return err
		}
		r.Memory, r.PeakRSS, r.ServerCPUSeconds = &m, peak, (cpu - p.cpu0).Seconds()
	}
	if p.pg != nil {
		after, err := p.backendCPU(ctx)
		if err != nil {
			return err
		}
		var d time.Duration
		for pid, t := range after {
			d += t - p.db0[pid]
		}
		r.DBCPUSeconds = d.Seconds()
	}
	return nil
}

// backendCPU returns the CPU time of every backend connected to the
// probe's database, except the probe's own. Backends that exit during a
// run are missed; the registrar's pools keep theirs open.
func (p *Probe) backendCPU(ctx context.Context) (map[int]time.Duration, error) {
	rows, err := p.pg.QueryContext(ctx,
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return nil, fmt.Errorf("load: probe: listing backends: %w", err)
	}
	defer rows.Close()
	out := map[int]time.Duration{}
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return nil, fmt.Errorf("load: probe: %w", err)
		}
		cpu, err := ReadCPU(pid)
		if errors.Is(err, errNoProcess) {
			continue // exited since, or not on this machine
		}
		if err != nil {
			return nil, err
		}
		out[pid] = cpu
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load: probe: %w", err)
	}
	return out, nil
}
