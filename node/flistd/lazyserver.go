package flistd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/internal/process"
)

// LazyServerConfig is what the server of one lazy mount runs with.
type LazyServerConfig struct {
	// Mountpoint is where the flist is mounted (<MounterConfig.Dir>/lazy/<flist id>).
	Mountpoint string
	// Flist is the flist served; its document must be in the cache
	// (Flists.CacheDir/flists) or on the hub.
	Flist flist.ID
	// Flists is the hub and the block cache, shared with flistd (no lock
	// is taken: see ServeLazy). Logger receives the server's records.
	Flists Config
}

// args renders c as the command line arguments ParseLazyServerArgs reads.
func (c LazyServerConfig) args() []string {
	f := c.Flists
	return []string{
		"--mount", c.Mountpoint, "--flist", c.Flist.String(), "--hub", f.HubURL, "--cache", f.CacheDir,
		"--cache-limit", strconv.FormatInt(f.CacheLimit, 10), "--concurrency", strconv.Itoa(f.Concurrency),
		"--attempts", strconv.Itoa(f.Attempts), "--retry-delay", f.RetryDelay.String(), "--block-timeout", f.BlockTimeout.String(),
	}
}

// ParseLazyServerArgs reads the arguments the Mounter appends to
// MounterConfig.ServeCommand.
func ParseLazyServerArgs(args []string) (LazyServerConfig, error) {
	var c LazyServerConfig
	var id string
	fs := flag.NewFlagSet("flistd lazy server", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Mountpoint, "mount", "", "mount point")
	fs.StringVar(&id, "flist", "", "flist ID")
	fs.StringVar(&c.Flists.HubURL, "hub", "", "hub URL")
	fs.StringVar(&c.Flists.CacheDir, "cache", "", "block cache directory")
	fs.Int64Var(&c.Flists.CacheLimit, "cache-limit", 0, "block cache limit in bytes")
	fs.IntVar(&c.Flists.Concurrency, "concurrency", 0, "parallel block downloads")
	fs.IntVar(&c.Flists.Attempts, "attempts", 0, "attempts per block")
	fs.DurationVar(&c.Flists.RetryDelay, "retry-delay", 0, "wait before the second attempt")
	fs.DurationVar(&c.Flists.BlockTimeout, "block-timeout", 0, "bound of one block request")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("flistd: lazy server: %w", err)
	}
	if fs.NArg() > 0 || c.Mountpoint == "" || c.Flists.HubURL == "" || c.Flists.CacheDir == "" {
		return c, fmt.Errorf("flistd: lazy server: want --mount, --flist, --hub and --cache, and no other argument (got %q)", args)
	}
	var err error
	if c.Flist, err = flist.ParseID(id); err != nil {
		return c, fmt.Errorf("flistd: lazy server: --flist: %w", err)
	}
	return c, nil
}

// ServeLazyMain is the server of a lazy mount as a program: it reads args
// (ParseLazyServerArgs), logs to logTo and serves (ServeLazy). The
// command of MounterConfig.ServeCommand calls it, with a ctx that ends on
// SIGTERM.
func ServeLazyMain(ctx context.Context, args []string, logTo io.Writer) error {
	c, err := ParseLazyServerArgs(args)
	if err != nil {
		return err
	}
	c.Flists.Logger = slog.New(slog.NewTextHandler(logTo, nil))
	return ServeLazy(ctx, c)
}

// ServeLazy mounts flist c.Flist read-only on c.Mountpoint over FUSE and
// serves it until it is unmounted, or until ctx ends: then it unmounts it
// (detaching it when busy) and returns. It shares the block cache with
// flistd and other servers without locking it (atomic renames, partial
// files of its own), checks every block against its hash and fetches
// missing ones from the hub, as flistd does.
func ServeLazy(ctx context.Context, c LazyServerConfig) error {
	log := c.Flists.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		c.Flists.Logger = log
	}
	m, err := newManager(c.Flists, &http.Client{Timeout: hubTimeout}, true)
	if err != nil {
		return err
	}
	defer m.Close()
	f, err := m.Fetch(ctx, c.Flist)
	if err != nil {
		return fmt.Errorf("flistd: flist %s: %w", c.Flist, err)
	}
	srv, err := mountLazy(c.Mountpoint, f, c.Flist, m, newBlockMemo(recentBlocks), log)
	if err != nil {
		return err
	}
	log.Info("serving flist lazily", "flist", c.Flist.String(), "mount", c.Mountpoint)
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	select {
	case <-done:
		log.Info("lazy flist mount unmounted: exiting", "flist", c.Flist.String(), "mount", c.Mountpoint)
		return nil
	case <-ctx.Done():
	}
	if err := srv.Unmount(); err != nil {
		log.Warn("lazy flist mount busy: detaching it", "flist", c.Flist.String(), "mount", c.Mountpoint, "err", err)
		if err := unix.Unmount(c.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("flistd: detaching %s: %w", c.Mountpoint, err)
		}
	}
	log.Info("stopped: lazy flist mount unmounted", "flist", c.Flist.String(), "mount", c.Mountpoint)
	return nil
}

// How long the Mounter waits for a server to mount (a server that exits
// is seen at once; one that runs may start slowly on a loaded host), how
// often it looks, and how long one has to exit after SIGTERM before it is
// killed.
const (
	serverStartTimeout = time.Minute
	serverStartPoll    = 20 * time.Millisecond
	serverStopGrace    = 5 * time.Second
)

// lazyPaths are the lazy mount of flist id, the pid file and the log file
// of its server. The mount point is the server's marker: it is in its
// command line and unique to it.
func (mt *Mounter) lazyPaths(id flist.ID) (dir, pidFile, logFile string) {
	dir = filepath.Join(mt.c.Dir, "lazy", id.String())
	return dir, dir + ".pid", dir + ".log"
}

// server returns the pid of the process serving flist id's lazy mount,
// if it runs and the mount is there and answers.
func (mt *Mounter) server(id flist.ID) (int, bool) {
	dir, pidFile, _ := mt.lazyPaths(id)
	pid, ok := process.Running(pidFile, dir)
	if !ok {
		return 0, false
	}
	if mounted, err := mountinfo.IsMountPoint(dir); err != nil || !mounted {
		return pid, false
	}
	if _, err := os.Stat(dir); err != nil {
		return pid, false
	}
	return pid, true
}

// lazyMount returns the lazy mount of flist id and the pid of its server:
// the running one, found by its pid file, or a new one started when there
// is none or its mount is dead.
func (mt *Mounter) lazyMount(ctx context.Context, id flist.ID) (string, int, error) {
	dir, pidFile, logFile := mt.lazyPaths(id)
	if pid, ok := mt.server(id); ok {
		return dir, pid, nil
	}
	if _, running := process.Running(pidFile, dir); running {
		mt.log.Warn("lazy flist mount lost: replacing its server", "flist", id.String())
	}
	if err := mt.stopServer(ctx, id); err != nil {
		return "", 0, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", 0, fmt.Errorf("flistd: %w", err)
	}
	// The server reads the document from the cache.
	if _, err := mt.m.Fetch(ctx, id); err != nil {
		return "", 0, fmt.Errorf("flistd: flist %s: %w", id, err)
	}
	sc := LazyServerConfig{Mountpoint: dir, Flist: id, Flists: mt.m.cfg}
	cmd := mt.c.ServeCommand
	args := append(slices.Clone(cmd[1:]), sc.args()...)
	pid, err := process.Start(cmd[0], args, pidFile, logFile, dir)
	if err != nil {
		return "", 0, fmt.Errorf("flistd: starting the server of flist %s (%s): %w", id, cmd[0], err)
	}
	if err := mt.waitServer(ctx, id); err != nil {
		_ = mt.stopServer(context.WithoutCancel(ctx), id)
		return "", 0, fmt.Errorf("flistd: the server of flist %s (%s) did not mount it: %w; its log %s ends:\n%s",
			id, strings.Join(cmd, " "), err, logFile, logTail(logFile))
	}
	mt.log.Info("lazy flist mount served", "flist", id.String(), "pid", pid)
	return dir, pid, nil
}

// waitServer waits until flist id's server has mounted it, or has exited.
func (mt *Mounter) waitServer(ctx context.Context, id flist.ID) error {
	dir, pidFile, _ := mt.lazyPaths(id)
	ctx, cancel := context.WithTimeout(ctx, serverStartTimeout)
	defer cancel()
	for {
		if _, ok := mt.server(id); ok {
			return nil
		}
		if _, running := process.Running(pidFile, dir); !running {
			return errors.New("it exited")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(serverStartPoll):
		}
	}
}

// stopServer unmounts flist id's lazy mount (detaching it when busy) and
// ends its server: it exits once its mount is gone, or on SIGTERM.
func (mt *Mounter) stopServer(ctx context.Context, id flist.ID) error {
	dir, pidFile, _ := mt.lazyPaths(id)
	if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		mt.log.Warn("lazy flist mount busy: detaching it", "flist", id.String(), "err", err)
	}
	detachAll(dir)
	if err := process.Stop(ctx, pidFile, dir, serverStopGrace); err != nil {
		return fmt.Errorf("flistd: stopping the server of flist %s: %w", id, err)
	}
	return nil
}

// logTail returns the last lines of a server's log.
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}
