// Package identity is identityd: the node's key pair. It creates the key
// the first time the node starts, loads it afterwards, keeps copies of it
// on the node's data disks, and serves it over the bus (public key,
// signing, farm id) so that no other module holds the secret.
//
// # Where the identity lives
//
// The primary seed file is Config.Primary (zosd: <data>/identity.seed);
// a copy is kept in zosd/identity.seed on each data disk (Config.Disks), so
// that losing the disk holding the primary does not turn the machine into
// a new node. At start (Open):
//
//   - primary readable: it is the identity. Missing copies are written; a
//     corrupt copy is moved aside and rewritten; a copy holding another
//     identity (a disk moved from another node) is left alone and
//     reported.
//   - primary missing: the identity is restored from the copies when they
//     all agree; copies that disagree are an error (ErrConflictingCopies).
//     Only when there is no copy at all is a new identity made.
//   - primary present but unreadable (corrupt, wrong mode, not a file, I/O
//     error): Open fails (ErrCorrupt, ErrUnreadable) and never replaces it,
//     not even from a copy: a file that was there and is now damaged needs
//     a human (failing disk? tampering?), and making a new key would
//     silently change the node's identity. The message says which copies
//     exist and how to restore from one (remove the damaged file).
//   - a copy that exists but cannot be read while the primary is missing
//     also stops Open: there was an identity, and a new one must not
//     replace it.
//
// A data disk whose directory is missing is taken as failed or not
// mounted: it is reported and skipped, never created (that would write
// onto the root file system under the mount point).
package identityd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/grid4/grid4/keys"
)

// CopyDir and CopyFile name the copy of the seed on a data disk:
// <disk>/zosd/identity.seed.
const (
	CopyDir  = "zosd"
	CopyFile = "identity.seed"
)

// Errors of Open; each means the node must not start. Callers branch on
// them to exit with a clear message instead of retrying.
var (
	// ErrCorrupt: a seed file exists but its content is not a valid seed
	// file (truncated, altered, not a regular file).
	ErrCorrupt = errors.New("identity file is corrupt")
	// ErrUnreadable: a seed file exists but cannot be read (permissions,
	// I/O error, mode open to group or others).
	ErrUnreadable = errors.New("identity file is unreadable")
	// ErrConflictingCopies: the primary is missing and the copies on the
	// data disks hold different identities.
	ErrConflictingCopies = errors.New("identity copies disagree")
)

// Config says where the identity lives.
type Config struct {
	// Primary is the path of the primary seed file.
	Primary string
	// Disks are the mount points of the data disks that get a copy.
	Disks []string
	// Scheme is the scheme of a new identity (default ed25519, as ZOS
	// nodes use).
	Scheme keys.Scheme
	// Logger receives what Open did (default: discard).
	Logger *slog.Logger
	// Now stamps the name of a corrupt copy moved aside (default
	// time.Now).
	Now func() time.Time
}

// Origin says how Open obtained the identity.
type Origin string

// Origins of an identity.
const (
	// Loaded from the primary seed file.
	Loaded Origin = "loaded"
	// Created: there was no seed file anywhere.
	Created Origin = "created"
	// Recovered: the primary was missing and was restored from a copy.
	Recovered Origin = "recovered"
)

// CopyState is what Open found and did on one data disk.
type CopyState string

// Copy states.
const (
	// CopyOK: the copy holds this identity.
	CopyOK CopyState = "ok"
	// CopyWritten: the copy was missing and has been written.
	CopyWritten CopyState = "written"
	// CopyReplaced: the copy was corrupt; it was moved aside and rewritten.
	CopyReplaced CopyState = "replaced"
	// CopyForeign: the copy holds another identity and was left alone.
	CopyForeign CopyState = "foreign"
	// CopyUnavailable: the disk is missing or the copy cannot be read or
	// written; Detail says why.
	CopyUnavailable CopyState = "unavailable"
)

// Copy is the state of the copy on one data disk.
type Copy struct {
	Disk   string    `json:"disk"`
	Path   string    `json:"path"`
	State  CopyState `json:"state"`
	Detail string    `json:"detail,omitempty"`
}

// Result is what Open returns: the key pair and how it was obtained.
type Result struct {
	Key    keys.KeyPair
	Origin Origin
	// From is the copy the identity was recovered from (Origin Recovered).
	From   string
	Copies []Copy
}

// copyPath returns the path of the copy on disk.
func copyPath(disk string) string { return filepath.Join(disk, CopyDir, CopyFile) }

// Open loads, recovers or creates the node's identity as the package
// documentation describes. Its errors wrap ErrCorrupt, ErrUnreadable or
// ErrConflictingCopies when the node must not start, and otherwise the
// file system's error (for instance when the primary cannot be written).
func Open(cfg Config) (Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{}, err
	}
	log := cfg.Logger
	kp, origin, from, err := decide(cfg)
	if err != nil {
		return Result{}, err
	}
	switch origin {
	case Loaded:
		log.Info("identity loaded", "file", cfg.Primary, "public_key", Address(kp))
	case Recovered:
		if err := writeSeed(cfg.Primary, kp); err != nil {
			return Result{}, fmt.Errorf("identity: restoring %s from %s: %w", cfg.Primary, from, err)
		}
		log.Warn("identity: primary seed file was missing; restored it from a copy", "file", cfg.Primary, "from", from, "public_key", Address(kp))
	case Created:
		if kp, err = keys.Generate(cfg.Scheme); err != nil {
			return Result{}, fmt.Errorf("identity: generating a key: %w", err)
		}
		if err := writeSeed(cfg.Primary, kp); err != nil {
			return Result{}, fmt.Errorf("identity: writing the new identity: %w", err)
		}
		log.Info("identity created", "file", cfg.Primary, "scheme", kp.Scheme(), "public_key", Address(kp))
	}
	return Result{Key: kp, Origin: origin, From: from, Copies: syncCopies(cfg, kp)}, nil
}

// Check tells whether Open would succeed without writing anything: nil
// when the identity can be loaded, recovered or (there being none)
// created, and Open's refusal otherwise. zosd checks before starting its
// modules, so a node with a damaged identity refuses to start instead of
// restarting identityd in a loop.
func Check(cfg Config) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	_, _, _, err = decide(cfg)
	return err
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Primary == "" {
		return cfg, errors.New("identity: no primary seed file path")
	}
	if cfg.Scheme == "" {
		cfg.Scheme = keys.Ed25519
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg, nil
}

// decide reads the primary and the copies and says what Open does: load
// the primary (Loaded, with its key), restore it from a copy (Recovered,
// with the copy's key and path) or make a new identity (Created, no key).
// It writes nothing.
func decide(cfg Config) (keys.KeyPair, Origin, string, error) {
	kp, err := keys.ReadSeedFile(cfg.Primary)
	switch {
	case err == nil:
		return kp, Loaded, "", nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", "", refusal(cfg, cfg.Primary, err)
	}
	// The primary is missing: look for copies.
	var found keys.KeyPair
	var from string
	for _, disk := range cfg.Disks {
		p := copyPath(disk)
		ckp, err := keys.ReadSeedFile(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, "", "", fmt.Errorf("identity: the primary %s is missing and the copy %s cannot be used: %w; "+
				"refusing to create a new identity, which would make this machine a new node "+
				"(restore the seed file, or remove the damaged copy if this machine must become a new node)",
				cfg.Primary, p, classify(err))
		case found == nil:
			found, from = ckp, p
		case !samePublic(found, ckp):
			return nil, "", "", fmt.Errorf("identity: the primary %s is missing and the copies %s (%s) and %s (%s) hold different identities: %w; "+
				"put back the right seed file as %s",
				cfg.Primary, from, Address(found), p, Address(ckp), ErrConflictingCopies, cfg.Primary)
		}
	}
	if found != nil {
		return found, Recovered, from, nil
	}
	return nil, Created, "", nil
}

// refusal explains why a primary that exists but cannot be read stops
// the node, naming the copies an operator could restore from.
func refusal(cfg Config, path string, err error) error {
	var copies []string
	for _, disk := range cfg.Disks {
		p := copyPath(disk)
		if ckp, cerr := keys.ReadSeedFile(p); cerr == nil {
			copies = append(copies, fmt.Sprintf("%s (%s)", p, Address(ckp)))
		}
	}
	hint := "no readable copy exists on the data disks"
	if len(copies) > 0 {
		hint = "a readable copy is at " + strings.Join(copies, ", ") +
			": if it is this node's identity, remove the damaged file and start again to restore it"
	}
	return fmt.Errorf("identity: %w; refusing to start: the file exists, so this node has an identity, "+
		"and making a new one (or silently picking a copy over it) would change who the node is; %s",
		classify(err), hint)
}

// classify wraps a ReadSeedFile error with ErrCorrupt or ErrUnreadable.
func classify(err error) error {
	if errors.Is(err, keys.ErrCorruptSeedFile) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return fmt.Errorf("%w: %w", ErrUnreadable, err)
}

// syncCopies makes every data disk hold a copy of kp, as far as it can,
// and reports each disk. Failures are reported, not returned: a failed
// disk must not stop the node.
func syncCopies(cfg Config, kp keys.KeyPair) []Copy {
	out := make([]Copy, 0, len(cfg.Disks))
	for _, disk := range cfg.Disks {
		c := syncCopy(cfg, disk, kp)
		if c.State != CopyOK {
			level := slog.LevelInfo
			if c.State == CopyUnavailable || c.State == CopyForeign {
				level = slog.LevelWarn
			}
			cfg.Logger.Log(context.Background(), level, "identity copy", "disk", disk, "path", c.Path, "state", c.State, "detail", c.Detail)
		}
		out = append(out, c)
	}
	return out
}

func syncCopy(cfg Config, disk string, kp keys.KeyPair) Copy {
	p := copyPath(disk)
	c := Copy{Disk: disk, Path: p}
	st, err := os.Stat(disk)
	if err != nil || !st.IsDir() {
		c.State, c.Detail = CopyUnavailable, "data disk not mounted or missing"
		if err != nil {
			c.Detail += ": " + err.Error()
		}
		return c
	}
	ckp, err := keys.ReadSeedFile(p)
	switch {
	case err == nil && samePublic(ckp, kp):
		c.State = CopyOK
		return c
	case err == nil:
		c.State, c.Detail = CopyForeign, fmt.Sprintf("holds identity %s, not %s; left alone", Address(ckp), Address(kp))
		return c
	case errors.Is(err, keys.ErrCorruptSeedFile):
		aside := fmt.Sprintf("%s.corrupt-%d", p, cfg.Now().Unix())
		if rerr := os.Rename(p, aside); rerr != nil {
			c.State, c.Detail = CopyUnavailable, fmt.Sprintf("corrupt and cannot be moved aside: %v", rerr)
			return c
		}
		if werr := writeSeed(p, kp); werr != nil {
			c.State, c.Detail = CopyUnavailable, fmt.Sprintf("corrupt copy moved to %s; rewriting failed: %v", aside, werr)
			return c
		}
		c.State, c.Detail = CopyReplaced, "corrupt copy moved to "+aside
		return c
	case !errors.Is(err, fs.ErrNotExist):
		c.State, c.Detail = CopyUnavailable, err.Error()
		return c
	}
	if err := writeSeed(p, kp); err != nil {
		c.State, c.Detail = CopyUnavailable, err.Error()
		return c
	}
	c.State = CopyWritten
	return c
}

// writeSeed writes kp to path, creating its directory (mode 0700).
func writeSeed(path string, kp keys.KeyPair) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return keys.WriteSeedFile(path, kp)
}

func samePublic(a, b keys.KeyPair) bool {
	return a.Scheme() == b.Scheme() && string(a.Public().Key) == string(b.Public().Key)
}

// Address is the SS58 address (prefix 42) of kp's public key: the node's
// identifier.
func Address(kp keys.KeyPair) string {
	return keys.SS58Encode(kp.Public().Key, keys.GenericSS58Prefix)
}
