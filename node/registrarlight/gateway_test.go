package registrarlight

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// gatewayOverBus serves identityd and registrar_gateway (for the
// registrar at url) on one bus and returns a stub of the gateway and the
// node's identity.
func gatewayOverBus(t *testing.T, url string, scheme client.AuthScheme) (GatewayStub, identityd.Result) {
	t.Helper()
	res, err := identityd.Open(identityd.Config{Primary: filepath.Join(t.TempDir(), "identity.seed")})
	if err != nil {
		t.Fatal(err)
	}
	b := bustest.New(t)
	m := identityd.NewManager(res, 1, "")
	bustest.Serve(t, b, identityd.Object, m.Methods())
	bustest.Serve(t, b, identityd.SignerObject, m.SignerMethods())
	key, err := identityd.NewRemoteKey(context.Background(), identityd.NewStub(b))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(url, client.WithIdentity(key, 0), client.WithAuthScheme(scheme),
		client.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}),
		client.WithRetry(client.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	bustest.Serve(t, b, GatewayObject, NewGateway(c).Methods())
	return NewGatewayStub(b), res
}

func nodeRequest(farm uint64, ips ...string) api.RegisterNodeRequest {
	return api.RegisterNodeRequest{
		FarmID:       farm,
		Resources:    api.Resources{CRU: 4, MRU: 8 << 30, SRU: 100 << 30},
		Interfaces:   []api.Interface{{Name: "eth0", Mac: "02:00:00:00:00:01", IPs: ips}},
		SerialNumber: "S1",
	}
}

// TestGatewayAgainstRegistrar: every gateway call against a real
// registrar, signed through identityd over the bus, with the registrar's
// refusals crossing the bus as codes.
func TestGatewayAgainstRegistrar(t *testing.T) {
	for _, scheme := range []client.AuthScheme{client.AuthV2, client.AuthLegacy} {
		t.Run(scheme.String(), func(t *testing.T) {
			reg := regtest.Start(t, 0)
			farm := reg.Farm(t)
			gw, res := gatewayOverBus(t, reg.URL, scheme)
			ctx := context.Background()

			acc, err := gw.EnsureAccount(ctx)
			if err != nil || acc.TwinID == 0 {
				t.Fatalf("EnsureAccount: %+v %v", acc, err)
			}
			if again, err := gw.EnsureAccount(ctx); err != nil || again.TwinID != acc.TwinID {
				t.Errorf("EnsureAccount again: %+v %v", again, err)
			}
			if acc.PublicKey != base64.StdEncoding.EncodeToString(res.Key.Public().Key) {
				t.Errorf("account %+v is not the node key's", acc)
			}
			_, err = gw.NodeByTwin(ctx, acc.TwinID)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("NodeByTwin before registration: %v", err)
			}
			id, err := gw.RegisterNode(ctx, nodeRequest(farm, "10.0.0.5"))
			if err != nil || id == 0 {
				t.Fatalf("RegisterNode: %d %v", id, err)
			}
			if _, err := gw.RegisterNode(ctx, nodeRequest(farm)); !errors.Is(err, ErrConflict) {
				t.Errorf("RegisterNode twice: %v", err)
			}
			if err := gw.UpdateNode(ctx, id, nodeRequest(farm, "10.0.0.6")); err != nil {
				t.Fatalf("UpdateNode: %v", err)
			}
			n, err := gw.NodeByTwin(ctx, acc.TwinID)
			if err != nil || n.NodeID != id || n.FarmID != farm || n.Interfaces[0].IPs[0] != "10.0.0.6" {
				t.Errorf("NodeByTwin: %+v %v", n, err)
			}
			if err := gw.UpdateNode(ctx, id, nodeRequest(farm+100)); !errors.Is(err, ErrInvalid) {
				t.Errorf("UpdateNode into a missing farm: %v", err)
			}
			reply, err := gw.ReportUptime(ctx, id, 90*time.Second)
			if err != nil || reply.NextReportIn <= 0 {
				t.Fatalf("ReportUptime: %+v %v", reply, err)
			}
			rep := api.NodeStatusReport{Healthy: true, Total: api.Capacity{CRU: 4, MRU: 8 << 30}, Used: api.Capacity{CRU: 1}}
			if err := gw.ReportStatus(ctx, id, rep); err != nil {
				t.Fatalf("ReportStatus: %v", err)
			}
			if st, err := reg.Client(t).NodeStatus(ctx, id, 0); err != nil || st.Latest == nil || st.Latest.Free.CRU != 3 || !st.Latest.Healthy {
				t.Errorf("registrar's status: %+v %v", st, err)
			}
			rep.Version = "not a version"
			if err := gw.ReportStatus(ctx, id, rep); !errors.Is(err, ErrInvalid) {
				t.Errorf("ReportStatus with a bad version: %v", err)
			}
			if err := gw.ReportStatus(ctx, id+1000, api.NodeStatusReport{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("ReportStatus of a missing node: %v", err)
			}
			if err := gw.UpdateNode(ctx, id+1000, nodeRequest(farm)); err == nil {
				t.Error("UpdateNode of another node accepted")
			}
			got, err := reg.Client(t).Node(ctx, id)
			if err != nil || got.TwinID != acc.TwinID || got.LastSeen == nil || !got.Online {
				t.Errorf("registrar's view: %+v %v", got, err)
			}
			// A contract's usage, signed as the node; the same hour again
			// with other figures is refused.
			_, user, _ := reg.Account(t, "user")
			k, err := user.CreateNodeContract(ctx, id, strings.Repeat("ab", 32), api.Capacity{CRU: 2})
			if err != nil {
				t.Fatal(err)
			}
			hour := api.Period(time.Now()).Add(-time.Hour)
			if err := gw.ReportUsage(ctx, id, hour, []api.Usage{{ContractID: k.ContractID, Capacity: api.Capacity{CRU: 2}}}); err != nil {
				t.Fatalf("ReportUsage: %v", err)
			}
			if err := gw.ReportUsage(ctx, id, hour, []api.Usage{{ContractID: k.ContractID, Capacity: api.Capacity{CRU: 1}}}); !errors.Is(err, ErrConflict) {
				t.Errorf("ReportUsage with other figures: %v", err)
			}
			// No version was ever set on this registrar.
			if _, err := gw.ZosVersion(ctx); !errors.Is(err, ErrNotFound) {
				t.Errorf("ZosVersion: %v", err)
			}
			reg.Stop()
			_, err = gw.EnsureAccount(ctx)
			var be *bus.Error
			if !errors.Is(err, ErrUnreachable) || !errors.As(err, &be) || !strings.Contains(be.Message, "cannot reach registrar") {
				t.Errorf("registrar down: %v", err)
			}
		})
	}
}

// farmOf is a FarmSource of a fixed farm.
type farmOf uint64

func (f farmOf) FarmID(context.Context) (uint64, error) { return uint64(f), nil }

// TestEndpointsAgainstRegistrar: registrar_light, through the gateway,
// publishes the node's zos-api-light endpoint on a real registrar and
// replaces it there as soon as the node's address changes.
func TestEndpointsAgainstRegistrar(t *testing.T) {
	reg := regtest.Start(t, 0)
	farm := reg.Farm(t)
	gw, _ := gatewayOverBus(t, reg.URL, client.AuthV2)
	node := &fakeNode{ips: []string{"10.0.0.5/24"}, healthy: true}
	addrs := make(chan struct{}, 1)
	l, err := NewLight(Config{APIListen: ":2021"}, Deps{
		Registrar: gw, Facts: node, Location: node, Farm: farmOf(farm), Power: node, Addresses: addrs,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	registered := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, _ := l.State(ctx)
			if s.NodeID != 0 {
				n, err := reg.Client(t).Node(ctx, s.NodeID)
				if err == nil && len(n.APIEndpoints) == 1 && n.APIEndpoints[0] == want {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("registrar has %q (%v), want [%s]", n.APIEndpoints, err, want)
				}
			} else if time.Now().After(deadline) {
				t.Fatalf("not registered: %+v", s)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	registered("http://10.0.0.5:2021/api/v1/rpc")
	node.setIPs("10.0.0.6/24")
	addrs <- struct{}{}
	registered("http://10.0.0.6:2021/api/v1/rpc")
}
