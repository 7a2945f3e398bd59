package powerd

import (
	"context"
	"time"

	"github.com/grid4/grid4/bus"
)

// Object is the bus object powerd serves.
const Object = "powerd/power@1.0"

// Methods returns the bus methods of Object served by m: Uptime (seconds,
// float), Health and Status (Run adds the keeper's PeerDown and Power).
func (m *Monitor) Methods() bus.Methods {
	return bus.Methods{
		"Uptime": bus.Func0(func(ctx context.Context) (float64, error) {
			d, err := m.Uptime(ctx)
			return d.Seconds(), err
		}),
		"Health": bus.Func0(m.Health),
		"Status": bus.Func0(m.Status),
	}
}

// Stub calls powerd over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling powerd through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Uptime returns the time since boot.
func (s Stub) Uptime(ctx context.Context) (time.Duration, error) {
	secs, err := bus.Call[float64](ctx, s.c, Object, "Uptime")
	if err != nil {
		return 0, err
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// Health evaluates the node's health.
func (s Stub) Health(ctx context.Context) (Health, error) {
	return bus.Call[Health](ctx, s.c, Object, "Health")
}

// Status returns uptime and health.
func (s Stub) Status(ctx context.Context) (Status, error) {
	return bus.Call[Status](ctx, s.c, Object, "Status")
}

// PeerDown tells powerd a node of the farm went down on purpose (Keeper).
func (s Stub) PeerDown(ctx context.Context, nodeID uint64, macs []string) error {
	return s.c.Invoke(ctx, Object, "PeerDown", nil, nodeID, macs)
}

// Power returns what the power keeper last did.
func (s Stub) Power(ctx context.Context) (PowerState, error) {
	return bus.Call[PowerState](ctx, s.c, Object, "Power")
}
