package upgrader

import (
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
)

// Names in the upgrade directory (Config.Dir).
const (
	// CurrentLink is the symbolic link naming the running generation
	// ("generations/<n>"); absent, the node runs its bootstrap (generation
	// 0: the zosd the machine started, at Config.BaseVersion).
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
	// modules run it as `zosd run <module>`.
	ZosBinary = "bin/zosd"

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

// persisted is the content of StateFile.
type persisted struct {
	Format string `json:"format"`
	// SeenSerial is the highest serial of a registrar version record the
	// node has acted on: it never moves to an older record.
	SeenSerial uint64 `json:"seen_serial"`
	// LastGeneration is the highest generation number ever given out;
	// numbers are never reused.
	LastGeneration uint64 `json:"last_generation"`
	// Previous is the generation to go back to from the current one (0:
	// the bootstrap).
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
	// From is the generation it replaces (0: the bootstrap).
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

// layout is the upgrade directory.
type layout struct {
	dir string
	// step is called at the named points of the writes, for the crash
	// tests (never nil).
	step func(Step)
}

func (l layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.dir}, elem...)...)
}

func (l layout) genDir(n uint64) string {
	return l.path(GenerationsDir, strconv.FormatUint(n, 10))
}

func (l layout) pkgDir(id flist.ID) string { return l.path(PackagesDir, id.String()) }

// init creates the directories.
func (l layout) init() error {
	for _, d := range []string{l.dir, l.path(GenerationsDir), l.path(PackagesDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// current returns the generation CurrentLink names, 0 when there is
// none (the bootstrap).
func (l layout) current() (uint64, error) {
	target, err := os.Readlink(l.path(CurrentLink))
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

// manifest reads generation n's manifest.
func (l layout) manifest(n uint64) (Manifest, error) {
	b, err := os.ReadFile(filepath.Join(l.genDir(n), ManifestFile))
	if err != nil {
		return Manifest{}, fmt.Errorf("%w: generation %d: %w", ErrDamaged, n, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil || m.Format != ManifestFormat || m.Generation != n {
		return Manifest{}, fmt.Errorf("%w: generation %d: manifest is not a %s manifest of generation %d", ErrDamaged, n, ManifestFormat, n)
	}
	return m, nil
}

// switchTo makes generation n current (0: remove the link, back to the
// bootstrap) in one step: a new link is made under a temporary name and
// renamed over the old one, and the directory is synced.
func (l layout) switchTo(n uint64) error {
	link := l.path(CurrentLink)
	if n == 0 {
		if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return atomicfile.SyncDir(l.dir)
	}
	tmp := l.path(tmpLinkPrefix + rand.Text())
	if err := os.Symlink(GenerationsDir+"/"+strconv.FormatUint(n, 10), tmp); err != nil {
		return err
	}
	l.step(StepLinkTemp)
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(l.dir)
}

// readState reads StateFile; a missing file is the empty state.
func (l layout) readState() (persisted, error) {
	b, err := os.ReadFile(l.path(StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return persisted{Format: StateFormat}, nil
	}
	if err != nil {
		return persisted{}, err
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil || p.Format != StateFormat {
		return persisted{}, fmt.Errorf("%w: %s is not a %s file", ErrDamaged, StateFile, StateFormat)
	}
	return p, nil
}

// writeState replaces StateFile atomically: a synced temporary file
// renamed over it, then the directory synced.
func (l layout) writeState(p persisted) error {
	p.Format = StateFormat
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return l.writeFile(l.path(StateFile), stateTmp+"*", append(b, '\n'), StepStateTemp)
}

// writeFile writes data to a synced temporary file next to p, named from
// tmpPattern (os.CreateTemp), and renames it to p.
func (l layout) writeFile(p, tmpPattern string, data []byte, step Step) error {
	tmp, err := atomicfile.WriteTemp(filepath.Dir(p), tmpPattern, data, 0o644)
	if err != nil {
		return err
	}
	l.step(step)
	return atomicfile.Rename(tmp, p)
}

// generations lists the complete generations on disk.
func (l layout) generations() ([]uint64, error) {
	ents, err := os.ReadDir(l.path(GenerationsDir))
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

// build makes generation n of manifest m: a temporary directory holding
// the manifest, a pkg/<name> symlink per package and the zos symlink,
// synced and renamed into place. Every package must be in packages/.
func (l layout) build(m Manifest) error {
	tmp := l.path(GenerationsDir, buildPrefix+strconv.FormatUint(m.Generation, 10)+"-"+rand.Text())
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
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
	if err := os.Rename(tmp, l.genDir(m.Generation)); err != nil {
		return err
	}
	ok = true
	return atomicfile.SyncDir(l.path(GenerationsDir))
}

// discard removes a directory of generations/ or packages/: first
// renamed out of the way in one step (so a half-removed tree never
// stands under a name the upgrader trusts, e.g. a package's flist id),
// then removed.
func (l layout) discard(parent, name string) error {
	trash := filepath.Join(l.path(parent), trashPrefix+name+"-"+rand.Text())
	if err := os.Rename(filepath.Join(l.path(parent), name), trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if err := atomicfile.SyncDir(l.path(parent)); err != nil {
		return err
	}
	return flist.RemoveTree(trash)
}

// cleanLeftovers removes what interrupted writes left: temporary links
// and state files, generations being built, packages being materialised,
// trees being removed. Every such name starts with a dot.
func (l layout) cleanLeftovers() ([]string, error) {
	var removed []string
	for _, parent := range []string{"", GenerationsDir, PackagesDir} {
		dir := l.path(parent)
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

// collect removes the generations not in keep, and the packages no kept
// generation uses. When a kept generation's manifest cannot be read, its
// packages are unknown: no package is removed.
func (l layout) collect(keep ...uint64) error {
	gens, err := l.generations()
	if err != nil {
		return err
	}
	used := map[flist.ID]bool{}
	unknown := false
	for _, n := range gens {
		if !slices.Contains(keep, n) {
			if err := l.discard(GenerationsDir, strconv.FormatUint(n, 10)); err != nil {
				return err
			}
			continue
		}
		m, err := l.manifest(n)
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
	ents, err := os.ReadDir(l.path(PackagesDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		id, err := flist.ParseID(e.Name())
		if err != nil || used[id] {
			continue
		}
		if err := l.discard(PackagesDir, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// hasPackage reports whether package id is materialised. A package
// directory only ever appears complete (flist.Materialize renames it into
// place) and disappears by a rename (discard).
func (l layout) hasPackage(id flist.ID) bool {
	st, err := os.Lstat(l.pkgDir(id))
	return err == nil && st.IsDir()
}
