package upgrader

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/powerd"
)

// DefaultStable is how long every module must have run, without dying,
// for ModulesHealth to call a generation healthy.
const DefaultStable = 30 * time.Second

// ModuleLister lists the supervised processes; zosd.SupervisorStub and
// *supervisor.Supervisor are ones.
type ModuleLister interface {
	Statuses(ctx context.Context) ([]supervisor.Status, error)
}

// PowerHealth is powerd's verdict on the node; powerd.Stub is one.
type PowerHealth interface {
	Health(ctx context.Context) (powerd.Health, error)
}

// ModulesHealth is the health of a generation as the node sees it: every
// module (but those in Ignore) was started after the restart onto it and
// has been running for at least Stable since, and powerd, when set, says
// the node is healthy. A module that dies and is restarted starts its
// Stable wait over, so a module that keeps crashing never passes.
type ModulesHealth struct {
	// Modules gives the processes' states. Required.
	Modules ModuleLister
	// Power, when set, must call the node healthy.
	Power PowerHealth
	// Ignore names processes that are not judged: the private Redis and
	// the upgrader itself, which are not restarted onto the generation.
	Ignore []string
	// Stable is how long each module must have run (DefaultStable).
	Stable time.Duration
	// Clock is the supervisor's clock (nil: the real clock).
	Clock clock.Clock
}

// Healthy returns nil when the node is healthy on the generation whose
// modules were restarted at since, else why not.
func (h ModulesHealth) Healthy(ctx context.Context, since time.Time) error {
	c := h.Clock
	if c == nil {
		c = clock.Real{}
	}
	stable := h.Stable
	if stable <= 0 {
		stable = DefaultStable
	}
	mods, err := h.Modules.Statuses(ctx)
	if err != nil {
		return fmt.Errorf("module states: %w", err)
	}
	now := c.Now()
	var problems []string
	for _, m := range mods {
		if slices.Contains(h.Ignore, m.Name) {
			continue
		}
		switch {
		case m.State != supervisor.Running:
			p := fmt.Sprintf("%s is %s", m.Name, m.State)
			if m.LastExit != "" {
				p += " (last exit: " + m.LastExit + ")"
			}
			problems = append(problems, p)
		case m.Since.Before(since):
			problems = append(problems, fmt.Sprintf("%s was not restarted onto the new generation", m.Name))
		case now.Sub(m.Since) < stable:
			p := fmt.Sprintf("%s running for %s of %s", m.Name, now.Sub(m.Since).Round(time.Millisecond), stable)
			if m.LastExit != "" {
				p += " (last exit: " + m.LastExit + ")"
			}
			problems = append(problems, p)
		}
	}
	if h.Power != nil {
		ph, err := h.Power.Health(ctx)
		switch {
		case err != nil:
			problems = append(problems, "no health from powerd: "+err.Error())
		case !ph.Healthy:
			problems = append(problems, "node unhealthy: "+ph.Reason())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}
