package flistd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/internal/mountinfo"
)

// Errors of the Mounter callers branch on.
var (
	// ErrBadFlistURL: the URL does not name an flist on the node's hub.
	ErrBadFlistURL = errors.New("not an flist URL of this node's hub")
	// ErrBadTarget: the mount target is not a clean absolute path under
	// the mount root.
	ErrBadTarget = errors.New("bad mount target")
	// ErrTargetBusy: the target is mounted with another flist.
	ErrTargetBusy = errors.New("mount target in use by another flist")
)

// MountsFile is the Mounter's record of its mounts, under MounterConfig.Dir.
const MountsFile = "mounts.json"

// MounterConfig configures a Mounter.
type MounterConfig struct {
	// Dir holds the lazy (FUSE) mounts of the flists (lazy/<flist id>),
	// the materialised trees when not lazy (trees/<flist id>), the
	// writable layers (layers/<hash of target>/{upper,work}) and
	// MountsFile. Required; it must be on a file system overlayfs accepts
	// as upper (ext4, xfs…).
	Dir string
	// Lazy mounts flists over FUSE (lazy/<flist id>), fetching each block
	// on first read, instead of from trees downloaded whole before the
	// mount (trees/<flist id>). flistd's module sets it (see
	// ModuleConfig.Materialize). Without /dev/fuse the trees are
	// materialised anyway, and the Mounter logs it.
	Lazy bool
	// Root bounds the targets: every mount target must be under it (the
	// node's data directory). Required.
	Root string
	// ServeCommand is the program and its first arguments that serve a
	// lazy mount (required when Lazy): the Mounter appends the mount's
	// arguments and starts it detached, in a session of its own, so that
	// the mount and the workloads over it outlive flistd. The command
	// must call ServeLazyMain with those arguments (zosd: its hidden
	// subcommand; tests: the test binary).
	ServeCommand []string
	// Logger receives restore and unmount records (nil: discarded).
	Logger *slog.Logger
}

// MountInfo describes one mount.
type MountInfo struct {
	// Target is where the flist is mounted.
	Target string `json:"target"`
	// URL is the flist's URL as the caller gave it.
	URL string `json:"url"`
	// Flist is the flist's ID (what a name resolved to when mounted).
	Flist flist.ID `json:"flist"`
	// Layer is the directory of the mount's writable layer.
	Layer string `json:"layer"`
	// Lazy is true when the overlay's lower layer is the flist's FUSE
	// mount (blocks fetched on first read), false when it is a
	// materialised tree.
	Lazy bool `json:"lazy,omitempty"`
	// Server is the pid of the process serving the lazy mount the
	// overlay was mounted over: an overlay over an earlier server (killed,
	// replaced) sits on a dead FUSE connection and is mounted again.
	Server int `json:"server,omitempty"`
	// Mounted is false when the mount is recorded but not in place (a
	// restore failed: Error says why).
	Mounted bool `json:"mounted"`
	// Error is why the mount is not in place.
	Error string `json:"error,omitempty"`
	// Image is the flist's container image metadata (entrypoint, env…),
	// nil for a plain flist: what a machine runs by default.
	Image *flist.Image `json:"image,omitempty"`
}

// Mounter mounts flists for workloads: the flist's tree, shared read-only
// by every workload using it, under an overlay with a writable layer of
// the workload's own. The tree is a FUSE mount that fetches each block
// from the verified cache (the hub on a miss) on first read, so a
// workload starts before its image is downloaded (MounterConfig.Lazy):
// it is served by a process of its own (MounterConfig.ServeCommand,
// ServeLazy) that outlives the Mounter's, so the workloads keep reading
// across restarts of flistd, and a new Mounter finds it again by its pid
// file. Or the tree is materialised whole from the cache. The Mounter
// records its mounts and puts them back after a restart (Restore). It is
// safe for concurrent use. Nothing needs closing: a Mounter that goes
// away leaves its mounts and their servers running.
type Mounter struct {
	c    MounterConfig
	m    *Manager
	log  *slog.Logger
	lazy bool

	mu     sync.Mutex
	mounts map[string]MountInfo // by target
}

// recentBlocks is how many decoded blocks a lazy mount's server keeps in
// memory (at most 1 MiB each).
const recentBlocks = 16

// NewMounter returns a Mounter getting flists from m, with the mounts a
// previous run recorded (not yet checked: call Restore).
func NewMounter(m *Manager, c MounterConfig) (*Mounter, error) {
	if c.Dir == "" || c.Root == "" {
		return nil, errors.New("flistd: MounterConfig.Dir and Root are required")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return nil, fmt.Errorf("flistd: mount root: %w", err)
	}
	c.Root = root
	for _, d := range []string{c.Dir, filepath.Join(c.Dir, "trees"), filepath.Join(c.Dir, "lazy"), filepath.Join(c.Dir, "layers")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("flistd: %w", err)
		}
	}
	mt := &Mounter{c: c, m: m, log: c.Logger, mounts: map[string]MountInfo{}}
	if c.Lazy {
		if len(c.ServeCommand) == 0 {
			return nil, errors.New("flistd: MounterConfig.ServeCommand is required for lazy mounts")
		}
		if err := fuseAvailable(); err != nil {
			mt.log.Warn("no FUSE: flists are downloaded whole before they are mounted", "err", err)
		} else {
			mt.lazy = true
		}
	}
	b, err := os.ReadFile(filepath.Join(c.Dir, MountsFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("flistd: %w", err)
	default:
		var list []MountInfo
		if err := json.Unmarshal(b, &list); err != nil {
			return nil, fmt.Errorf("flistd: %s: %w", MountsFile, err)
		}
		for _, mi := range list {
			mt.mounts[mi.Target] = mi
		}
	}
	return mt, nil
}

// Mount mounts the flist at flistURL on target (created if missing) with a
// writable layer of its own: writes land in the layer, the shared tree is
// never changed. Mounting the same flist on the same target again is a
// no-op (or puts the mount back if it was lost); another flist on a
// mounted target is ErrTargetBusy.
//
// flistURL names an flist on the node's hub, by name
// (<hub>/api/v1/repos/<publisher>/<repo>/flists/<name>, resolved now) or by
// ID (<hub>/api/v1/flists/<id>).
func (mt *Mounter) Mount(ctx context.Context, flistURL, target string) (MountInfo, error) {
	target, err := mt.checkTarget(target)
	if err != nil {
		return MountInfo{}, err
	}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	if cur, ok := mt.mounts[target]; ok {
		if cur.URL != flistURL {
			return MountInfo{}, fmt.Errorf("flistd: %s: %w (%s)", target, ErrTargetBusy, cur.URL)
		}
		cur, err := mt.ensure(ctx, cur)
		if serr := mt.save(); serr != nil && err == nil {
			err = serr
		}
		return cur, err
	}
	id, err := mt.resolve(ctx, flistURL)
	if err != nil {
		return MountInfo{}, err
	}
	f, err := mt.m.Fetch(ctx, id)
	if err != nil {
		return MountInfo{}, fmt.Errorf("flistd: flist %s: %w", id, err)
	}
	sum := sha256.Sum256([]byte(target))
	mi := MountInfo{Target: target, URL: flistURL, Flist: id, Layer: filepath.Join(mt.c.Dir, "layers", hex.EncodeToString(sum[:12])), Image: f.Image, Lazy: mt.lazy}
	// Record first: a crash after the mount leaves a record Restore and
	// Unmount find, never a mount nobody knows of.
	mt.mounts[target] = mi
	if err := mt.save(); err != nil {
		delete(mt.mounts, target)
		return MountInfo{}, err
	}
	mi, err = mt.ensure(ctx, mi)
	if err != nil {
		mt.drop(ctx, mi)
		delete(mt.mounts, target)
		if serr := mt.save(); serr != nil {
			mt.log.Warn("recording a failed mount's removal", "target", target, "err", serr)
		}
		return MountInfo{}, err
	}
	return mi, mt.save()
}

// Unmount removes the mount on target and its writable layer (what the
// workload wrote is gone), and the flist's tree when no other mount uses
// it. A target that is not mounted is not an error.
func (mt *Mounter) Unmount(ctx context.Context, target string) error {
	target, err := mt.checkTarget(target)
	if err != nil {
		return err
	}
	mt.mu.Lock()
	defer mt.mu.Unlock()
	mi, ok := mt.mounts[target]
	if !ok {
		return nil
	}
	if err := mt.drop(ctx, mi); err != nil {
		return err
	}
	delete(mt.mounts, target)
	return mt.save()
}

// Mounts lists the recorded mounts, by target.
func (mt *Mounter) Mounts() []MountInfo {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	out := make([]MountInfo, 0, len(mt.mounts))
	for _, mi := range mt.mounts {
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b MountInfo) int { return strings.Compare(a.Target, b.Target) })
	return out
}

// Restore puts back every recorded mount that is not in place (after a
// reboot, or a module restart that lost them), each from its recorded
// flist ID. Mounts that cannot be restored stay recorded with their error
// (Mounts) and are tried again by the next Mount of the same target.
func (mt *Mounter) Restore(ctx context.Context) (restored, failed int) {
	mt.mu.Lock()
	defer mt.mu.Unlock()
	for target, mi := range mt.mounts {
		was := mi.Mounted
		mi, err := mt.ensure(ctx, mi)
		if err != nil {
			failed++
			mt.log.Warn("flist mount not restored", "target", target, "flist", mi.URL, "err", err)
		} else if !was || mi.Mounted {
			restored++
		}
	}
	if err := mt.save(); err != nil {
		mt.log.Warn("recording restored mounts", "err", err)
	}
	return restored, failed
}

// ensure makes mi's mount be in place: the lower tree (lazy mount or
// materialised tree) there, the layer made, the overlay mounted. It
// updates and returns the record (the caller saves it).
func (mt *Mounter) ensure(ctx context.Context, mi MountInfo) (MountInfo, error) {
	err := mt.mount(ctx, &mi)
	mi.Mounted, mi.Error = err == nil, ""
	if err != nil {
		mi.Error = err.Error()
	}
	mt.mounts[mi.Target] = mi
	return mi, err
}

func (mt *Mounter) mount(ctx context.Context, mi *MountInfo) error {
	if ok, err := mt.inPlace(*mi); err != nil || ok {
		return err
	}
	lower, server, err := mt.lower(ctx, mi.Flist)
	if err != nil {
		return err
	}
	upper, work := filepath.Join(mi.Layer, "upper"), filepath.Join(mi.Layer, "work")
	for _, d := range []string{upper, work, mi.Target} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("flistd: %w", err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	// Recorded before mounting (the caller saves): a record never claims
	// a materialised tree under a lazy mount that a restart must redo.
	mi.Lazy, mi.Server = mt.lazy, server
	if err := unix.Mount("overlay", mi.Target, "overlay", unix.MS_NODEV, opts); err != nil {
		return fmt.Errorf("flistd: mounting %s on %s: overlay: %w", mi.URL, mi.Target, err)
	}
	return nil
}

// inPlace reports whether mi's overlay is mounted and working. An overlay
// over a lazy mount whose server is not the one it was mounted over (that
// server died or was replaced, reads fail with ENOTCONN) is not: it is
// detached, to be mounted again.
func (mt *Mounter) inPlace(mi MountInfo) (bool, error) {
	ok, err := mountinfo.IsMountPoint(mi.Target)
	if errors.Is(err, unix.ENOTCONN) || errors.Is(err, unix.ECONNABORTED) {
		// Over a dead FUSE connection.
		ok, err = true, nil
	}
	if err != nil {
		return false, fmt.Errorf("flistd: %w", err)
	}
	if !ok || !mi.Lazy {
		return ok, nil
	}
	if pid, ok := mt.server(mi.Flist); ok && pid == mi.Server {
		return true, nil
	}
	mt.log.Info("flist mount over a lost lazy mount (its server died): mounting it again", "target", mi.Target, "flist", mi.Flist.String())
	if err := unix.Unmount(mi.Target, unix.MNT_DETACH); err != nil {
		return false, fmt.Errorf("flistd: detaching the stale mount on %s: %w", mi.Target, err)
	}
	return false, nil
}

// lower returns the read-only tree of flist id: its lazy mount and the
// pid of its server (started when none serves it), or its materialised
// tree.
func (mt *Mounter) lower(ctx context.Context, id flist.ID) (string, int, error) {
	if !mt.lazy {
		dir, err := mt.tree(ctx, id)
		return dir, 0, err
	}
	return mt.lazyMount(ctx, id)
}

// unmountLazy unmounts the lazy mount of id (detaching it when the kernel
// still uses it: a workload's overlay that had to be detached), stops its
// server and removes its files.
func (mt *Mounter) unmountLazy(ctx context.Context, id flist.ID) error {
	dir, _, logFile := mt.lazyPaths(id)
	if err := mt.stopServer(ctx, id); err != nil {
		return err
	}
	_ = os.Remove(dir)
	_ = os.Remove(logFile)
	return nil
}

// detachAll lazily unmounts whatever is mounted on dir.
func detachAll(dir string) {
	for range 8 {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return // EINVAL: not a mount point (any more); ENOENT: no dir
		}
	}
}

// tree returns the materialised read-only tree of flist id, materialising
// it when it is not there (atomically: a tree either exists whole or not
// at all).
func (mt *Mounter) tree(ctx context.Context, id flist.ID) (string, error) {
	dir := filepath.Join(mt.c.Dir, "trees", id.String())
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	f, err := mt.m.Fetch(ctx, id)
	if err != nil {
		return "", fmt.Errorf("flistd: flist %s: %w", id, err)
	}
	if err := mt.m.Materialize(ctx, f, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// drop unmounts mi (lazily when busy), removes its layer, and the flist's
// lazy mount and tree when no other mount uses them.
func (mt *Mounter) drop(ctx context.Context, mi MountInfo) error {
	if ok, err := mt.inPlace(mi); err == nil && ok {
		if err := unix.Unmount(mi.Target, 0); err != nil {
			mt.log.Warn("flist mount busy: detaching it", "target", mi.Target, "err", err)
			if err := unix.Unmount(mi.Target, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("flistd: unmounting %s: %w", mi.Target, err)
			}
		}
	}
	if err := os.RemoveAll(mi.Layer); err != nil {
		return fmt.Errorf("flistd: removing the layer of %s: %w", mi.Target, err)
	}
	_ = os.Remove(mi.Target) // an empty mount point; a non-empty one is the caller's
	for t, other := range mt.mounts {
		if t != mi.Target && other.Flist == mi.Flist {
			return nil
		}
	}
	if err := mt.unmountLazy(ctx, mi.Flist); err != nil {
		return err
	}
	tree := filepath.Join(mt.c.Dir, "trees", mi.Flist.String())
	if _, err := os.Lstat(tree); err != nil {
		return ctx.Err()
	}
	if err := makeWritable(tree); err != nil {
		mt.log.Warn("removing an unused flist tree", "flist", mi.Flist.String(), "err", err)
		return nil
	}
	if err := os.RemoveAll(tree); err != nil {
		mt.log.Warn("removing an unused flist tree", "flist", mi.Flist.String(), "err", err)
	}
	return ctx.Err()
}

// makeWritable gives the owner write permission on the directories of a
// materialised (read-only) tree, so that it can be removed.
func makeWritable(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.IsDir() {
			return err
		}
		return os.Chmod(p, 0o755)
	})
}

// checkTarget returns target cleaned, or ErrBadTarget when it is not an
// absolute path strictly under the mount root.
func (mt *Mounter) checkTarget(target string) (string, error) {
	if !filepath.IsAbs(target) || filepath.Clean(target) != target {
		return "", fmt.Errorf("flistd: %w: %q is not a clean absolute path", ErrBadTarget, target)
	}
	rel, err := filepath.Rel(mt.c.Root, target)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("flistd: %w: %q is not under %s", ErrBadTarget, target, mt.c.Root)
	}
	return target, nil
}

// resolve turns an flist URL on the node's hub into the flist's ID.
func (mt *Mounter) resolve(ctx context.Context, flistURL string) (flist.ID, error) {
	pub, repo, name, id, err := ParseFlistURL(mt.m.Hub().URL(), flistURL)
	if err != nil {
		return flist.ID{}, err
	}
	if name == "" {
		return id, nil
	}
	fi, err := mt.m.Hub().FlistInfo(ctx, pub, repo, name)
	if err != nil {
		return flist.ID{}, fmt.Errorf("flistd: %s: %w", flistURL, err)
	}
	return fi.Flist, nil
}

// ParseFlistURL splits an flist URL on the hub at hubURL: a named flist
// (publisher, repo and name set) or one by ID (id set). A URL on another
// host, or of another form, is ErrBadFlistURL.
func ParseFlistURL(hubURL, flistURL string) (publisher, repo, name string, id flist.ID, err error) {
	bad := func(why string) error {
		return fmt.Errorf("flistd: %q: %w %s (%s; e.g. %s/api/v1/repos/<publisher>/<repo>/flists/<name>)", flistURL, ErrBadFlistURL, hubURL, why, hubURL)
	}
	hub, err := url.Parse(hubURL)
	if err != nil {
		return "", "", "", id, fmt.Errorf("flistd: hub URL: %w", err)
	}
	u, err := url.Parse(flistURL)
	if err != nil {
		return "", "", "", id, bad("not a URL")
	}
	if u.Scheme != hub.Scheme || u.Host != hub.Host || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", "", id, bad("another hub")
	}
	rest, ok := strings.CutPrefix(u.Path, strings.TrimSuffix(hub.Path, "/")+"/api/v1/")
	if !ok || path.Clean("/"+rest) != "/"+rest {
		return "", "", "", id, bad("not an flist path")
	}
	parts := strings.Split(rest, "/")
	switch {
	case len(parts) == 2 && parts[0] == "flists":
		if id, err = flist.ParseID(parts[1]); err != nil {
			return "", "", "", id, bad("bad flist ID")
		}
		return "", "", "", id, nil
	case len(parts) == 5 && parts[0] == "repos" && parts[3] == "flists" && parts[1] != "" && parts[2] != "" && parts[4] != "":
		return parts[1], parts[2], parts[4], id, nil
	}
	return "", "", "", id, bad("not an flist path")
}

// save writes the mounts' record atomically.
func (mt *Mounter) save() error {
	list := make([]MountInfo, 0, len(mt.mounts))
	for _, mi := range mt.mounts {
		list = append(list, mi)
	}
	slices.SortFunc(list, func(a, b MountInfo) int { return strings.Compare(a.Target, b.Target) })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(mt.c.Dir, MountsFile), b, 0o600); err != nil {
		return fmt.Errorf("flistd: recording mounts: %w", err)
	}
	return nil
}
