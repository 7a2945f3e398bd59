// Package storaged is the node module that owns its disks: it finds them,
// decides which are SSDs and which HDDs, prepares a storage pool per disk,
// hands out the space of zmounts (disk images), volumes and QSFS caches
// from those pools with accounting, and reports the node's SRU and HRU
// from them (registrar_light registers those figures).
//
// # Pools
//
// A pool is a directory where allocations live, one per disk. The disk
// holding the node's data directory gives a directory under it
// (<Dir>/pools/<disk>); that disk also holds the host's own files, so the
// pool's size is its file system's size minus Config.Reserve. Another disk
// gives a pool only when the farmer claims it (Config.Claims): storaged
// then makes an ext4 file system on the whole disk and mounts it on
// <Dir>/pools/<disk>, again at every start. A disk with partitions, a file
// system or any other signature storaged did not make, or mounted
// elsewhere, is never formatted: the claim is refused with the reason. A
// claimed disk that cannot be mounted at a start leaves its pool offline
// (no capacity, its allocations fail their checks) rather than letting
// writes land in the empty mount point.
//
// # Disk kinds
//
// See classify: the farmer's type per disk wins; rotational=0 is an SSD;
// a disk that says it rotates is measured (random reads, SeekThreshold),
// because virtual disks report rotational=1 whatever backs them; a disk
// that cannot be identified is assumed to be an SSD. A pool's kind is
// decided once and kept in the state file.
//
// # Allocations
//
// Every allocation is SRU (gridtypes: zmounts, volumes and QSFS caches are
// SSD storage) and goes to the SSD pool with the most room. A pool holds
// an allocation only when the sizes it already promised plus the new one
// fit its size, and the file system has the new size free now: sparse
// images take blocks only as they are written, so free space alone would
// let the node promise the same gigabytes twice. Pools and allocations are
// kept in <Dir>/state.json (written atomically), so the accounting
// survives restarts.
package storaged

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/hostinfo"
)

// Object is the bus object storaged serves.
const Object = "storaged/storage@1.0"

// Errors callers branch on; over the bus they come back as these codes.
const (
	// ErrNoSpace: no pool can hold the size asked.
	ErrNoSpace bus.Code = "no_space"
	// ErrNotFound: no allocation has that id.
	ErrNotFound bus.Code = "not_found"
	// ErrInvalid: the request is malformed (id, kind, size, shrinking).
	ErrInvalid bus.Code = "invalid"
	// ErrBroken: an allocation's files are not what was allocated (an
	// image missing or of the wrong size).
	ErrBroken bus.Code = "broken"
)

// Kind is what an allocation is for.
type Kind string

// Allocation kinds.
const (
	// ZMount is a raw disk for a machine: a sparse image file of the
	// size, made by storaged.
	ZMount Kind = "zmount"
	// Volume is an empty directory where the volume manager keeps its
	// size-enforced file system.
	Volume Kind = "volume"
	// QSFSCache is an empty directory for a QSFS workload's local cache.
	QSFSCache Kind = "qsfs"
)

// Config configures a Service.
type Config struct {
	// Dir holds the state file and the data directory's pool. Required.
	Dir string
	// HostRoot is where /sys and /dev are read ("" or "/": the machine;
	// a fixture tree in tests).
	HostRoot string
	// Types forces the kind of disks by /sys/block name ("sda": hdd),
	// for disks whose hints and benchmark mislead.
	Types map[string]hostinfo.DiskKind
	// Reserve is kept free for the host on the data directory's file
	// system: the pool there offers its size minus Reserve.
	Reserve uint64
	// Claims are block devices ("/dev/sdb") the node may take whole: each
	// gets an ext4 file system of its own, a pool (see claim). Only empty
	// disks are formatted.
	Claims []string
	// Seeker measures a disk's random-read latency (SeekBench when nil).
	Seeker Seeker
	// Logger receives storaged's records.
	Logger *slog.Logger
}

// Pool is where allocations live.
type Pool struct {
	// Name is the disk's /sys/block name ("data" when not identified).
	Name string `json:"name"`
	// Path is the pool's directory.
	Path string `json:"path"`
	// Class is the pool's kind and how it was decided.
	Class Classification `json:"class"`
	// Size is what the pool offers, in bytes.
	Size uint64 `json:"size"`
	// Used is what its allocations were promised, in bytes.
	Used uint64 `json:"used"`
	// Device and UUID are a claimed disk's block device and the UUID of
	// the file system storaged made on it (empty for the data
	// directory's pool).
	Device string `json:"device,omitempty"`
	UUID   string `json:"uuid,omitempty"`
	// Offline says why a claimed disk's pool could not be prepared at
	// this start ("" when it is in use).
	Offline string `json:"offline,omitempty"`
}

// Allocation is space handed out from a pool.
type Allocation struct {
	// ID names it: the workload's id ("<twin>-<deployment>-<name>").
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	// Size is promised, in bytes.
	Size uint64 `json:"size"`
	// Pool is the pool's name; Path the image (zmount) or directory.
	Pool string `json:"pool"`
	Path string `json:"path"`
}

// Request asks for an allocation.
type Request struct {
	ID   string `json:"id"`
	Kind Kind   `json:"kind"`
	Size uint64 `json:"size"`
}

// Capacity is the node's storage, in bytes: what the pools offer (SRU
// from SSD pools, HRU from HDD pools) and what allocations took.
type Capacity struct {
	SRU     uint64 `json:"sru"`
	HRU     uint64 `json:"hru"`
	UsedSRU uint64 `json:"used_sru"`
	UsedHRU uint64 `json:"used_hru"`
}

// state is what state.json holds.
type state struct {
	Pools       []Pool                `json:"pools"`
	Allocations map[string]Allocation `json:"allocations"`
}

// Service is storaged: pools and allocations.
type Service struct {
	cfg   Config
	log   *slog.Logger
	disks hostinfo.DiskList

	mu sync.Mutex
	st state
}

// New discovers the disks, prepares the pools and loads the allocations
// kept in cfg.Dir.
func New(cfg Config) (*Service, error) {
	if cfg.Dir == "" {
		return nil, errors.New("storaged: Config.Dir is required")
	}
	if cfg.HostRoot == "" {
		cfg.HostRoot = "/"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: cfg.Logger, st: state{Allocations: map[string]Allocation{}}}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "pools"), 0o700); err != nil {
		return nil, fmt.Errorf("storaged: %w", err)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	prober, err := hostinfo.New(hostinfo.Config{Root: cfg.HostRoot})
	if err != nil {
		return nil, fmt.Errorf("storaged: %w", err)
	}
	s.disks = prober.Disks().Value
	if err := s.preparePools(); err != nil {
		return nil, err
	}
	s.claimPools(context.Background())
	return s, s.save()
}

func (s *Service) stateFile() string { return filepath.Join(s.cfg.Dir, "state.json") }

// load reads state.json; a missing file is a fresh node, a malformed one
// an error (the accounting would be lost).
func (s *Service) load() error {
	b, err := os.ReadFile(s.stateFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("storaged: %w", err)
	}
	if err := json.Unmarshal(b, &s.st); err != nil {
		return fmt.Errorf("storaged: %s: %w", s.stateFile(), err)
	}
	if s.st.Allocations == nil {
		s.st.Allocations = map[string]Allocation{}
	}
	return nil
}

func (s *Service) save() error {
	b, err := json.MarshalIndent(s.st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.stateFile(), b, 0o600); err != nil {
		return fmt.Errorf("storaged: %w", err)
	}
	return nil
}

// preparePools makes the data directory's pool, keeping the kind a
// previous start decided.
func (s *Service) preparePools() error {
	name := diskOf(s.cfg.HostRoot, s.cfg.Dir)
	poolName := name
	if poolName == "" {
		poolName = "data"
	}
	path := filepath.Join(s.cfg.Dir, "pools", poolName)
	if err := os.MkdirAll(path, 0o700); err != nil {
		return fmt.Errorf("storaged: %w", err)
	}
	total, _, err := statfs(path)
	if err != nil {
		return fmt.Errorf("storaged: %w", err)
	}
	p := Pool{Name: poolName, Path: path, Size: total - min(total, s.cfg.Reserve)}
	prev, known := s.pool(poolName)
	p.Class = prev.Class
	if _, forced := s.cfg.Types[name]; !known || forced {
		p.Class = classify(name, s.disks, s.cfg, path)
	}
	s.keepPool(p)
	return nil
}

// statfs returns the total and free bytes of path's file system.
func statfs(path string) (total, free uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize), nil
}

// validID: workload ids are "<twin>-<deployment>-<name>"; anything safe
// as a file name is accepted.
var validID = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$`)

func (r Request) validate() error {
	if !validID.MatchString(r.ID) {
		return bus.Errorf(ErrInvalid, "storaged: allocation id %q: want 1 to 200 letters, digits, '_', '.' or '-', not starting with '.' or '-'", r.ID)
	}
	switch r.Kind {
	case ZMount, Volume, QSFSCache:
	default:
		return bus.Errorf(ErrInvalid, "storaged: unknown allocation kind %q (want zmount, volume or qsfs)", r.Kind)
	}
	if r.Size == 0 {
		return bus.Errorf(ErrInvalid, "storaged: allocation %s: size must be positive", r.ID)
	}
	return nil
}

// used is what pool's allocations were promised.
func (s *Service) used(pool string) uint64 {
	var n uint64
	for _, a := range s.st.Allocations {
		if a.Pool == pool {
			n += a.Size
		}
	}
	return n
}

// pool returns the pool named name.
func (s *Service) pool(name string) (Pool, bool) {
	i := slices.IndexFunc(s.st.Pools, func(p Pool) bool { return p.Name == name })
	if i < 0 {
		return Pool{}, false
	}
	return s.st.Pools[i], true
}

// offline says why pool name is offline ("" when it is in use).
func (s *Service) offline(name string) string {
	p, ok := s.pool(name)
	if !ok {
		return "no such pool"
	}
	return p.Offline
}

// room says why pool p cannot take size more bytes, or "".
func (s *Service) room(p Pool, size uint64) string {
	used := s.used(p.Name)
	if used+size > p.Size {
		return fmt.Sprintf("pool %s: %d of %d bytes promised", p.Name, used, p.Size)
	}
	_, free, err := statfs(p.Path)
	if err != nil {
		return err.Error()
	}
	free -= min(free, s.cfg.Reserve)
	if size > free {
		return fmt.Sprintf("pool %s: %d bytes free on its file system", p.Name, free)
	}
	return ""
}

// choose picks the SSD pool with the most unpromised room that can take
// size.
func (s *Service) choose(size uint64) (Pool, error) {
	var best *Pool
	var why []string
	for i, p := range s.st.Pools {
		if p.Class.Kind != hostinfo.SSD || p.Offline != "" {
			continue
		}
		if r := s.room(p, size); r != "" {
			why = append(why, r)
			continue
		}
		if best == nil || p.Size-s.used(p.Name) > best.Size-s.used(best.Name) {
			best = &s.st.Pools[i]
		}
	}
	if best == nil {
		if len(why) == 0 {
			why = append(why, "the node has no SSD pool")
		}
		return Pool{}, bus.Errorf(ErrNoSpace, "storaged: no pool can hold %d bytes: %v", size, why)
	}
	return *best, nil
}

// Allocate hands out r.Size bytes for r.ID. It is idempotent: the same
// request again returns the existing allocation (making its image or
// directory again if a crash lost it before it was used); a larger size
// grows it in its pool; a smaller one or another kind is refused.
func (s *Service) Allocate(_ context.Context, r Request) (Allocation, error) {
	if err := r.validate(); err != nil {
		return Allocation{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.st.Allocations[r.ID]
	switch {
	case ok && a.Kind != r.Kind:
		return Allocation{}, bus.Errorf(ErrInvalid, "storaged: %s is a %s allocation, not a %s", r.ID, a.Kind, r.Kind)
	case ok && r.Size < a.Size:
		return Allocation{}, bus.Errorf(ErrInvalid, "storaged: %s is %d bytes; an allocation cannot shrink to %d", r.ID, a.Size, r.Size)
	case ok && s.offline(a.Pool) != "":
		return Allocation{}, bus.Errorf(ErrBroken, "storaged: %s: pool %s is offline: %s", r.ID, a.Pool, s.offline(a.Pool))
	case ok && r.Size > a.Size:
		p, _ := s.pool(a.Pool)
		if why := s.room(p, r.Size-a.Size); why != "" {
			return Allocation{}, bus.Errorf(ErrNoSpace, "storaged: cannot grow %s to %d bytes: %s", r.ID, r.Size, why)
		}
		a.Size = r.Size
	case !ok:
		p, err := s.choose(r.Size)
		if err != nil {
			return Allocation{}, err
		}
		a = Allocation{ID: r.ID, Kind: r.Kind, Size: r.Size, Pool: p.Name, Path: filepath.Join(p.Path, string(r.Kind), r.ID)}
		if r.Kind == ZMount {
			a.Path += ".img"
		}
	}
	// Recorded before the files are made: a crash in between leaves a
	// record whose files the next Allocate makes, never files nobody
	// accounts for.
	s.st.Allocations[r.ID] = a
	if err := s.save(); err != nil {
		return Allocation{}, err
	}
	if err := materialize(a); err != nil {
		return Allocation{}, err
	}
	return a, nil
}

// materialize makes (or grows) a's image or directory.
func materialize(a Allocation) error {
	if err := os.MkdirAll(filepath.Dir(a.Path), 0o700); err != nil {
		return fmt.Errorf("storaged: %w", err)
	}
	if a.Kind != ZMount {
		if err := os.MkdirAll(a.Path, 0o700); err != nil {
			return fmt.Errorf("storaged: %w", err)
		}
		return nil
	}
	st, err := os.Stat(a.Path)
	switch {
	case err == nil && uint64(st.Size()) == a.Size:
		return nil
	case err == nil:
		if err := os.Truncate(a.Path, int64(a.Size)); err != nil {
			return fmt.Errorf("storaged: grow %s: %w", a.Path, err)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("storaged: %w", err)
	}
	// Made under a temporary name and renamed: a crash leaves no image of
	// the wrong size.
	tmp := a.Path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("storaged: %w", err)
	}
	err = f.Truncate(int64(a.Size))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = atomicfile.Rename(tmp, a.Path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("storaged: create %s: %w", a.Path, err)
	}
	return nil
}

// Release frees id's space and removes its files (idempotent). A volume
// or cache directory with something still mounted under it is refused:
// its owner unmounts first.
func (s *Service) Release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.st.Allocations[id]
	if !ok {
		return nil
	}
	if a.Kind == ZMount {
		for _, p := range []string{a.Path, a.Path + ".tmp"} {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("storaged: %w", err)
			}
		}
	} else {
		busy, err := mountinfo.Under(a.Path)
		if err != nil {
			return fmt.Errorf("storaged: %w", err)
		}
		if busy != "" {
			return fmt.Errorf("storaged: %s is still mounted; not removing %s", busy, a.Path)
		}
		if err := os.RemoveAll(a.Path); err != nil {
			return fmt.Errorf("storaged: %w", err)
		}
	}
	delete(s.st.Allocations, id)
	return s.save()
}

// Get returns id's allocation after checking its files are there: a
// zmount image of its size, a volume or cache directory (ErrBroken when
// not; ErrNotFound when nothing was allocated).
func (s *Service) Get(_ context.Context, id string) (Allocation, error) {
	s.mu.Lock()
	a, ok := s.st.Allocations[id]
	s.mu.Unlock()
	if !ok {
		return Allocation{}, bus.Errorf(ErrNotFound, "storaged: no allocation %q", id)
	}
	st, err := os.Stat(a.Path)
	switch {
	case err != nil:
		return a, bus.Errorf(ErrBroken, "storaged: %s: %v", id, err)
	case a.Kind == ZMount && (!st.Mode().IsRegular() || uint64(st.Size()) != a.Size):
		return a, bus.Errorf(ErrBroken, "storaged: %s: image %s is %d bytes, allocated %d", id, a.Path, st.Size(), a.Size)
	case a.Kind != ZMount && !st.IsDir():
		return a, bus.Errorf(ErrBroken, "storaged: %s: %s is not a directory", id, a.Path)
	}
	return a, nil
}

// Capacity adds up the pools: SRU and HRU offered and promised.
func (s *Service) Capacity(context.Context) (Capacity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c Capacity
	for _, p := range s.st.Pools {
		used := s.used(p.Name)
		if p.Offline != "" {
			continue
		}
		if p.Class.Kind == hostinfo.HDD {
			c.HRU += p.Size
			c.UsedHRU += used
		} else {
			c.SRU += p.Size
			c.UsedSRU += used
		}
	}
	return c, nil
}

// Pools lists the pools with what they promised.
func (s *Service) Pools(context.Context) ([]Pool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.st.Pools)
	for i := range out {
		out[i].Used = s.used(out[i].Name)
	}
	return out, nil
}

// Disks lists the machine's block devices as hostinfo found them.
func (s *Service) Disks(context.Context) (hostinfo.DiskList, error) {
	return slices.Clone(s.disks), nil
}

// Methods returns the bus methods of Object.
func (s *Service) Methods() bus.Methods {
	return bus.Methods{
		"Allocate": bus.Func1(s.Allocate),
		"Release":  bus.Proc1(s.Release),
		"Get":      bus.Func1(s.Get),
		"Capacity": bus.Func0(s.Capacity),
		"Pools":    bus.Func0(s.Pools),
		"Disks":    bus.Func0(s.Disks),
	}
}
