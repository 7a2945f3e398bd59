package provisiond

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/httpserve"
	"github.com/grid4/grid4/node/internal/await"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/zosapi"
)

// Module is provisiond's name in zosd.
const Module = "provisiond"

// Node is who the engine works for: the node's ids and the capacity it
// registered (what it measured, or the farmer's override), which is what
// it offers to workloads.
type Node struct {
	NodeID, TwinID uint64
	Resources      gridtypes.Resources
}

// Registration tells the module who the node is: registrar_light does
// (zosd adapts its stub). Run waits while Node fails (the node is not
// registered yet).
type Registration interface {
	Node(ctx context.Context) (Node, error)
}

// ModuleConfig is what provisiond runs with.
type ModuleConfig struct {
	// Bus is the node's bus, where Object is served (nil: not served;
	// the development program runs without one).
	Bus *bus.Client
	// Dir holds the engine's database.
	Dir string
	// Managers are the type managers, one per workload type.
	Managers map[gridtypes.WorkloadType]Manager
	// Registration gives the node's ids and capacity; Run waits until the
	// node is registered.
	Registration Registration
	// PublicIPv4 is the size of the node's public IPv4 pool, added to the
	// registered capacity.
	PublicIPv4 uint64
	// Keys looks up twins' keys (signatures of deployments and API calls).
	Keys zosapi.TwinKeys
	// Listen is zos-api-light's address (":2021").
	Listen string
	// Version is what node.version reports.
	Version string
	// NodeRPC, when set, is where the node-to-node API's routes on the
	// same listener are forwarded (the noderpc module).
	NodeRPC NodeRPC
	// Contracts, when set, makes the node enforce contracts: a deployment
	// runs only under a contract that allows it, and the node follows its
	// contracts and reports their usage (docs/contracts.md). Nil: any
	// twin may deploy (--contracts off).
	Contracts *ContractSetup
	// Ready, when set, is called with the API's address once it listens.
	Ready func(addr string)
	// Clock paces the wait for the registration.
	Clock clock.Clock
	// Logger receives the module's records.
	Logger *slog.Logger
}

// ContractSetup is where a node that enforces contracts reads them and
// reports their usage.
type ContractSetup struct {
	// Source reads contracts (the registrar's public reads).
	Source ContractSource
	// Usage reports usage, signed as the node.
	Usage UsageReporter
	// Poll is the poll interval (DefaultContractPoll).
	Poll time.Duration
}

// DefaultListen is where zos-api-light listens unless configured.
const DefaultListen = ":2021"

// Run is provisiond as a module: once the node is registered, it opens
// the engine (which restores every deployed workload first), serves
// zos-api-light on Listen and the engine on the bus, and runs the queue
// until ctx ends.
func Run(ctx context.Context, m ModuleConfig) error {
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	if m.Clock == nil {
		m.Clock = clock.Real{}
	}
	node, err := WaitRegistered(ctx, m.Registration, m.Clock, m.Logger)
	if err != nil || ctx.Err() != nil {
		return err
	}
	capacity := &registeredCapacity{reg: m.Registration, ipv4: m.PublicIPv4, last: node.Resources, log: m.Logger}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := Config{Dir: m.Dir, Managers: m.Managers, Keys: m.Keys, Capacity: capacity, Logger: m.Logger}
	var contracts *Contracts
	if m.Contracts != nil {
		contracts, err = OpenContracts(ContractsConfig{
			Dir: m.Dir, NodeID: node.NodeID, Source: m.Contracts.Source, Usage: m.Contracts.Usage,
			Poll: m.Contracts.Poll, Clock: m.Clock, Registry: metrics, Logger: m.Logger,
		})
		if err != nil {
			return err
		}
		defer contracts.Close()
		cfg.Admission = contracts
	}
	engine, err := Open(cfg)
	if err != nil {
		return err
	}
	defer engine.Close()
	// Before the API answers: a workload must not read ok while the node
	// is still bringing it back after a restart.
	if err := engine.Restore(ctx); err != nil || ctx.Err() != nil {
		return err
	}

	api, err := zosapi.New(zosapi.Config{
		Engine: engine, Keys: m.Keys, NodeVersion: m.Version, NodeID: node.NodeID, TwinID: node.TwinID,
		// X-Auth covers no body: at least refuse the same request twice.
		Auth:     auth.Config{LegacyReplayGuard: true},
		Registry: metrics, Logger: m.Logger.With("api", "zos-api-light"),
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cmp.Or(m.Listen, DefaultListen))
	if err != nil {
		return fmt.Errorf("zos-api-light: %w", err)
	}
	handler := api.Handler()
	if m.NodeRPC != nil {
		handler = withNodeRPC(handler, m.NodeRPC, m.Logger)
	}
	m.Logger.Info("zos-api-light listening", "addr", ln.Addr().String(), "node_id", node.NodeID, "twin_id", node.TwinID,
		"types", engine.WorkloadTypes(), "contracts", contracts != nil)
	if m.Ready != nil {
		m.Ready(ln.Addr().String())
	}
	return serveEngine(ctx, engine, contracts, handler, ln, m.Bus, m.Logger)
}

// serveEngine runs the engine, the contracts' loop (when the node
// enforces contracts), the HTTP server and (with a bus) the engine's bus
// object until ctx ends or one of them fails.
func serveEngine(ctx context.Context, engine *Engine, contracts *Contracts, h http.Handler, ln net.Listener, b *bus.Client, log *slog.Logger) error {
	g, ctx := errgroup.WithContext(ctx)
	// The engine stops between operations (or interrupts the running one,
	// which the next start resumes).
	g.Go(func() error { return engine.Run(ctx) })
	if contracts != nil {
		g.Go(func() error { return contracts.Run(ctx, engine) })
	}
	g.Go(func() error { return httpserve.ServeNodeAPI(ctx, h, ln, log, "zos-api-light") })
	if b != nil {
		methods := engine.Methods()
		addr := ln.Addr().String()
		methods["API"] = bus.Func0(func(context.Context) (string, error) { return addr, nil })
		g.Go(func() error { return bus.Serve(ctx, b, Object, methods) })
	}
	err := g.Wait()
	log.Info("stopped")
	return err
}

// WaitRegistered asks reg until the node has its ids; when ctx ends
// first it returns the zero Node and no error.
func WaitRegistered(ctx context.Context, reg Registration, c clock.Clock, log *slog.Logger) (Node, error) {
	n, _ := await.Answer(ctx, c, log, "the node's registration", reg.Node)
	return n, nil
}

// registeredCapacity is the capacity the node registered plus its public
// IPv4 pool. It follows the registration (the farmer may change the
// override, the daily update may measure more disks) and keeps the last
// known figures when the registration cannot be read.
type registeredCapacity struct {
	reg  Registration
	ipv4 uint64
	log  *slog.Logger

	mu   sync.Mutex
	last gridtypes.Resources
}

// Total implements CapacityProvider.
func (c *registeredCapacity) Total(ctx context.Context) (gridtypes.Resources, error) {
	n, err := c.reg.Node(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.log.Warn("cannot read the registered capacity; using the last known", "err", err)
	} else {
		c.last = n.Resources
	}
	r := c.last
	r.IPv4 = c.ipv4
	return r, nil
}
