package zosd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/grid4/grid4/node/bootstrap"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// errHandover ends a node started by the bootstrap whose generation is no
// longer the current one: Main exits with ExitHandover.
var errHandover = errors.New("the node switched generations: handing over to the bootstrap")

// bootLink is what a zosd started by the bootstrap (cmd/bootstrap) has of
// it: the heartbeat pipe, and the generation it was started from.
type bootLink struct {
	heartbeat *os.File
	interval  time.Duration
	// generation is the one the bootstrap started this zosd from.
	generation uint64
}

// bootLinkFromEnv reads the bootstrap's variables (none: nil, a zosd the
// host started itself) and removes them, so that the modules do not see
// them; the descriptor is not passed on either.
func bootLinkFromEnv(getenv func(string) string) (*bootLink, error) {
	fdText := getenv(bootstrap.HeartbeatFDEnv)
	if fdText == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: not a descriptor", bootstrap.HeartbeatFDEnv, fdText)
	}
	interval, err := time.ParseDuration(getenv(bootstrap.HeartbeatIntervalEnv))
	if err != nil || interval <= 0 {
		return nil, fmt.Errorf("%s=%q: not a duration", bootstrap.HeartbeatIntervalEnv, getenv(bootstrap.HeartbeatIntervalEnv))
	}
	gen, err := strconv.ParseUint(getenv(bootstrap.GenerationEnv), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: not a generation", bootstrap.GenerationEnv, getenv(bootstrap.GenerationEnv))
	}
	syscall.CloseOnExec(fd)
	for _, v := range []string{bootstrap.HeartbeatFDEnv, bootstrap.HeartbeatIntervalEnv, bootstrap.GenerationEnv} {
		os.Unsetenv(v)
	}
	return &bootLink{heartbeat: os.NewFile(uintptr(fd), "heartbeat"), interval: interval, generation: gen}, nil
}

// switched reports whether the current generation is no longer the one
// the bootstrap started this zosd from.
func (n *node) switched() bool {
	if n.boot == nil {
		return false
	}
	r, err := n.cfg.installed().Running()
	return err != nil || r.Generation != n.boot.generation
}

// beat writes the heartbeat while the supervisor answers, until ctx
// ends. A supervisor stuck (its lock held) stops the beats, and the
// bootstrap stops this zosd as hung.
func (n *node) beat(ctx context.Context, sup *supervisor.Supervisor) {
	if n.boot == nil {
		return
	}
	t := time.NewTicker(n.boot.interval)
	defer t.Stop()
	for {
		if _, err := sup.Statuses(ctx); err == nil {
			// An error (EPIPE) means the bootstrap is gone; it kills
			// this process as it dies (parent-death signal).
			_, _ = n.boot.heartbeat.Write([]byte{'.'})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
