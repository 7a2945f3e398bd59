package flistd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is flistd's name in zosd.
const Module = "flistd"

// ErrNoHub: the node has no hub, so flistd has nowhere to fetch from.
var ErrNoHub = errors.New("no hub configured on this node (zosd --hub)")

// hubTimeout bounds one request to the hub other than a block download
// (Config.BlockTimeout bounds those).
const hubTimeout = 2 * time.Minute

// ModuleConfig is what flistd runs with.
type ModuleConfig struct {
	// Bus is the node's bus: Object is served there.
	Bus *bus.Client
	// Flists holds the hub's URL and the block cache, which the upgrader
	// shares (Flists.HubURL empty: every method fails with CodeNoHub).
	Flists Config
	// Mounts holds the trees, writable layers and the mount root. Run
	// mounts lazily (Mounts.Lazy) unless Materialize is set.
	Mounts MounterConfig
	// Materialize makes the node download an flist whole before mounting
	// it, rather than fetch its blocks on first read over FUSE.
	Materialize bool
	// Logger receives flistd's records.
	Logger *slog.Logger
}

// Run is flistd: it opens the block cache, puts back the mounts a previous
// run made (after a reboot they are gone) and serves Object until ctx
// ends.
func Run(ctx context.Context, m ModuleConfig) error {
	if m.Flists.HubURL == "" {
		m.Logger.Info("no hub: flists cannot be fetched or mounted")
		return bus.Serve(ctx, m.Bus, Object, noHub(&Manager{}, &Mounter{}))
	}
	m.Flists.Logger = m.Logger
	fm, err := New(m.Flists, &http.Client{Timeout: hubTimeout})
	if errors.Is(err, ErrCacheLocked) {
		// The upgrader works on the cache itself while flistd is down:
		// try again (the supervisor restarts us).
		return err
	}
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	defer fm.Close()
	m.Mounts.Logger = m.Logger
	m.Mounts.Lazy = !m.Materialize
	mt, err := NewMounter(fm, m.Mounts)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	if n := len(mt.Mounts()); n > 0 {
		restored, failed := mt.Restore(ctx)
		m.Logger.Info("flist mounts restored", "restored", restored, "failed", failed)
	}
	methods := fm.Methods()
	maps.Copy(methods, mt.Methods())
	return bus.Serve(ctx, m.Bus, Object, methods)
}

// Methods returns the mount methods of Object, served by mt.
func (mt *Mounter) Methods() bus.Methods {
	return bus.Methods{
		"Mount": bus.Func2(func(ctx context.Context, flistURL, target string) (MountInfo, error) {
			mi, err := mt.Mount(ctx, flistURL, target)
			return mi, coded(err)
		}),
		"Unmount": bus.Proc1(func(ctx context.Context, target string) error {
			return coded(mt.Unmount(ctx, target))
		}),
		"Mounts": bus.Func0(func(context.Context) ([]MountInfo, error) { return mt.Mounts(), nil }),
	}
}

// noHub answers every method of Object with CodeNoHub, so that callers
// learn why rather than wait for a deadline.
func noHub(m *Manager, mt *Mounter) bus.Methods {
	methods := m.Methods()
	maps.Copy(methods, mt.Methods())
	for name := range methods {
		methods[name] = func(context.Context, bus.Args) (any, error) {
			return nil, bus.Errorf(CodeNoHub, "flistd: %w", ErrNoHub)
		}
	}
	return methods
}
