package bootstrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/node/upgrader/generation"
)

// The bootstrap's own upgrade (docs/upgrade.md, "Upgrading the
// bootstrap"): a release says so by carrying a package named
// BootstrapPackage whose bin/bootstrap differs from the running one.
// Bootstraps live in Config.SelfDir, which the host's unit starts through
// a fixed path:
//
//	SelfDir/current -> b-<hash>     the bootstrap in use (the unit starts current/bootstrap)
//	SelfDir/previous -> b-<hash>    the one before, kept
//	SelfDir/b-<hash>/bootstrap      each bootstrap installed, by the SHA-256 of its program
//	SelfDir/trial                   while current is on trial: SelfTrial
//	SelfDir/failed                  the hashes of bootstraps that failed, one a line: never installed again
const (
	// BootstrapPackage is the name of a release's package carrying a
	// bootstrap (bin/bootstrap).
	BootstrapPackage = "bootstrap"
	selfCurrent      = "current"
	selfPrevious     = "previous"
	selfTrialFile    = "trial"
	selfFailedFile   = "failed"
	selfProgram      = "bootstrap"
)

// SelfTrial is a bootstrap on trial: installed, not yet confirmed by
// having run the node for Config.SelfConfirm.
type SelfTrial struct {
	// From and To are the directories (b-<hash>) of the old and the new
	// bootstrap.
	From string `json:"from"`
	To   string `json:"to"`
	// Generation is the generation whose release carried it.
	Generation uint64 `json:"generation"`
	// Started is when it was switched to.
	Started time.Time `json:"started"`
}

// selfUpgrade installs and execs generation gen's bootstrap when the
// release carries one that differs from this program and has not failed
// before. It returns only when nothing is to be done (or it could not be
// done: logged); on success the process is replaced.
func (b *Bootstrap) selfUpgrade(gen uint64) {
	if b.cfg.SelfDir == "" || gen == 0 {
		return
	}
	newProg := filepath.Join(b.dir.GenDir(gen), generation.PackageLinks, BootstrapPackage, "bin", selfProgram)
	newHash, err := fileHash(newProg)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	self, _ := os.Executable()
	selfHash, _ := fileHash(self)
	if err != nil || newHash == selfHash {
		return
	}
	if failed, _ := os.ReadFile(filepath.Join(b.cfg.SelfDir, selfFailedFile)); slices.Contains(strings.Fields(string(failed)), newHash) {
		b.log.Info("the release's bootstrap failed before; keeping this one", "generation", gen, "bootstrap", newHash[:12])
		return
	}
	if err := b.installSelf(gen, newProg, newHash); err != nil {
		b.log.Error("installing the release's bootstrap", "generation", gen, "err", err)
		return
	}
	exe := filepath.Join(b.cfg.SelfDir, selfCurrent, selfProgram)
	b.log.Warn("starting the release's bootstrap", "generation", gen, "bootstrap", newHash[:12], "program", exe)
	// The locks are on close-on-exec descriptors: the new program takes
	// them again.
	err = syscall.Exec(exe, append([]string{exe}, os.Args[1:]...), os.Environ())
	b.log.Error("starting the release's bootstrap", "err", err)
	_ = RevertSelf(b.cfg.SelfDir, "exec: "+err.Error())
}

// installSelf probes prog, copies it into SelfDir/b-<hash>, writes the
// trial down and switches current to it (previous to the old one).
func (b *Bootstrap) installSelf(gen uint64, prog, hash string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, prog, "version").CombinedOutput(); err != nil {
		return fmt.Errorf("%s version: %w: %s", prog, err, strings.TrimSpace(string(out)))
	}
	from, err := os.Readlink(filepath.Join(b.cfg.SelfDir, selfCurrent))
	if err != nil {
		return fmt.Errorf("%s is not a link to the bootstrap in use: %w", filepath.Join(b.cfg.SelfDir, selfCurrent), err)
	}
	to := "b-" + hash[:32]
	if err := copyProgram(prog, filepath.Join(b.cfg.SelfDir, to)); err != nil {
		return err
	}
	t, err := json.Marshal(SelfTrial{From: from, To: to, Generation: gen, Started: time.Now().UTC()})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(b.cfg.SelfDir, selfTrialFile), t, 0o644); err != nil {
		return err
	}
	if err := switchLink(b.cfg.SelfDir, selfPrevious, from); err != nil {
		return err
	}
	return switchLink(b.cfg.SelfDir, selfCurrent, to)
}

// selfOnTrial returns the trial of the running bootstrap, if it is the
// one on trial.
func (b *Bootstrap) selfOnTrial() *SelfTrial {
	if b.cfg.SelfDir == "" {
		return nil
	}
	t, err := readSelfTrial(b.cfg.SelfDir)
	self, _ := os.Executable()
	if err != nil || t == nil || filepath.Base(filepath.Dir(self)) != t.To {
		return nil
	}
	return t
}

// confirmSelf ends the trial of the running bootstrap: it started the
// node and kept it beating for SelfConfirm.
func (b *Bootstrap) confirmSelf() {
	if err := os.Remove(filepath.Join(b.cfg.SelfDir, selfTrialFile)); err == nil {
		b.log.Info("this bootstrap is confirmed", "dir", b.cfg.SelfDir)
		_ = atomicfile.SyncDir(b.cfg.SelfDir)
	}
}

// RevertSelf switches dir's current bootstrap back to the previous one
// when the current one is on trial, and records it as failed so that it
// is not installed again. It is what the host runs after a failed run of
// the unit (`bootstrap revert`), with the previous bootstrap's program.
// Without a trial it does nothing.
func RevertSelf(dir, reason string) error {
	t, err := readSelfTrial(dir)
	if err != nil || t == nil {
		return err
	}
	if err := switchLink(dir, selfCurrent, t.From); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, selfFailedFile), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	hash, _ := fileHash(filepath.Join(dir, t.To, selfProgram))
	_, werr := fmt.Fprintf(f, "%s %s\n", hash, strings.Join(strings.Fields(reason), "_"))
	if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, selfTrialFile)); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

func readSelfTrial(dir string) (*SelfTrial, error) {
	b, err := os.ReadFile(filepath.Join(dir, selfTrialFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t SelfTrial
	if err := json.Unmarshal(b, &t); err != nil || t.From == "" || t.To == "" {
		return nil, fmt.Errorf("%s: not a bootstrap trial", filepath.Join(dir, selfTrialFile))
	}
	return &t, nil
}

// switchLink points dir/name at target in one step (a new link renamed
// over the old one).
func switchLink(dir, name, target string) error {
	tmp := filepath.Join(dir, "."+name+".tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		return err
	}
	return atomicfile.SyncDir(dir)
}

// copyProgram copies prog into dir/bootstrap, dir made complete or not at
// all (a temporary directory renamed); an existing dir is kept.
func copyProgram(prog, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, selfProgram)); err == nil {
		return nil
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(prog)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, selfProgram), data, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(dir))
}

func fileHash(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
