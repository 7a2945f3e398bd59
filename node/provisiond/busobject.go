package provisiond

import (
	"context"
	"errors"
	"net/netip"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/noderpc/api"
)

// Object is the engine's name on the node's bus (docs/bus.md). Other
// modules of the node are trusted: they name the twin they act for; users
// go through zos-api-light, which authenticates them.
const Object = "provisiond/engine@1.0"

// Bus error codes of the engine's sentinels; Stub turns them back into the
// sentinels, so errors.Is works the same locally and across the bus.
const (
	CodeInvalid   bus.Code = "invalid_deployment"
	CodeSignature bus.Code = "bad_signature"
	CodeNotFound  bus.Code = "not_found"
	CodeForbidden bus.Code = "forbidden"
	CodeConflict  bus.Code = "conflict"
	CodeBusy      bus.Code = "busy"
	CodeCapacity  bus.Code = "no_capacity"
	CodeContract  bus.Code = "contract"
)

// codes pairs the codes with the sentinels.
func codes() []struct {
	code bus.Code
	err  error
} {
	return []struct {
		code bus.Code
		err  error
	}{
		{CodeInvalid, gridtypes.ErrInvalid}, {CodeSignature, gridtypes.ErrSignature}, {CodeNotFound, gridtypes.ErrNotFound},
		{CodeForbidden, gridtypes.ErrForbidden}, {CodeConflict, gridtypes.ErrConflict}, {CodeBusy, gridtypes.ErrBusy}, {CodeCapacity, gridtypes.ErrCapacity},
		{CodeContract, gridtypes.ErrContract},
	}
}

// toBus gives an engine error its bus code.
func toBus(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range codes() {
		if errors.Is(err, c.err) {
			return bus.Errorf(c.code, "%v", err)
		}
	}
	return err
}

// fromBus turns a bus error with an engine code back into an error that
// matches the sentinel (and keeps the bus error).
func fromBus(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range codes() {
		if errors.Is(err, c.code) {
			return &engineError{sentinel: c.err, err: err}
		}
	}
	return err
}

// engineError is an engine error that crossed the bus: it matches its
// sentinel and the bus error, and reads as the engine's message, which
// already begins with the sentinel's ("deployment not found: 99", not
// "deployment not found (deployment not found: 99)").
type engineError struct{ sentinel, err error }

func (e *engineError) Error() string   { return e.err.Error() }
func (e *engineError) Unwrap() []error { return []error{e.sentinel, e.err} }

// Methods are the engine's methods for bus.Server.Handle(Object, ...).
func (e *Engine) Methods() bus.Methods {
	record := func(f func(context.Context, uint64, uint64) (gridtypes.Record, error)) bus.Handler {
		return bus.Func2(func(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
			r, err := f(ctx, caller, id)
			return r, toBus(err)
		})
	}
	deployment := func(f func(context.Context, uint64, gridtypes.Deployment) (gridtypes.Record, error)) bus.Handler {
		return bus.Func2(func(ctx context.Context, caller uint64, d gridtypes.Deployment) (gridtypes.Record, error) {
			r, err := f(ctx, caller, d)
			return r, toBus(err)
		})
	}
	return bus.Methods{
		"Deploy": deployment(e.Deploy),
		"Update": deployment(e.Update),
		"Delete": record(e.Delete),
		"Pause":  record(e.Pause),
		"Resume": record(e.Resume),
		"Get":    record(e.Get),
		"List": bus.Func1(func(ctx context.Context, caller uint64) ([]gridtypes.Summary, error) {
			l, err := e.List(ctx, caller)
			return l, toBus(err)
		}),
		"Changes": bus.Func2(func(ctx context.Context, caller, id uint64) ([]gridtypes.Change, error) {
			c, err := e.Changes(ctx, caller, id)
			return c, toBus(err)
		}),
		"Capacity":   bus.Func0(e.Capacity),
		"Statistics": bus.Func0(e.Statistics),
		"JoinNetwork": bus.Func3(func(ctx context.Context, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error) {
			p, err := e.JoinNetwork(ctx, from, host, req)
			return p, toBus(err)
		}),
		"LeaveNetwork": bus.Proc2(func(ctx context.Context, from uint64, req api.NetworkLeave) error {
			return toBus(e.LeaveNetwork(ctx, from, req))
		}),
	}
}

// Stub calls the engine over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub over c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Deploy calls Engine.Deploy.
func (s Stub) Deploy(ctx context.Context, caller uint64, d gridtypes.Deployment) (gridtypes.Record, error) {
	r, err := bus.Call[gridtypes.Record](ctx, s.c, Object, "Deploy", caller, d)
	return r, fromBus(err)
}

// Update calls Engine.Update.
func (s Stub) Update(ctx context.Context, caller uint64, d gridtypes.Deployment) (gridtypes.Record, error) {
	r, err := bus.Call[gridtypes.Record](ctx, s.c, Object, "Update", caller, d)
	return r, fromBus(err)
}

func (s Stub) record(ctx context.Context, method string, caller, id uint64) (gridtypes.Record, error) {
	r, err := bus.Call[gridtypes.Record](ctx, s.c, Object, method, caller, id)
	return r, fromBus(err)
}

// Delete calls Engine.Delete.
func (s Stub) Delete(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	return s.record(ctx, "Delete", caller, id)
}

// Pause calls Engine.Pause.
func (s Stub) Pause(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	return s.record(ctx, "Pause", caller, id)
}

// Resume calls Engine.Resume.
func (s Stub) Resume(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	return s.record(ctx, "Resume", caller, id)
}

// Get calls Engine.Get.
func (s Stub) Get(ctx context.Context, caller, id uint64) (gridtypes.Record, error) {
	return s.record(ctx, "Get", caller, id)
}

// List calls Engine.List.
func (s Stub) List(ctx context.Context, caller uint64) ([]gridtypes.Summary, error) {
	l, err := bus.Call[[]gridtypes.Summary](ctx, s.c, Object, "List", caller)
	return l, fromBus(err)
}

// Changes calls Engine.Changes.
func (s Stub) Changes(ctx context.Context, caller, id uint64) ([]gridtypes.Change, error) {
	c, err := bus.Call[[]gridtypes.Change](ctx, s.c, Object, "Changes", caller, id)
	return c, fromBus(err)
}

// Capacity calls Engine.Capacity.
func (s Stub) Capacity(ctx context.Context) (gridtypes.CapacityReport, error) {
	c, err := bus.Call[gridtypes.CapacityReport](ctx, s.c, Object, "Capacity")
	return c, fromBus(err)
}

// Statistics calls Engine.Statistics.
func (s Stub) Statistics(ctx context.Context) (gridtypes.Statistics, error) {
	st, err := bus.Call[gridtypes.Statistics](ctx, s.c, Object, "Statistics")
	return st, fromBus(err)
}

// API returns the address zos-api-light listens on (served by the module,
// not by a bare engine).
func (s Stub) API(ctx context.Context) (string, error) {
	return bus.Call[string](ctx, s.c, Object, "API")
}

// JoinNetwork calls Engine.JoinNetwork.
func (s Stub) JoinNetwork(ctx context.Context, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error) {
	p, err := bus.Call[api.NetworkPart](ctx, s.c, Object, "JoinNetwork", from, host, req)
	return p, fromBus(err)
}

// LeaveNetwork calls Engine.LeaveNetwork.
func (s Stub) LeaveNetwork(ctx context.Context, from uint64, req api.NetworkLeave) error {
	return fromBus(s.c.Invoke(ctx, Object, "LeaveNetwork", nil, from, req))
}
