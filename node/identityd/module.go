package identityd

import (
	"context"
	"errors"
	"fmt"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/supervisor"
)

// Module is identityd's name in zosd.
const Module = "identityd"

// ModuleConfig is what identityd runs with.
type ModuleConfig struct {
	// Bus is the node's bus, where Object and SignerObject are served.
	Bus *bus.Client
	// Identity says where the seed file and its copies are.
	Identity Config
	// Farm is the farm the node belongs to.
	Farm uint64
}

// Run is identityd: it opens (or creates) the node identity and serves it
// until ctx ends. An identity that cannot be loaded is fatal
// (supervisor.ErrFatal): restarting would not repair it.
func Run(ctx context.Context, m ModuleConfig) error {
	res, err := Open(m.Identity)
	if err != nil {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnreadable) || errors.Is(err, ErrConflictingCopies) {
			return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
		}
		return err
	}
	return NewManager(res, m.Farm, m.Identity.Primary).Serve(ctx, m.Bus)
}
