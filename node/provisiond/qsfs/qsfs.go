// Package qsfs is the type manager of QuantumSafeFS workloads: a FUSE file
// system (0-db-fs) over a local 0-db cache whose data zstor encrypts,
// erasure-codes and spreads over the workload's 0-db backends.
//
// It needs /dev/fuse and the zdb, zdbfs and zstor binaries; a host without
// them fails the workload naming what is missing, e.g.
// "quantum-safe-fs: zstor not found in PATH". The local cache (0-db's data
// and index) is space storaged allocates, of the workload's cache size,
// in one of its pools. The three processes run per workload under
// <Dir>/<workload ID>/ and are found again after the engine restarts (pid
// files); the file system is mounted at <Dir>/<workload ID>/mnt, where
// machines get it over virtiofs. A restart of the node stops them:
// Restore starts them again on the cache kept by storaged.
package qsfs

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/storaged"
)

// ErrUnsupported is wrapped when the host lacks what QSFS needs.
var ErrUnsupported = errors.New("quantum-safe file systems unsupported on this node")

// Storage is what the manager needs of storaged (storaged.Stub over the
// bus, *storaged.Service in-process).
type Storage interface {
	Allocate(ctx context.Context, r storaged.Request) (storaged.Allocation, error)
	Get(ctx context.Context, id string) (storaged.Allocation, error)
	Release(ctx context.Context, id string) error
}

// Config configures a Manager. Empty fields take the defaults in
// brackets.
type Config struct {
	// Dir holds the workloads' processes and mount points. Required.
	Dir string
	// Storage gives each workload its cache. Required.
	Storage Storage
	// Fuse is the FUSE device [/dev/fuse].
	Fuse string
	// Zdb, Zdbfs and Zstor are the binaries [zdb, zdbfs, zstor].
	Zdb, Zdbfs, Zstor string
}

// Manager runs QuantumSafeFS workloads.
type Manager struct{ c Config }

// New returns a manager for c.
func New(c Config) (*Manager, error) {
	if c.Dir == "" || c.Storage == nil {
		return nil, errors.New("qsfs: Config.Dir and Config.Storage are required")
	}
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&c.Fuse, "/dev/fuse")
	def(&c.Zdb, "zdb")
	def(&c.Zdbfs, "zdbfs")
	def(&c.Zstor, "zstor")
	return &Manager{c: c}, nil
}

// Check says what the host lacks, or nil.
func (m *Manager) Check() error {
	if _, err := os.Stat(m.c.Fuse); err != nil {
		return fmt.Errorf("%w: %s not present", ErrUnsupported, m.c.Fuse)
	}
	for _, bin := range []string{m.c.Zstor, m.c.Zdb, m.c.Zdbfs} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("%w: %s not found in PATH", ErrUnsupported, bin)
		}
	}
	return nil
}

// Result is what a QuantumSafeFS workload reports.
type Result struct {
	// Path is where the file system is mounted on the node.
	Path string `json:"path"`
}

// Path is the mount point of t's file system.
func (m *Manager) Path(t provisiond.Task) string { return m.MountPoint(t.ID()) }

// MountPoint is the mount point of the file system of the workload whose
// ID (provisiond.Task.ID) is id.
func (m *Manager) MountPoint(id string) string { return filepath.Join(m.c.Dir, id, "mnt") }

// Provision takes the cache from storaged, writes zstor's configuration
// and starts zstor, the 0-db cache and the FUSE mount (each only if not
// running).
func (m *Manager) Provision(ctx context.Context, t provisiond.Task) (any, error) {
	var d gridtypes.QSFSData
	if err := t.Workload.DecodeData(&d); err != nil {
		return nil, fmt.Errorf("quantum-safe-fs: %w", err)
	}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("quantum-safe-fs: %w", err)
	}
	cache, err := m.c.Storage.Allocate(ctx, storaged.Request{ID: t.ID(), Kind: storaged.QSFSCache, Size: d.Cache})
	if err != nil {
		return nil, fmt.Errorf("quantum-safe-fs: cache: %w", err)
	}
	return m.start(ctx, t, &d, cache.Path)
}

// Restore implements provisiond.Restorer: the cache must still be there;
// the processes a restart stopped are started again.
func (m *Manager) Restore(ctx context.Context, t provisiond.Task) error {
	var d gridtypes.QSFSData
	if err := t.Workload.DecodeData(&d); err != nil {
		return fmt.Errorf("quantum-safe-fs: %w", err)
	}
	cache, err := m.c.Storage.Get(ctx, t.ID())
	if err != nil {
		return fmt.Errorf("quantum-safe-fs: cache: %w", err)
	}
	if err := m.Check(); err != nil {
		return fmt.Errorf("quantum-safe-fs: %w", err)
	}
	_, err = m.start(ctx, t, &d, cache.Path)
	return err
}

// start runs what is not running of t's processes, with 0-db's data and
// index in cache.
func (m *Manager) start(ctx context.Context, t provisiond.Task, d *gridtypes.QSFSData, cache string) (any, error) {
	dir := filepath.Join(m.c.Dir, t.ID())
	mnt := m.Path(t)
	for _, p := range []string{filepath.Join(cache, "data"), filepath.Join(cache, "index"), mnt} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return nil, fmt.Errorf("quantum-safe-fs: %w", err)
		}
	}
	conf := filepath.Join(dir, "zstor.toml")
	if err := os.WriteFile(conf, []byte(ZstorConfig(d, dir, cache)), 0o600); err != nil {
		return nil, fmt.Errorf("quantum-safe-fs: %w", err)
	}
	zdbSock := filepath.Join(dir, "zdb.sock")
	procs := []struct {
		name, bin, marker string
		args              []string
		wait              string
	}{
		{"zstor", m.c.Zstor, conf, []string{"--config", conf, "monitor"}, filepath.Join(dir, "zstor.sock")},
		{"zdb", m.c.Zdb, zdbSock, []string{"--index", filepath.Join(cache, "index"), "--data", filepath.Join(cache, "data"),
			"--datasize", strconv.FormatUint(d.Cache, 10), "--mode", "seq", "--socket", zdbSock,
			"--hook", m.c.Zstor + " --config " + conf}, zdbSock},
		{"zdbfs", m.c.Zdbfs, mnt, []string{"-f", "-o", "autons,unix-socket=" + zdbSock, mnt}, ""},
	}
	for _, p := range procs {
		pid := filepath.Join(dir, p.name+".pid")
		if _, ok := process.Running(pid, p.marker); ok {
			continue
		}
		if _, err := process.Start(p.bin, p.args, pid, filepath.Join(dir, "processes.log"), p.marker); err != nil {
			return nil, fmt.Errorf("quantum-safe-fs: %s: %w", p.name, err)
		}
		if p.wait != "" {
			if err := process.WaitForFile(ctx, p.wait); err != nil {
				return nil, fmt.Errorf("quantum-safe-fs: %s did not start (see %s): %w", p.name, filepath.Join(dir, "processes.log"), err)
			}
		}
	}
	return Result{Path: mnt}, nil
}

// Deprovision unmounts the file system and stops the processes (zstor
// last, so it can flush what the cache still holds), then removes the
// workload's directory and gives the cache back to storaged. The data
// stays on the backends.
func (m *Manager) Deprovision(ctx context.Context, t provisiond.Task) error {
	dir := filepath.Join(m.c.Dir, t.ID())
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return m.release(ctx, t)
	}
	mnt := m.Path(t)
	_ = exec.CommandContext(ctx, "umount", mnt).Run()
	var errs []error
	for _, p := range []struct{ name, marker string }{{"zdbfs", mnt}, {"zdb", filepath.Join(dir, "zdb.sock")}, {"zstor", filepath.Join(dir, "zstor.toml")}} {
		errs = append(errs, process.Stop(ctx, filepath.Join(dir, p.name+".pid"), p.marker, 30*time.Second))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("quantum-safe-fs: %w", err)
	}
	// The mount point must be empty (unmounted) before the tree goes.
	if err := os.Remove(mnt); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("quantum-safe-fs: %s still in use: %w", mnt, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("quantum-safe-fs: %w", err)
	}
	return m.release(ctx, t)
}

// release gives t's cache back to storaged.
func (m *Manager) release(ctx context.Context, t provisiond.Task) error {
	if err := m.c.Storage.Release(ctx, t.ID()); err != nil {
		return fmt.Errorf("quantum-safe-fs: cache: %w", err)
	}
	return nil
}

// ZstorConfig renders zstor's TOML configuration for d, with its socket
// and mount point under dir and its cache under cache.
func ZstorConfig(d *gridtypes.QSFSData, dir, cache string) string {
	var b strings.Builder
	q := tomlString
	fmt.Fprintf(&b, "minimal_shards = %d\nexpected_shards = %d\nredundant_groups = %d\nredundant_nodes = %d\n",
		d.MinimalShards, d.ExpectedShards, d.RedundantGroups, d.RedundantNodes)
	fmt.Fprintf(&b, "root = %s\nsocket = %s\nzdbfs_mountpoint = %s\nzdb_data_dir_path = %s\nmax_zdb_data_dir_size = %d\n",
		q("/"), q(filepath.Join(dir, "zstor.sock")), q(filepath.Join(dir, "mnt")), q(filepath.Join(cache, "data", "zdbfs-data")), d.Cache>>20)
	fmt.Fprintf(&b, "\n[encryption]\nalgorithm = \"AES\"\nkey = %s\n", q(d.EncryptionKey))
	if d.Compression == "snappy" {
		b.WriteString("\n[compression]\nalgorithm = \"snappy\"\n")
	}
	fmt.Fprintf(&b, "\n[meta]\ntype = \"zdb\"\n\n[meta.config]\nprefix = %s\n\n[meta.config.encryption]\nalgorithm = \"AES\"\nkey = %s\n", q(d.Metadata.Prefix), q(d.EncryptionKey))
	for _, be := range d.Metadata.Backends {
		fmt.Fprintf(&b, "\n[[meta.config.backends]]\naddress = %s\nnamespace = %s\npassword = %s\n", q(be.Address), q(be.Namespace), q(be.Password))
	}
	for _, g := range d.Groups {
		b.WriteString("\n[[groups]]\n")
		for _, be := range g.Backends {
			fmt.Fprintf(&b, "\n[[groups.backends]]\naddress = %s\nnamespace = %s\npassword = %s\n", q(be.Address), q(be.Namespace), q(be.Password))
		}
	}
	return b.String()
}

// tomlString quotes s as a TOML basic string: '"' and '\\' escaped,
// control characters as \uXXXX, everything else (UTF-8) as is.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
