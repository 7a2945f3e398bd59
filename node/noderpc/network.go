package noderpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"net/url"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/node/noderpc/api"
	regapi "github.com/grid4/grid4/registrar/api"
)

// Networks is what network.v1.join and network.v1.leave reach: the
// provisioning engine, which finds the network-light workload a call is
// for (provisiond's stub). from is the calling node, host its address.
type Networks interface {
	JoinNetwork(ctx context.Context, from uint64, host netip.Addr, req api.NetworkJoin) (api.NetworkPart, error)
	LeaveNetwork(ctx context.Context, from uint64, req api.NetworkLeave) error
}

// NodeHost is a node's address as its registrar record publishes it: the
// host of its first API endpoint that is an IP address. Networks across
// nodes reach a node's WireGuard port there.
func NodeHost(n regapi.Node) (netip.Addr, error) {
	for _, ep := range n.APIEndpoints {
		u, err := url.Parse(ep)
		if err != nil {
			continue
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			return a.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("node %d publishes no API endpoint with an IP address", n.NodeID)
}

// networkMethods are the methods of networks across nodes.
func (s *Server) networkMethods() map[string]jsonrpc.Method {
	return map[string]jsonrpc.Method{
		api.MethodNetworkJoin: func(ctx context.Context, params json.RawMessage) (any, error) {
			var req api.NetworkJoin
			if err := jsonrpc.DecodeParams(params, &req); err != nil {
				return nil, err
			}
			if err := checkNetwork(req.TwinID, req.Network, req.Range); err != nil {
				return nil, err
			}
			if s.c.Networks == nil {
				return nil, jsonrpc.Errorf(api.CodeUnavailable, "this node does not join networks across nodes")
			}
			caller := callerNode(ctx)
			host, err := NodeHost(caller)
			if err != nil {
				return nil, jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "%v", err)
			}
			return s.c.Networks.JoinNetwork(ctx, caller.NodeID, host, req)
		},
		api.MethodNetworkLeave: func(ctx context.Context, params json.RawMessage) (any, error) {
			var req api.NetworkLeave
			if err := jsonrpc.DecodeParams(params, &req); err != nil {
				return nil, err
			}
			if err := checkNetwork(req.TwinID, req.Network, req.Range); err != nil {
				return nil, err
			}
			if s.c.Networks == nil {
				return nil, jsonrpc.Errorf(api.CodeUnavailable, "this node does not join networks across nodes")
			}
			return nil, s.c.Networks.LeaveNetwork(ctx, callerNode(ctx).NodeID, req)
		},
	}
}

// checkNetwork refuses a call that does not name a network: without
// it a join would be "not found" and a leave a silent no-op, hiding the
// caller's mistake.
func checkNetwork(twin uint64, name, rng string) error {
	if twin == 0 || name == "" {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "params need \"twin_id\", \"network\" and \"range\"")
	}
	if _, err := netip.ParsePrefix(rng); err != nil {
		return jsonrpc.Errorf(jsonrpc.CodeInvalidParams, "range %q is not a CIDR prefix", rng)
	}
	return nil
}

// errorOf maps the engine's refusals to the API's codes (the details of
// anything else stay in the node's log).
func errorOf(err error) *jsonrpc.Error {
	code := 0
	switch {
	case errors.Is(err, gridtypes.ErrNotFound):
		code = api.CodeNotFound
	case errors.Is(err, gridtypes.ErrForbidden):
		code = api.CodeForbidden
	case errors.Is(err, gridtypes.ErrConflict):
		code = api.CodeConflict
	case errors.Is(err, gridtypes.ErrInvalid):
		code = jsonrpc.CodeInvalidParams
	default:
		return nil
	}
	return &jsonrpc.Error{Code: code, Message: err.Error()}
}
