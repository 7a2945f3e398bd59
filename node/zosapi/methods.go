package zosapi

import (
	"context"
	"encoding/json"
	"net"
	"runtime"

	"github.com/grid4/grid4/gridtypes"
)

// APIVersion is the version of the method set described by the OpenRPC
// document.
const APIVersion = "1.0.0"

// Method names.
const (
	MethodDeploy     = "deployment.deploy"
	MethodUpdate     = "deployment.update"
	MethodDelete     = "deployment.delete"
	MethodGet        = "deployment.get"
	MethodList       = "deployment.list"
	MethodChanges    = "deployment.changes"
	MethodPause      = "deployment.pause"
	MethodResume     = "deployment.resume"
	MethodCapacity   = "node.capacity"
	MethodStatistics = "node.statistics"
	MethodVersion    = "node.version"
	MethodInterfaces = "node.interfaces"
	MethodDiscover   = "rpc.discover"
)

// DeploymentParams are the parameters of deployment.deploy and
// deployment.update.
type DeploymentParams struct {
	// Deployment is the signed deployment document.
	Deployment json.RawMessage `json:"deployment"`
}

// IDParams are the parameters of the calls on one deployment.
type IDParams struct {
	// ID is the deployment's id.
	ID uint64 `json:"id"`
}

// NodeVersion is the result of node.version.
type NodeVersion struct {
	// Version is the node software's version.
	Version string `json:"version"`
	// API is APIVersion.
	API string `json:"api"`
	// Go is the Go version the node was built with.
	Go string `json:"go"`
	// NodeID and TwinID identify the node (0 when not registered).
	NodeID uint64 `json:"node_id"`
	TwinID uint64 `json:"twin_id"`
	// Types are the workload types this node deploys.
	Types []gridtypes.WorkloadType `json:"types"`
}

// Interface is a network interface of the node (node.interfaces).
type Interface struct {
	// Name is the interface's name (eth0).
	Name string `json:"name"`
	// MAC is its hardware address ("" for none).
	MAC string `json:"mac"`
	// IPs are its addresses with prefix length.
	IPs []string `json:"ips"`
	// Up is whether it is administratively up.
	Up bool `json:"up"`
	// MTU is its MTU.
	MTU int `json:"mtu"`
}

// InterfaceLister lists the node's network interfaces.
type InterfaceLister interface {
	Interfaces(ctx context.Context) ([]Interface, error)
}

// SystemInterfaces lists the interfaces of the host (net.Interfaces).
type SystemInterfaces struct{}

// Interfaces implements InterfaceLister.
func (SystemInterfaces) Interfaces(context.Context) ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]Interface, 0, len(ifs))
	for _, i := range ifs {
		x := Interface{Name: i.Name, MAC: i.HardwareAddr.String(), Up: i.Flags&net.FlagUp != 0, MTU: i.MTU, IPs: []string{}}
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
			var p DeploymentParams
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
			var p IDParams
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
		MethodDeploy:  deployment(e.Deploy),
		MethodUpdate:  deployment(e.Update),
		MethodDelete:  record(e.Delete),
		MethodGet:     record(e.Get),
		MethodPause:   record(e.Pause),
		MethodResume:  record(e.Resume),
		MethodChanges: byID(func(ctx context.Context, caller, id uint64) (any, error) { return e.Changes(ctx, caller, id) }),
		MethodList:    noParams(func(ctx context.Context, caller uint64) (any, error) { return e.List(ctx, caller) }),
		MethodCapacity: noParams(func(ctx context.Context, _ uint64) (any, error) {
			return e.Capacity(ctx)
		}),
		MethodStatistics: noParams(func(ctx context.Context, _ uint64) (any, error) { return e.Statistics(ctx) }),
		MethodVersion: noParams(func(context.Context, uint64) (any, error) {
			v := NodeVersion{Version: s.c.NodeVersion, API: APIVersion, Go: runtime.Version(), NodeID: s.c.NodeID, TwinID: s.c.TwinID, Types: gridtypes.Types()}
			if tl, ok := e.(TypesLister); ok {
				v.Types = tl.WorkloadTypes()
			}
			return v, nil
		}),
		MethodInterfaces: noParams(func(ctx context.Context, _ uint64) (any, error) { return s.c.Interfaces.Interfaces(ctx) }),
		MethodDiscover:   noParams(func(context.Context, uint64) (any, error) { return json.RawMessage(openRPCDocument), nil }),
	}
}
