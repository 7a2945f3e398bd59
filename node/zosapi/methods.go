package zosapi

import (
	"context"
	"encoding/json"
	"net"
	"runtime"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/zosapi/api"
)

// InterfaceLister lists the node's network interfaces.
type InterfaceLister interface {
	Interfaces(ctx context.Context) ([]api.Interface, error)
}

// SystemInterfaces lists the interfaces of the host (net.Interfaces).
type SystemInterfaces struct{}

// Interfaces implements InterfaceLister.
func (SystemInterfaces) Interfaces(context.Context) ([]api.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]api.Interface, 0, len(ifs))
	for _, i := range ifs {
		x := api.Interface{Name: i.Name, MAC: i.HardwareAddr.String(), Up: i.Flags&net.FlagUp != 0, MTU: i.MTU, IPs: []string{}}
		addrs, err := i.Addrs()
		if err != nil {
			return nil, err
		}
		for _, a := range addrs {
			x.IPs = append(x.IPs, a.String())
		}
		out = append(out, x)
	}
	return out, nil
}

// TypesLister is implemented by engines that say which workload types
// they run (node.version reports them).
type TypesLister interface {
	WorkloadTypes() []gridtypes.WorkloadType
}

func (s *Server) methodTable() map[string]method {
	e := s.c.Engine
	deployment := func(f func(context.Context, uint64, gridtypes.Deployment) (gridtypes.Record, error)) method {
		return func(ctx context.Context, caller uint64, params json.RawMessage) (any, error) {
			var p api.DeploymentParams
			if err := decodeParams(params, &p); err != nil {
				return nil, err
			}
			if len(p.Deployment) == 0 {
				return nil, invalidParams(`params need "deployment"`)
			}
			d, err := gridtypes.DecodeDeployment(p.Deployment)
			if err != nil {
				return nil, err
			}
			return f(ctx, caller, d)
		}
	}
	byID := func(f func(context.Context, uint64, uint64) (any, error)) method {
		return func(ctx context.Context, caller uint64, params json.RawMessage) (any, error) {
			var p api.IDParams
			if err := decodeParams(params, &p); err != nil {
				return nil, err
			}
			if p.ID == 0 {
				return nil, invalidParams(`params need "id", a deployment id`)
			}
			return f(ctx, caller, p.ID)
		}
	}
	record := func(f func(context.Context, uint64, uint64) (gridtypes.Record, error)) method {
		return byID(func(ctx context.Context, caller, id uint64) (any, error) { return f(ctx, caller, id) })
	}
	noParams := func(f func(context.Context, uint64) (any, error)) method {
		return func(ctx context.Context, caller uint64, params json.RawMessage) (any, error) {
			if err := decodeParams(params, &struct{}{}); err != nil {
				return nil, err
			}
			return f(ctx, caller)
		}
	}
	return map[string]method{
		api.MethodDeploy:  deployment(e.Deploy),
		api.MethodUpdate:  deployment(e.Update),
		api.MethodDelete:  record(e.Delete),
		api.MethodGet:     record(e.Get),
		api.MethodPause:   record(e.Pause),
		api.MethodResume:  record(e.Resume),
		api.MethodChanges: byID(func(ctx context.Context, caller, id uint64) (any, error) { return e.Changes(ctx, caller, id) }),
		api.MethodList:    noParams(func(ctx context.Context, caller uint64) (any, error) { return e.List(ctx, caller) }),
		api.MethodCapacity: noParams(func(ctx context.Context, _ uint64) (any, error) {
			return e.Capacity(ctx)
		}),
		api.MethodStatistics: noParams(func(ctx context.Context, _ uint64) (any, error) { return e.Statistics(ctx) }),
		api.MethodVersion: noParams(func(context.Context, uint64) (any, error) {
			v := api.NodeVersion{Version: s.c.NodeVersion, API: api.APIVersion, Go: runtime.Version(), NodeID: s.c.NodeID, TwinID: s.c.TwinID, Types: gridtypes.Types()}
			if tl, ok := e.(TypesLister); ok {
				v.Types = tl.WorkloadTypes()
			}
			return v, nil
		}),
		api.MethodInterfaces: noParams(func(ctx context.Context, _ uint64) (any, error) { return s.c.Interfaces.Interfaces(ctx) }),
		api.MethodDiscover:   noParams(func(context.Context, uint64) (any, error) { return json.RawMessage(openRPCDocument), nil }),
	}
}
