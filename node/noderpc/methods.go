package noderpc

import (
	"context"
	"encoding/json"
	"maps"

	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/node/noderpc/api"
)

// methodTable is the API: every version of every method this node
// serves. A method whose parameters or result change incompatibly gets a
// new version (node.v2.ping) and the old one stays for a release.
func (s *Server) methodTable() map[string]jsonrpc.Method {
	m := map[string]jsonrpc.Method{
		api.MethodPing: noParams(func(ctx context.Context) (any, error) {
			self := s.c.Self
			return api.Pong{NodeID: self.NodeID, FarmID: self.FarmID, TwinID: self.TwinID, Version: self.Version,
				API: api.APIVersion, Time: s.c.Now().UTC(), Caller: callerNode(ctx).NodeID}, nil
		}),
		api.MethodFarmStatus: s.farm(noParams(func(ctx context.Context) (any, error) {
			if s.c.Power == nil {
				return nil, jsonrpc.Errorf(api.CodeUnavailable, "powerd is not available")
			}
			st, err := s.c.Power.Status(ctx)
			if err != nil {
				return nil, jsonrpc.Errorf(api.CodeUnavailable, "powerd: %v", err)
			}
			return api.FarmStatus{NodeID: s.c.Self.NodeID, UptimeSeconds: st.Uptime, Healthy: st.Healthy, Reasons: st.Reasons}, nil
		})),
		api.MethodFarmGoingDown: s.farm(noParams(func(ctx context.Context) (any, error) {
			if s.c.Power == nil {
				return nil, jsonrpc.Errorf(api.CodeUnavailable, "powerd is not available")
			}
			caller := callerNode(ctx)
			var macs []string
			for _, i := range caller.Interfaces {
				if i.Mac != "" {
					macs = append(macs, i.Mac)
				}
			}
			if err := s.c.Power.PeerDown(ctx, caller.NodeID, macs); err != nil {
				return nil, jsonrpc.Errorf(api.CodeUnavailable, "powerd: %v", err)
			}
			return nil, nil
		})),
		api.MethodDiscover: noParams(func(context.Context) (any, error) { return json.RawMessage(openRPCDocument), nil }),
	}
	maps.Copy(m, s.networkMethods())
	return m
}

// farm restricts m to the nodes of this node's farm.
func (s *Server) farm(m jsonrpc.Method) jsonrpc.Method {
	return func(ctx context.Context, params json.RawMessage) (any, error) {
		if c := callerNode(ctx); c.FarmID != s.c.Self.FarmID {
			return nil, jsonrpc.Errorf(api.CodeForbidden, "only the nodes of farm %d may call this; node %d is in farm %d", s.c.Self.FarmID, c.NodeID, c.FarmID)
		}
		return m(ctx, params)
	}
}

// noParams is a method without parameters.
func noParams(f func(context.Context) (any, error)) jsonrpc.Method {
	return func(ctx context.Context, params json.RawMessage) (any, error) {
		if err := jsonrpc.DecodeParams(params, &struct{}{}); err != nil {
			return nil, err
		}
		return f(ctx)
	}
}
