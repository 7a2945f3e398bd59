// Package registrarlight holds the two registration modules of the node:
//
//   - registrar_gateway (Gateway): the only module that speaks to the
//     registrar as the node. It calls the registrar through package client,
//     signing every request with the node key — through identityd over the
//     bus (identityd.RemoteKey), so the secret never leaves identityd.
//     Unsigned public reads (zos-api-light looking up a caller's twin key)
//     go to the registrar directly: they need no identity and must not
//     queue behind the node's own requests.
//   - registrar_light (Light): the registration flow of the Grid v4 seed
//     ("Node Registration Process"): ensure the account (create the twin
//     the first time), register or update the node with its farm, twin,
//     resources, location, interfaces and hardware facts, retrying with
//     backoff until it succeeds; then check the account every 30 minutes,
//     update the node's information every 24 hours, report uptime every 40
//     minutes (or when the registrar's next_report_in says), and
//     re-register at once when an address of the management interface
//     changes. Its State is served on the bus.
package registrarlight

import (
	"context"
	"errors"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// GatewayObject is the bus object registrar_gateway serves.
const GatewayObject = "registrar_gateway/registrar@1.0"

// Error codes of the gateway: the client's sentinel errors as they cross
// the bus. Callers branch on them with errors.Is, whether the error came
// over the bus or from a fake in a test.
const (
	// ErrNotFound: the registrar has no such account or node (404).
	ErrNotFound bus.Code = "not_found"
	// ErrConflict: the registrar refused a duplicate (409), e.g. the twin
	// already has a node.
	ErrConflict bus.Code = "conflict"
	// ErrUnauthorized: the registrar refused the signature (401, 403).
	ErrUnauthorized bus.Code = "unauthorized"
	// ErrInvalid: the registrar refused the request as malformed (4xx).
	ErrInvalid bus.Code = "invalid"
	// ErrRateLimited: the registrar kept answering 429.
	ErrRateLimited bus.Code = "rate_limited"
	// ErrRegistrar: the registrar kept failing (5xx) or answered nonsense.
	ErrRegistrar bus.Code = "registrar_error"
	// ErrUnreachable: the registrar did not answer.
	ErrUnreachable bus.Code = "unreachable"
)

// Client is what the gateway needs of the registrar client;
// *client.Client is one.
type Client interface {
	EnsureAccount(ctx context.Context, opts client.AccountOptions) (api.Account, error)
	NodeByTwin(ctx context.Context, twinID uint64) (api.Node, error)
	RegisterNode(ctx context.Context, n api.RegisterNodeRequest) (uint64, error)
	UpdateNode(ctx context.Context, nodeID uint64, n api.RegisterNodeRequest) error
	ReportUptime(ctx context.Context, nodeID uint64, uptime time.Duration) (api.UptimeReply, error)
	ReportStatus(ctx context.Context, nodeID uint64, rep api.NodeStatusReport) error
	ZosVersion(ctx context.Context) (api.ZosVersion, error)
	ReportUsage(ctx context.Context, nodeID uint64, period time.Time, usage []api.Usage) error
}

// Gateway is registrar_gateway: it serves the registrar calls the node
// makes, each signed as the node.
type Gateway struct{ c Client }

// NewGateway returns a Gateway calling the registrar through c, which must
// sign as the node.
func NewGateway(c Client) *Gateway { return &Gateway{c: c} }

// Methods returns the bus methods of GatewayObject.
func (g *Gateway) Methods() bus.Methods {
	return bus.Methods{
		"EnsureAccount": bus.Func0(g.EnsureAccount),
		"NodeByTwin":    bus.Func1(g.NodeByTwin),
		"RegisterNode":  bus.Func1(g.RegisterNode),
		"UpdateNode":    bus.Proc2(g.UpdateNode),
		"ReportUptime":  bus.Func2(g.ReportUptime),
		"ReportStatus":  bus.Proc2(g.ReportStatus),
		"ZosVersion":    bus.Func0(g.ZosVersion),
		"ReportUsage":   bus.Proc3(g.ReportUsage),
	}
}

// EnsureAccount returns the node's account, creating it (the twin) the
// first time.
func (g *Gateway) EnsureAccount(ctx context.Context) (api.Account, error) {
	acc, err := g.c.EnsureAccount(ctx, client.AccountOptions{})
	return acc, coded(err)
}

// NodeByTwin returns the node of a twin; ErrNotFound when it has none.
func (g *Gateway) NodeByTwin(ctx context.Context, twinID uint64) (api.Node, error) {
	n, err := g.c.NodeByTwin(ctx, twinID)
	return n, coded(err)
}

// RegisterNode registers the node and returns its id.
func (g *Gateway) RegisterNode(ctx context.Context, req api.RegisterNodeRequest) (uint64, error) {
	id, err := g.c.RegisterNode(ctx, req)
	return id, coded(err)
}

// UpdateNode replaces the node's registration.
func (g *Gateway) UpdateNode(ctx context.Context, nodeID uint64, req api.RegisterNodeRequest) error {
	return coded(g.c.UpdateNode(ctx, nodeID, req))
}

// ReportUptime reports the node's uptime in seconds.
func (g *Gateway) ReportUptime(ctx context.Context, nodeID, seconds uint64) (api.UptimeReply, error) {
	r, err := g.c.ReportUptime(ctx, nodeID, time.Duration(seconds)*time.Second)
	return r, coded(err)
}

// ReportStatus reports the node's resource usage and health.
func (g *Gateway) ReportStatus(ctx context.Context, nodeID uint64, rep api.NodeStatusReport) error {
	return coded(g.c.ReportStatus(ctx, nodeID, rep))
}

// ZosVersion returns the registrar's approved ZOS version with its
// rollout and serial (the upgrader follows it).
func (g *Gateway) ZosVersion(ctx context.Context) (api.ZosVersion, error) {
	v, err := g.c.ZosVersion(ctx)
	return v, coded(err)
}

// ReportUsage reports what the node's contracts used during the hour
// starting at period (provisiond's reports).
func (g *Gateway) ReportUsage(ctx context.Context, nodeID uint64, period time.Time, usage []api.Usage) error {
	return coded(g.c.ReportUsage(ctx, nodeID, period, usage))
}

// coded gives a client error the bus code of its sentinel, keeping its
// text.
func coded(err error) error {
	if err == nil {
		return nil
	}
	code := bus.CodeError
	switch {
	case errors.Is(err, client.ErrNotFound):
		code = ErrNotFound
	case errors.Is(err, client.ErrConflict):
		code = ErrConflict
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrNoAccount):
		code = ErrUnauthorized
	case errors.Is(err, client.ErrRateLimited):
		code = ErrRateLimited
	case errors.Is(err, client.ErrInvalid):
		code = ErrInvalid
	case errors.Is(err, client.ErrServer), errors.Is(err, client.ErrBadResponse):
		code = ErrRegistrar
	case errors.Is(err, client.ErrUnreachable):
		code = ErrUnreachable
	case errors.Is(err, context.DeadlineExceeded):
		code = bus.CodeDeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = bus.CodeCanceled
	}
	return &bus.Error{Code: code, Message: err.Error()}
}

// GatewayStub calls registrar_gateway over the bus. It is the Registrar
// of registrar_light.
type GatewayStub struct{ c *bus.Client }

// NewGatewayStub returns a stub calling registrar_gateway through c.
func NewGatewayStub(c *bus.Client) GatewayStub { return GatewayStub{c: c} }

// EnsureAccount returns the node's account, creating it the first time.
func (s GatewayStub) EnsureAccount(ctx context.Context) (api.Account, error) {
	return bus.Call[api.Account](ctx, s.c, GatewayObject, "EnsureAccount")
}

// NodeByTwin returns the node of a twin.
func (s GatewayStub) NodeByTwin(ctx context.Context, twinID uint64) (api.Node, error) {
	return bus.Call[api.Node](ctx, s.c, GatewayObject, "NodeByTwin", twinID)
}

// RegisterNode registers the node.
func (s GatewayStub) RegisterNode(ctx context.Context, req api.RegisterNodeRequest) (uint64, error) {
	return bus.Call[uint64](ctx, s.c, GatewayObject, "RegisterNode", req)
}

// UpdateNode replaces the node's registration.
func (s GatewayStub) UpdateNode(ctx context.Context, nodeID uint64, req api.RegisterNodeRequest) error {
	return s.c.Invoke(ctx, GatewayObject, "UpdateNode", nil, nodeID, req)
}

// ReportUptime reports the node's uptime (sent in whole seconds).
func (s GatewayStub) ReportUptime(ctx context.Context, nodeID uint64, uptime time.Duration) (api.UptimeReply, error) {
	secs := max(uint64(uptime/time.Second), 1)
	return bus.Call[api.UptimeReply](ctx, s.c, GatewayObject, "ReportUptime", nodeID, secs)
}

// ReportStatus reports the node's resource usage and health.
func (s GatewayStub) ReportStatus(ctx context.Context, nodeID uint64, rep api.NodeStatusReport) error {
	return s.c.Invoke(ctx, GatewayObject, "ReportStatus", nil, nodeID, rep)
}

// ZosVersion returns the registrar's approved ZOS version.
func (s GatewayStub) ZosVersion(ctx context.Context) (api.ZosVersion, error) {
	return bus.Call[api.ZosVersion](ctx, s.c, GatewayObject, "ZosVersion")
}

// ReportUsage reports what the node's contracts used during the hour
// starting at period (provisiond.UsageReporter).
func (s GatewayStub) ReportUsage(ctx context.Context, nodeID uint64, period time.Time, usage []api.Usage) error {
	return s.c.Invoke(ctx, GatewayObject, "ReportUsage", nil, nodeID, period, usage)
}
