// Package generation is the upgrade directory of a node: its generations
// (one directory per installed release, with the signed release and its
// packages' flist documents), the current link, the state file and the
// lock. The upgrader (node/upgrader) writes it; the bootstrap
// (node/bootstrap) reads and verifies it, and switches back from a
// generation that failed. It imports no network code (docs/upgrade.md).
package generation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/lockfile"
)

// Errors of the upgrade directory.
var (
	// ErrDamaged: the upgrade directory holds something the upgrader did
	// not write (a link, manifest or state file it cannot read).
	ErrDamaged = errors.New("upgrade directory damaged")
	// ErrBadRelease: the release cannot be installed whatever the hub
	// does (no zos package, no executable bin/zosd, a zos binary that
	// does not run). It is not tried again under the same serial.
	ErrBadRelease = errors.New("bad release")
	// ErrLocked: another upgrader uses the directory.
	ErrLocked = errors.New("upgrade directory in use by another upgrader")
)

// Step names a point of an upgrade, for the crash tests (Dir.AtStep and
// upgrader.Deps.AtStep).
type Step string

// Steps, in the order an upgrade takes them. Some happen more than once.
const (
	StepChecked        Step = "checked"         // the registrar's version read, the decision taken
	StepVerified       Step = "verified"        // the release's tag fetched and verified
	StepPackage        Step = "package"         // a package materialised (once per new package)
	StepManifestTemp   Step = "manifest-temp"   // the manifest written under its temporary name
	StepGenerationTemp Step = "generation-temp" // the generation complete under its temporary name
	StepGeneration     Step = "generation"      // the generation renamed into place
	StepProbed         Step = "probed"          // its zos binary ran
	StepStateTemp      Step = "state-temp"      // a new state file written under its temporary name
	StepTrial          Step = "trial"           // the switch written down (state file)
	StepLinkTemp       Step = "link-temp"       // the new current link made under its temporary name
	StepSwitched       Step = "switched"        // current renamed to the new generation
	StepRestarted      Step = "restarted"       // the modules restarted
	StepHealthy        Step = "healthy"         // the new generation proved healthy
	StepCommitted      Step = "committed"       // the switch confirmed (state file)
	StepRollingBack    Step = "rolling-back"    // the switch back written down
	StepSwitchedBack   Step = "switched-back"   // current renamed back
	StepRolledBack     Step = "rolled-back"     // the modules restarted on the old generation, recorded
)

// Names in the upgrade directory (Config.Dir).
const (
	// CurrentLink is the symbolic link naming the running generation
	// ("generations/<n>"); absent, the node runs its base zosd (generation
	// 0: the zosd the machine started, at upgrader.Config.BaseVersion).
	CurrentLink = "current"
	// GenerationsDir holds the generations, one directory each.
	GenerationsDir = "generations"
	// PackagesDir holds the materialised packages, one read-only tree
	// per flist id.
	PackagesDir = "packages"
	// StateFile is the upgrader's persistent state.
	StateFile = "state.json"
	// CacheDir is flistd's block cache of the upgrader.
	CacheDir = "cache"
	// ManifestFile describes a generation, inside its directory.
	ManifestFile = "manifest.json"
	// ZosLink, inside a generation, points at the zos package.
	ZosLink = "zos"
	// PackageLinks, inside a generation, holds one symlink per package.
	PackageLinks = "pkg"
	// ZosBinary is the program of the zos package, relative to it: the
	// bootstrap starts it, and it runs its modules as `zosd run <module>`.
	ZosBinary = "bin/zosd"
	// ReleaseFile, inside a generation, is the signed release (the tag
	// document and its publisher's signature, flist.SignedTag's JSON).
	ReleaseFile = "release.json"
	// FlistsDir, inside a generation, holds each package's flist
	// document, named by flist id.
	FlistsDir = "flists"

	lockFile      = "lock"
	tmpLinkPrefix = ".current-"
	buildPrefix   = ".build-"
	trashPrefix   = ".trash-"
	stateTmp      = StateFile + ".tmp-"
)

// Formats of the files the upgrader writes.
const (
	ManifestFormat = "grid4-generation/1"
	StateFormat    = "grid4-upgrade-state/1"
)

// Manifest describes a generation: the release it holds. It is written
// once, when the generation is built, and never changed.
type Manifest struct {
	// Format is ManifestFormat.
	Format string `json:"format"`
	// Generation is the generation's number (its directory's name).
	Generation uint64 `json:"generation"`
	// Version is the ZOS version of the release (the tag's name).
	Version string `json:"version"`
	// Serial is the registrar's version record the release was installed
	// for.
	Serial uint64 `json:"serial"`
	// Publisher is the hub publisher of the release.
	Publisher string `json:"publisher"`
	// Repo is its repository.
	Repo string `json:"repo"`
	// Tag is the release's tag (the version).
	Tag string `json:"tag"`
	// Release is the release hash (SHA-256 of the signed tag document).
	Release flist.ID `json:"release"`
	// Installed is when the generation was built.
	Installed time.Time `json:"installed"`
	// Packages are the release's packages in installation order, the zos
	// package last.
	Packages []Package `json:"packages"`
}

// Package is one package of a generation.
type Package struct {
	// Name is the package's name in the release: the generation's
	// pkg/<name>.
	Name string `json:"name"`
	// Flist is its flist id: the tree is packages/<flist>.
	Flist flist.ID `json:"flist"`
	// Role is dependency or zos.
	Role flist.Role `json:"role"`
}

// State is the content of StateFile: what the upgrader remembers.
type State struct {
	Format string `json:"format"`
	// SeenSerial is the highest serial of a registrar version record the
	// node has acted on: it never moves to an older record.
	SeenSerial uint64 `json:"seen_serial"`
	// LastGeneration is the highest generation number ever given out;
	// numbers are never reused.
	LastGeneration uint64 `json:"last_generation"`
	// Previous is the generation to go back to from the current one (0:
	// the base zosd).
	Previous uint64 `json:"previous"`
	// Trial is a switch not yet confirmed healthy or undone.
	Trial *Trial `json:"trial,omitempty"`
	// RolledBack is the last release the node refused or rolled back
	// from; it is not tried again under the same serial.
	RolledBack *Rollback `json:"rolled_back,omitempty"`
}

// Trial phases.
const (
	// PhaseSwitching: the switch to Trial.Generation is decided; it may or
	// may not have happened (CurrentLink says).
	PhaseSwitching = "switching"
	// PhaseRollingBack: the switch back to Trial.From is decided.
	PhaseRollingBack = "rolling_back"
)

// Trial is a switch in progress: written before the switch, removed once
// the new generation proved healthy (commit) or the old one is back.
type Trial struct {
	// Generation is the new generation.
	Generation uint64 `json:"generation"`
	// From is the generation it replaces (0: the base zosd).
	From uint64 `json:"from"`
	// Version is the release's version.
	Version string `json:"version"`
	// Serial is the registrar's version record it is installed for.
	Serial uint64 `json:"serial"`
	// Release is the release hash.
	Release flist.ID `json:"release"`
	// Phase is PhaseSwitching or PhaseRollingBack.
	Phase string `json:"phase"`
	// Started is when the switch was decided.
	Started time.Time `json:"started"`
	// Attempts counts the health checks begun for this switch: an
	// upgrader (or node) that keeps dying during the check rolls back
	// after Config.MaxTrials of them.
	Attempts int `json:"attempts"`
	// Reason is why the switch is being undone (PhaseRollingBack).
	Reason string `json:"reason,omitempty"`
}

// Rollback records a release the node did not keep.
type Rollback struct {
	// Version is the release's version.
	Version string `json:"version"`
	// Serial is the registrar's version record it was refused under.
	Serial uint64 `json:"serial"`
	// Release is the release hash.
	Release flist.ID `json:"release,omitzero"`
	// Switched is true when the node switched to it and back (it was not
	// healthy), false when it was refused before the switch (its zos
	// binary does not run).
	Switched bool `json:"switched"`
	// Reason says why.
	Reason string `json:"reason"`
	// At is when.
	At time.Time `json:"at"`
}

// Dir is an upgrade directory (zosd: <data>/upgrade). The zero AtStep
// is allowed.
type Dir struct {
	// Root is the directory's path.
	Root string
	// AtStep, when set, is called at the named points of the writes, for
	// the crash tests.
	AtStep func(Step)
}

func (l Dir) step(s Step) {
	if l.AtStep != nil {
		l.AtStep(s)
	}
}

// Path returns a path in the directory.
func (l Dir) Path(elem ...string) string {
	return filepath.Join(append([]string{l.Root}, elem...)...)
}

// GenDir returns generation n's directory.
func (l Dir) GenDir(n uint64) string {
	return l.Path(GenerationsDir, strconv.FormatUint(n, 10))
}

// PkgDir returns the directory of package id.
func (l Dir) PkgDir(id flist.ID) string { return l.Path(PackagesDir, id.String()) }

// Init creates the directories.
func (l Dir) Init() error {
	for _, d := range []string{l.Root, l.Path(GenerationsDir), l.Path(PackagesDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// Current returns the generation CurrentLink names, 0 when there is
// none (the base zosd).
func (l Dir) Current() (uint64, error) {
	target, err := os.Readlink(l.Path(CurrentLink))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %w", ErrDamaged, CurrentLink, err)
	}
	rest, ok := strings.CutPrefix(target, GenerationsDir+"/")
	n, perr := strconv.ParseUint(rest, 10, 64)
	if !ok || perr != nil || n == 0 {
		return 0, fmt.Errorf("%w: %s points at %q, not at a generation", ErrDamaged, CurrentLink, target)
	}
	return n, nil
}

// ReadManifest reads generation n's manifest.
func (l Dir) ReadManifest(n uint64) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(l.GenDir(n), ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: generation %d: %w", ErrDamaged, n, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Format != ManifestFormat || m.Generation != n {
		return Manifest{}, fmt.Errorf("%w: generation %d: manifest is not a %s manifest of generation %d", ErrDamaged, n, ManifestFormat, n)
	}
	return m, nil
}

// SwitchTo makes generation n current (0: remove the link, back to the
// base zosd) in one step: a new link is made under a temporary name and
// renamed over the old one, and the directory is synced.
func (l Dir) SwitchTo(n uint64) error {
	link := l.Path(CurrentLink)
	if n == 0 {
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return atomicfile.SyncDir(l.Root)
	}
	tmp := l.Path(tmpLinkPrefix + rand.Text())
	if err := os.Symlink(GenerationsDir+"/"+strconv.FormatUint(n, 10), tmp); err != nil {
		return err
	}
	l.step(StepLinkTemp)
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(l.Root)
}

// ReadState reads StateFile; a missing file is the empty state.
func (l Dir) ReadState() (State, error) {
	b, err := os.ReadFile(l.Path(StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return State{Format: StateFormat}, nil
	}
	if err != nil {
		return State{}, err
	}
	var p State
	if err := json.Unmarshal(b, &p); err != nil || p.Format != StateFormat {
		return State{}, fmt.Errorf("%w: %s is not a %s file", ErrDamaged, StateFile, StateFormat)
	}
	return p, nil
}

// WriteState replaces StateFile atomically: a synced temporary file
// renamed over it, then the directory synced.
func (l Dir) WriteState(p State) error {
	p.Format = StateFormat
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return l.writeFile(l.Path(StateFile), stateTmp+"*", append(b, '\n'), StepStateTemp)
}

// writeFile writes data to a synced temporary file next to p, named from
// tmpPattern (os.CreateTemp), and renames it to p.
func (l Dir) writeFile(p, tmpPattern string, data []byte, step Step) error {
	tmp, err := atomicfile.WriteTemp(filepath.Dir(p), tmpPattern, data, 0o644)
	if err != nil {
		return err
	}
	l.step(step)
	return atomicfile.Rename(tmp, p)
}

// Generations lists the complete generations on disk.
func (l Dir) Generations() ([]uint64, error) {
	ents, err := os.ReadDir(l.Path(GenerationsDir))
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range ents {
		if n, err := strconv.ParseUint(e.Name(), 10, 64); err == nil && n > 0 && e.IsDir() {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Build makes generation n of manifest m: a temporary directory holding
// the manifest, the proof (ReleaseFile and FlistsDir, see Verify), a
// pkg/<name> symlink per package and the zos symlink, synced and renamed
// into place. Every package must be in packages/.
func (l Dir) Build(m Manifest, proof Proof) error {
	tmp := l.Path(GenerationsDir, buildPrefix+strconv.FormatUint(m.Generation, 10)+"-"+rand.Text())
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := writeProof(tmp, proof); err != nil {
		return err
	}
	links := filepath.Join(tmp, PackageLinks)
	if err := os.Mkdir(links, 0o755); err != nil {
		return err
	}
	zos := ""
	for _, p := range m.Packages {
		// Relative links: the data directory can be moved.
		if err := os.Symlink(filepath.Join("..", "..", "..", PackagesDir, p.Flist.String()), filepath.Join(links, p.Name)); err != nil {
			return err
		}
		if p.Role == flist.RoleZos {
			zos = p.Name
		}
	}
	if zos == "" {
		return fmt.Errorf("%w: the release has no %s package", ErrBadRelease, flist.RoleZos)
	}
	if err := os.Symlink(PackageLinks+"/"+zos, filepath.Join(tmp, ZosLink)); err != nil {
		return err
	}
	bin := filepath.Join(tmp, ZosLink, filepath.FromSlash(ZosBinary))
	st, err := os.Stat(bin)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%w: the zos package %s has no executable %s", ErrBadRelease, zos, ZosBinary)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	mf := filepath.Join(tmp, ManifestFile)
	if err := l.writeFile(mf, ManifestFile+".tmp-*", append(b, '\n'), StepManifestTemp); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(links); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return err
	}
	l.step(StepGenerationTemp)
	if err := os.Rename(tmp, l.GenDir(m.Generation)); err != nil {
		return err
	}
	ok = true
	return atomicfile.SyncDir(l.Path(GenerationsDir))
}

// Discard removes a directory of generations/ or packages/: first
// renamed out of the way in one step (so a half-removed tree never
// stands under a name the upgrader trusts, e.g. a package's flist id),
// then removed.
func (l Dir) Discard(parent, name string) error {
	trash := filepath.Join(l.Path(parent), trashPrefix+name+"-"+rand.Text())
	if err := os.Rename(filepath.Join(l.Path(parent), name), trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := atomicfile.SyncDir(l.Path(parent)); err != nil {
		return err
	}
	return flist.RemoveTree(trash)
}

// CleanLeftovers removes what interrupted writes left: temporary links
// and state files, generations being built, packages being materialised,
// trees being removed. Every such name starts with a dot.
func (l Dir) CleanLeftovers() ([]string, error) {
	var removed []string
	for _, parent := range []string{"", GenerationsDir, PackagesDir} {
		dir := l.Path(parent)
		ents, err := os.ReadDir(dir)
		if err != nil {
			return removed, err
		}
		for _, e := range ents {
			name := e.Name()
			leftover := strings.HasPrefix(name, ".")
			if parent == "" {
				leftover = strings.HasPrefix(name, tmpLinkPrefix) || strings.HasPrefix(name, stateTmp)
			}
			if !leftover {
				continue
			}
			if err := flist.RemoveTree(filepath.Join(dir, name)); err != nil {
				return removed, err
			}
			removed = append(removed, filepath.Join(parent, name))
		}
	}
	return removed, nil
}

// Collect removes the generations not in keep, and the packages no kept
// generation uses. When a kept generation's manifest cannot be read, its
// packages are unknown: no package is removed.
func (l Dir) Collect(keep ...uint64) error {
	gens, err := l.Generations()
	if err != nil {
		return err
	}
	used := map[flist.ID]bool{}
	unknown := false
	for _, n := range gens {
		if !slices.Contains(keep, n) {
			if err := l.Discard(GenerationsDir, strconv.FormatUint(n, 10)); err != nil {
				return err
			}
			continue
		}
		m, err := l.ReadManifest(n)
		if err != nil {
			unknown = true
			continue
		}
		for _, p := range m.Packages {
			used[p.Flist] = true
		}
	}
	if unknown {
		return nil
	}
	ents, err := os.ReadDir(l.Path(PackagesDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		id, err := flist.ParseID(e.Name())
		if err != nil || used[id] {
			continue
		}
		if err := l.Discard(PackagesDir, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// HasPackage reports whether package id is materialised. A package
// directory only ever appears complete (flist.Materialize renames it into
// place) and disappears by a rename (discard).
func (l Dir) HasPackage(id flist.ID) bool {
	st, err := os.Lstat(l.PkgDir(id))
	return err == nil && st.IsDir()
}

// Lock takes the directory's lock (one upgrader, or one bootstrap
// switching back, at a time) for as long as the returned function is not
// called; a process that dies releases it. Held: ErrLocked.
func (l Dir) Lock() (func(), error) {
	if err := l.Init(); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	unlock, err := lockfile.Take(l.Path(lockFile))
	if errors.Is(err, lockfile.ErrHeld) {
		return nil, fmt.Errorf("upgrade: %s: %w", l.Root, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	return unlock, nil
}

// LockWait is Lock, trying again every poll until ctx ends: the
// bootstrap waits so for the upgrader of a zosd it stopped (a module
// process, which ends when it sees its lifeline close).
func (l Dir) LockWait(ctx context.Context, poll time.Duration) (func(), error) {
	for {
		unlock, err := l.Lock()
		if !errors.Is(err, ErrLocked) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %v)", err, context.Cause(ctx))
		case <-time.After(poll):
		}
	}
}
