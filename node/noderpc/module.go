package noderpc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/internal/httpserve"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/await"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/noderpc/api"
	rpcclient "github.com/grid4/grid4/node/noderpc/client"
	"github.com/grid4/grid4/node/zosapi"
	regapi "github.com/grid4/grid4/registrar/api"
)

// Module is the module's name in zosd.
const Module = "noderpc"

// Object is the bus object the module serves: the other modules' way to
// call peers.
const Object = "noderpc/peers@1.0"

// DefaultListen is where the module listens unless configured: loopback,
// any port (zos-api-light forwards the API's routes to it).
const DefaultListen = "127.0.0.1:0"

// Registration tells the module who the node is (registrar_light, adapted
// by zosd); Run waits while it fails.
type Registration interface {
	Self(ctx context.Context) (Self, error)
}

// RegistrarClient is what the module reads of the registrar: node
// records and twins' accounts (the registrar's client.Client).
type RegistrarClient interface {
	Registrar
	zosapi.AccountLookup
}

// ModuleConfig is what the module runs with.
type ModuleConfig struct {
	// Bus is the node's bus: Object is served there, identityd signs
	// there.
	Bus *bus.Client
	// Registrar is read for node records and keys. Required.
	Registrar RegistrarClient
	// Registration gives the node's ids. Required.
	Registration Registration
	// Power answers farm.v1.status (nil: unavailable).
	Power Power
	// Networks answers network.v1.join and leave (nil: unavailable).
	Networks Networks
	// Listen is the API's address (DefaultListen).
	Listen string
	// Clock paces the waits for identityd and the registration.
	Clock clock.Clock
	// Logger receives the module's records.
	Logger *slog.Logger
}

// Run is the module: once identityd answers and the node is registered,
// it serves the API on Listen and Object on the bus until ctx ends.
func Run(ctx context.Context, m ModuleConfig) error {
	if m.Registrar == nil || m.Registration == nil {
		return errors.New("noderpc: ModuleConfig.Registrar and Registration are required")
	}
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.Clock == nil {
		m.Clock = clock.Real{}
	}
	key, ok := await.Answer(ctx, m.Clock, m.Logger, "identityd", func(ctx context.Context) (*identityd.RemoteKey, error) {
		return identityd.NewRemoteKey(ctx, identityd.NewStub(m.Bus))
	})
	if !ok || ctx.Err() != nil {
		return nil
	}
	self, ok := await.Answer(ctx, m.Clock, m.Logger, "the node's registration", m.Registration.Self)
	if !ok || ctx.Err() != nil {
		return nil
	}
	c, err := rpcclient.New(key, self.TwinID, nil)
	if err != nil {
		return err
	}
	peers := NewPeers(m.Registrar, c, PeersConfig{})
	srv, err := NewServer(ServerConfig{
		Self: self, Callers: peers, Keys: zosapi.NewTwinKeyCache(m.Registrar, zosapi.KeyCacheConfig{}),
		Power: m.Power, Networks: m.Networks, Logger: m.Logger.With("api", "noderpc"),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cmp.Or(m.Listen, DefaultListen))
	if err != nil {
		return fmt.Errorf("noderpc: %w", err)
	}
	addr := ln.Addr().String()
	m.Logger.Info("node-to-node API listening", "addr", addr, "node_id", self.NodeID, "farm_id", self.FarmID)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserve.ServeNodeAPI(ctx, srv.Handler(), ln, m.Logger, "noderpc") })
	methods := Methods(peers, addr)
	methods["Probe"] = bus.Func0(NewProber(peers, self, 0).Last)
	methods["GoingDown"] = bus.Func0(func(ctx context.Context) (int, error) { return goingDown(ctx, peers, self) })
	g.Go(func() error { return bus.Serve(ctx, m.Bus, Object, methods) })
	return g.Wait()
}

// Joined is a peer's answer to network.v1.join, with the peer's address
// (NodeHost) where its part listens.
type Joined struct {
	Part api.NetworkPart `json:"part"`
	Host netip.Addr      `json:"host"`
}

// Methods returns the bus methods of Object: Addr (where the API
// listens, for zos-api-light's forwarding), and calls to a peer by node
// id: Ping, FarmStatus, JoinNetwork, LeaveNetwork. Run adds Probe
// (Prober.Probe, for the status report).
func Methods(p *Peers, addr string) bus.Methods {
	return bus.Methods{
		"Addr": bus.Func0(func(context.Context) (string, error) { return addr, nil }),
		"Ping": bus.Func1(func(ctx context.Context, node uint64) (api.Pong, error) {
			var out api.Pong
			err := p.Call(ctx, node, api.MethodPing, nil, &out)
			return out, err
		}),
		"FarmStatus": bus.Func1(func(ctx context.Context, node uint64) (api.FarmStatus, error) {
			var out api.FarmStatus
			err := p.Call(ctx, node, api.MethodFarmStatus, nil, &out)
			return out, err
		}),
		"JoinNetwork": bus.Func2(func(ctx context.Context, node uint64, req api.NetworkJoin) (Joined, error) {
			var out Joined
			if err := p.Call(ctx, node, api.MethodNetworkJoin, req, &out.Part); err != nil {
				return Joined{}, err
			}
			n, err := p.Node(ctx, node)
			if err != nil {
				return Joined{}, err
			}
			out.Host, err = NodeHost(n)
			return out, err
		}),
		"LeaveNetwork": bus.Proc2(func(ctx context.Context, node uint64, req api.NetworkLeave) error {
			return p.Call(ctx, node, api.MethodNetworkLeave, req, nil)
		}),
	}
}

// goingDown tells every other node of self's farm that self powers off
// (farm.v1.going_down), in parallel, and returns how many took it; an
// error only when some node could not be told and none was.
func goingDown(ctx context.Context, p *Peers, self Self) (int, error) {
	nodes, err := p.Farm(ctx, self.FarmID)
	if err != nil {
		return 0, err
	}
	var (
		mu   sync.Mutex
		told int
		errs []error
		wg   sync.WaitGroup
	)
	for _, n := range nodes {
		if n.NodeID == self.NodeID {
			continue
		}
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
			defer cancel()
			err := p.Call(cctx, n.NodeID, api.MethodFarmGoingDown, nil, nil)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			} else {
				told++
			}
		})
	}
	wg.Wait()
	if told == 0 && len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	return told, nil
}

// Stub calls the module over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling the module through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Probe says which of a few nodes of the farm answered the last round of
// pings, and starts the next round (Prober.Last).
func (s Stub) Probe(ctx context.Context) (regapi.PeerReachability, error) {
	return bus.Call[regapi.PeerReachability](ctx, s.c, Object, "Probe")
}

// GoingDown tells the other nodes of the farm this node powers off; it
// returns how many were told.
func (s Stub) GoingDown(ctx context.Context) (int, error) {
	return bus.Call[int](ctx, s.c, Object, "GoingDown")
}

// Addr returns where the API listens.
func (s Stub) Addr(ctx context.Context) (string, error) {
	return bus.Call[string](ctx, s.c, Object, "Addr")
}

// Ping pings node nodeID.
func (s Stub) Ping(ctx context.Context, nodeID uint64) (api.Pong, error) {
	return bus.Call[api.Pong](ctx, s.c, Object, "Ping", nodeID)
}

// FarmStatus asks node nodeID, of this node's farm, for its status.
func (s Stub) FarmStatus(ctx context.Context, nodeID uint64) (api.FarmStatus, error) {
	return bus.Call[api.FarmStatus](ctx, s.c, Object, "FarmStatus", nodeID)
}

// JoinNetwork gives node nodeID this node's part of a network and returns
// its part and its address (the network-light manager's Peers).
func (s Stub) JoinNetwork(ctx context.Context, nodeID uint64, req api.NetworkJoin) (api.NetworkPart, netip.Addr, error) {
	j, err := bus.Call[Joined](ctx, s.c, Object, "JoinNetwork", nodeID, req)
	return j.Part, j.Host, err
}

// LeaveNetwork tells node nodeID this node's part of a network is gone.
func (s Stub) LeaveNetwork(ctx context.Context, nodeID uint64, req api.NetworkLeave) error {
	return s.c.Invoke(ctx, Object, "LeaveNetwork", nil, nodeID, req)
}
