package registrarlight

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/await"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/location"
	"github.com/grid4/grid4/node/noded"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/registrar/client"
)

// The names of the package's two modules in zosd.
const (
	GatewayModule = "registrar_gateway"
	LightModule   = "registrar_light"
)

// GatewayConfig is what registrar_gateway runs with.
type GatewayConfig struct {
	// Bus is the node's bus: GatewayObject is served there, and identityd
	// is reached there for signatures.
	Bus *bus.Client
	// Registrar is the registrar's base URL.
	Registrar string
	// Legacy signs with X-Auth instead of signed requests v2 (for a
	// registrar that only knows X-Auth).
	Legacy bool
	// Clock paces the wait for identityd.
	Clock clock.Clock
	// Logger receives the module's records.
	Logger *slog.Logger
}

// gatewayHTTPTimeout bounds one HTTP attempt to the registrar.
const gatewayHTTPTimeout = 30 * time.Second

// RunGateway is registrar_gateway. It signs through identityd, so it first
// waits for identityd to answer; then it serves GatewayObject until ctx
// ends. A registrar URL the client refuses is fatal (supervisor.ErrFatal).
func RunGateway(ctx context.Context, m GatewayConfig) error {
	stub := identityd.NewStub(m.Bus)
	key, ok := await.Answer(ctx, m.Clock, m.Logger, "identityd", func(ctx context.Context) (*identityd.RemoteKey, error) {
		return identityd.NewRemoteKey(ctx, stub)
	})
	if !ok {
		return nil
	}
	scheme := client.AuthV2
	if m.Legacy {
		scheme = client.AuthLegacy
	}
	c, err := client.New(m.Registrar,
		client.WithIdentity(key, 0),
		client.WithAuthScheme(scheme),
		client.WithHTTPClient(&http.Client{Timeout: gatewayHTTPTimeout}),
		client.WithUserAgent("zosd"),
	)
	if err != nil {
		return fmt.Errorf("%w: %w", supervisor.ErrFatal, err)
	}
	return bus.Serve(ctx, m.Bus, GatewayObject, NewGateway(c).Methods())
}

// LightConfig is what registrar_light runs with.
type LightConfig struct {
	// Bus is the node's bus: LightObject is served there and every other
	// module is reached there.
	Bus *bus.Client
	// Light holds the schedule and the fallback version.
	Light Config
	// Version gives the running version (the upgrader's current
	// generation); nil: Light.ZosVersion.
	Version VersionSource
	// Provision and Modules give what the status report sends with each
	// uptime report (provisiond's stub and zosd's supervisor stub);
	// Provision nil: no status reports.
	Provision ProvisionSource
	Modules   ModuleSource
	// Peers probes other nodes of the farm for the status report (the
	// noderpc module's stub); nil: none.
	Peers PeerSource
	// Clock drives every timer.
	Clock clock.Clock
	// Logger receives the module's records.
	Logger *slog.Logger
}

// RunLight is registrar_light: the registration flow, with the other
// modules as its collaborators over the bus, until ctx ends.
func RunLight(ctx context.Context, m LightConfig) error {
	stream, err := noded.NewAddressStream(m.Bus)
	if err != nil {
		return err
	}
	l, err := NewLight(m.Light, Deps{
		Version:   m.Version,
		Provision: m.Provision,
		Modules:   m.Modules,
		Peers:     m.Peers,
		Registrar: NewGatewayStub(m.Bus),
		Facts:     noded.NewStub(m.Bus),
		Storage:   storaged.NewStub(m.Bus),
		Location:  location.NewStub(m.Bus),
		Farm:      identityd.NewStub(m.Bus),
		Power:     powerd.NewStub(m.Bus),
		Addresses: noded.Changes(ctx, stream, m.Logger),
		Clock:     m.Clock,
		Logger:    m.Logger,
	})
	if err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return bus.Serve(ctx, m.Bus, LightObject, l.Methods()) })
	g.Go(func() error { return l.Run(ctx) })
	return g.Wait()
}
