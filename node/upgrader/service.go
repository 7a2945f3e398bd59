package upgrader

import (
	"context"

	"github.com/grid4/grid4/bus"
)

// Object is the bus object the upgrader serves.
const Object = "upgrader/upgrader@1.0"

// Methods returns the bus methods of Object: State, and CheckNow (check
// the registrar now and return the Result).
func (u *Upgrader) Methods() bus.Methods {
	return bus.Methods{
		"State":    bus.Func0(u.State),
		"CheckNow": bus.Func0(u.CheckNow),
	}
}

// Disabled serves Object for a node that does not upgrade: its State
// says why, and CheckNow fails with the same reason.
type Disabled struct {
	// Reason says why upgrades are off.
	Reason string
	// Running is what the node runs.
	Running Running
}

// Methods returns the bus methods of Object.
func (d Disabled) Methods() bus.Methods {
	return bus.Methods{
		"State": bus.Func0(func(context.Context) (State, error) {
			return State{Enabled: false, Disabled: d.Reason, Running: d.Running}, nil
		}),
		"CheckNow": bus.Func0(func(context.Context) (Result, error) {
			return Result{}, bus.Errorf(CodeDisabled, "upgrades are off: %s", d.Reason)
		}),
	}
}

// CodeDisabled is the bus error of CheckNow on a node that does not
// upgrade.
const CodeDisabled bus.Code = "disabled"

// Stub calls the upgrader over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling the upgrader through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// State returns the upgrader's state.
func (s Stub) State(ctx context.Context) (State, error) {
	return bus.Call[State](ctx, s.c, Object, "State")
}

// CheckNow makes the upgrader check the registrar now.
func (s Stub) CheckNow(ctx context.Context) (Result, error) {
	return bus.Call[Result](ctx, s.c, Object, "CheckNow")
}
