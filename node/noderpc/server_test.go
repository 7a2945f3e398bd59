package noderpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/noderpc/api"
	rpcclient "github.com/grid4/grid4/node/noderpc/client"
	"github.com/grid4/grid4/node/zosapi"
	regapi "github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/client"
)

// fakePower stands for powerd: Status answers status, PeerDown records
// the node and its MACs into downs.
type fakePower struct {
	status func(context.Context) (PowerStatus, error)
	downs  chan []string
}

func (f fakePower) Status(ctx context.Context) (PowerStatus, error) { return f.status(ctx) }

func (f fakePower) PeerDown(_ context.Context, node uint64, macs []string) error {
	f.downs <- append([]string{fmt.Sprint(node)}, macs...)
	return nil
}

// testGrid is a real registrar with farm A (nodes a1, served by the test,
// and a2), farm B (node b1) and a user twin.
type testGrid struct {
	reg          *regtest.Registrar
	a1, a2, b1   regapi.Node
	a2Key, b1Key keys.KeyPair
	userKey      keys.KeyPair
	user         uint64
	url          string         // a1's zos-api-light origin
	serve        func(*Server)  // replaces a1's server
	deadline     chan time.Time // farm.v1.status's deadlines on a1
	downs        chan []string  // farm.v1.going_down's PeerDown calls on a1
	rpc          string         // a1's node-to-node endpoint
}

func newTestGrid(t *testing.T) *testGrid {
	t.Helper()
	g := &testGrid{reg: regtest.Start(t, 0), deadline: make(chan time.Time, 10), downs: make(chan []string, 10)}
	var handler http.Handler = http.NotFoundHandler()
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := handler
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	g.url = ts.URL
	farmA, farmB := g.reg.Farm(t), g.reg.Farm(t)
	_, g.a1 = g.reg.Node(t, farmA, ts.URL+"/api/v1/rpc")
	g.a2Key, g.a2 = g.reg.Node(t, farmA)
	g.b1Key, g.b1 = g.reg.Node(t, farmB)
	g.userKey, g.user = g.reg.Twin(t)
	regc := g.reg.Client(t)
	srv, err := NewServer(ServerConfig{
		Self:    Self{NodeID: g.a1.NodeID, FarmID: farmA, TwinID: g.a1.TwinID, Version: "v4.0.0-test"},
		Callers: NewPeers(regc, nil, PeersConfig{}), Keys: zosapi.NewTwinKeyCache(regc, zosapi.KeyCacheConfig{}),
		Power: fakePower{downs: g.downs, status: func(ctx context.Context) (PowerStatus, error) {
			dl, _ := ctx.Deadline()
			g.deadline <- dl
			return PowerStatus{Uptime: 42, Healthy: false, Reasons: []string{"disk: full"}}, nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	g.serve = func(s *Server) {
		mu.Lock()
		handler = s.Handler()
		mu.Unlock()
	}
	g.serve(srv)
	g.rpc, err = rpcclient.Endpoint(g.a1.APIEndpoints[0])
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// zosapiKeys is the key cache of the registrar's accounts.
func zosapiKeys(regc *client.Client) *zosapi.TwinKeyCache {
	return zosapi.NewTwinKeyCache(regc, zosapi.KeyCacheConfig{})
}

// peersOf returns the Peers of a node signing with key as twin.
func (g *testGrid) peersOf(t *testing.T, key keys.KeyPair, twin uint64, base http.RoundTripper) *Peers {
	t.Helper()
	c, err := rpcclient.New(key, twin, base)
	if err != nil {
		t.Fatal(err)
	}
	return NewPeers(g.reg.Client(t), c, PeersConfig{})
}

// wantHTTP asserts err is a refusal before JSON-RPC with status and a
// message containing want.
func wantHTTP(t *testing.T, err error, status int, want string) {
	t.Helper()
	var he *jsonrpc.HTTPError
	if !errors.As(err, &he) || he.Status != status || !strings.Contains(he.Message, want) {
		t.Fatalf("got %v, want HTTP %d %q", err, status, want)
	}
}

// TestCallsBetweenNodes: a node of the farm and a node of another farm
// reach the node through its published endpoint and are told apart; a
// farm-level method answers only the farm.
func TestCallsBetweenNodes(t *testing.T) {
	g := newTestGrid(t)
	ctx := context.Background()
	a2 := g.peersOf(t, g.a2Key, g.a2.TwinID, nil)
	var pong api.Pong
	if err := a2.Call(ctx, g.a1.NodeID, api.MethodPing, nil, &pong); err != nil {
		t.Fatal(err)
	}
	if pong.NodeID != g.a1.NodeID || pong.FarmID != g.a1.FarmID || pong.Caller != g.a2.NodeID || pong.API != api.APIVersion {
		t.Fatalf("pong %+v", pong)
	}
	var st api.FarmStatus
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := a2.Call(short, g.a1.NodeID, api.MethodFarmStatus, nil, &st); err != nil || st.UptimeSeconds != 42 || st.Healthy || st.Reasons[0] != "disk: full" {
		t.Fatalf("farm status %+v %v", st, err)
	}
	// The call ran under the caller's deadline, not the server's longest.
	mine, _ := short.Deadline()
	if dl := <-g.deadline; dl.IsZero() || dl.After(mine.Add(time.Second)) {
		t.Fatalf("the call's deadline %v, the caller's %v", dl, mine)
	}

	b1 := g.peersOf(t, g.b1Key, g.b1.TwinID, nil)
	if err := b1.Call(ctx, g.a1.NodeID, api.MethodPing, nil, &pong); err != nil || pong.Caller != g.b1.NodeID {
		t.Fatalf("ping from another farm: %+v %v", pong, err)
	}
	// A node of another farm: refused a farm-level method.
	var re *jsonrpc.Error
	if err := b1.Call(ctx, g.a1.NodeID, api.MethodFarmStatus, nil, &st); !errors.As(err, &re) || re.Code != api.CodeForbidden {
		t.Fatalf("farm status from another farm: %v", err)
	}
	if err := b1.Call(ctx, g.a1.NodeID, api.MethodFarmGoingDown, nil, nil); !errors.As(err, &re) || re.Code != api.CodeForbidden {
		t.Fatalf("going down to another farm: %v", err)
	}
	// A node of the farm going down: powerd learns it with its MAC.
	if err := a2.Call(ctx, g.a1.NodeID, api.MethodFarmGoingDown, nil, nil); err != nil {
		t.Fatal(err)
	}
	if d := <-g.downs; d[0] != fmt.Sprint(g.a2.NodeID) || len(d) != 2 || d[1] != "52:54:00:12:34:56" {
		t.Fatalf("PeerDown %v", d)
	}
	// Unknown methods and parameters are JSON-RPC errors.
	if err := a2.Call(ctx, g.a1.NodeID, "node.v9.ping", nil, nil); !errors.As(err, &re) || re.Code != jsonrpc.CodeMethodNotFound {
		t.Fatalf("unknown method: %v", err)
	}
	if err := a2.Call(ctx, g.a1.NodeID, api.MethodPing, map[string]int{"x": 1}, nil); !errors.As(err, &re) || re.Code != jsonrpc.CodeInvalidParams {
		t.Fatalf("bad params: %v", err)
	}
}

// TestRefusedCallers: a user's twin, a forged signature, a replayed
// request, a request for another node, one whose signature does not
// cover the target, and X-Auth are all refused before JSON-RPC.
func TestRefusedCallers(t *testing.T) {
	g := newTestGrid(t)
	ctx := context.Background()
	call := func(key keys.KeyPair, twin, node uint64, base http.RoundTripper) error {
		c, err := rpcclient.New(key, twin, base)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Ping(ctx, g.rpc, node)
		return err
	}
	// A twin that is not a node: its signature is right, it is not let in.
	wantHTTP(t, call(g.userKey, g.user, g.a1.NodeID, nil), http.StatusUnauthorized, "not a registered node")
	// Forged: a2's twin id, another key.
	forger, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	wantHTTP(t, call(forger, g.a2.TwinID, g.a1.NodeID, nil), http.StatusUnauthorized, "does not verify")
	// For another node (b1): 421, even signed right.
	wantHTTP(t, call(g.a2Key, g.a2.TwinID, g.b1.NodeID, nil), http.StatusMisdirectedRequest, "the request is for node")

	// Replayed: the same signed request sent again.
	rec := &recorder{}
	if err := call(g.a2Key, g.a2.TwinID, g.a1.NodeID, rec); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultTransport.RoundTrip(rec.again(t))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !bytes.Contains(body, []byte("already used")) {
		t.Fatalf("replay: %d %s", resp.StatusCode, body)
	}

	// Signed without covering Grid-Node: refused, whatever the header says.
	post := func(c *http.Client) (int, string) {
		req, _ := http.NewRequest("POST", g.rpc, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"node.v1.ping"}`))
		req.Header.Set(api.HeaderNode, "1")
		req.Header.Set(api.HeaderTimeout, "1000")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(auth.NewClient(g.a2Key, g.a2.TwinID)); code != 401 || !strings.Contains(body, "grid-node") {
		t.Fatalf("uncovered target: %d %s", code, body)
	}
	legacy := &http.Client{Transport: &auth.Transport{Signer: auth.Signer{Key: g.a2Key, TwinID: g.a2.TwinID}, Legacy: true}}
	if code, body := post(legacy); code != 401 {
		t.Fatalf("X-Auth: %d %s", code, body)
	}
	if code, _ := post(http.DefaultClient); code != 401 {
		t.Fatalf("unsigned: %d", code)
	}
}

// recorder is a RoundTripper that sends requests and keeps the last one.
type recorder struct {
	req  *http.Request
	body []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	req.Body.Close()
	r.req, r.body = req.Clone(context.Background()), b
	req.Body = io.NopCloser(bytes.NewReader(b))
	return http.DefaultTransport.RoundTrip(req)
}

// again is the recorded request, ready to send once more.
func (r *recorder) again(t *testing.T) *http.Request {
	t.Helper()
	if r.req == nil {
		t.Fatal("nothing recorded")
	}
	req := r.req.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(r.body))
	return req
}

// TestEndpointsFetchedAgain: a node that moved is found at its new
// endpoint once the cached one fails.
func TestEndpointsFetchedAgain(t *testing.T) {
	g := newTestGrid(t)
	ctx := context.Background()
	a2 := g.peersOf(t, g.a2Key, g.a2.TwinID, nil)
	// b1 publishes an endpoint where nothing listens; a2 caches it.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	g.reg.SetEndpoints(t, g.b1Key, g.b1, dead.URL+"/api/v1/rpc")
	if n, err := a2.Node(ctx, g.b1.NodeID); err != nil || n.APIEndpoints[0] != dead.URL+"/api/v1/rpc" {
		t.Fatalf("b1: %+v %v", n, err)
	}
	// b1 moves to a live server.
	regc := g.reg.Client(t)
	srv, err := NewServer(ServerConfig{
		Self:    Self{NodeID: g.b1.NodeID, FarmID: g.b1.FarmID, TwinID: g.b1.TwinID},
		Callers: NewPeers(regc, nil, PeersConfig{}), Keys: zosapi.NewTwinKeyCache(regc, zosapi.KeyCacheConfig{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	live := httptest.NewServer(srv.Handler())
	defer live.Close()
	g.reg.SetEndpoints(t, g.b1Key, g.b1, live.URL+"/api/v1/rpc")
	var pong api.Pong
	if err := a2.Call(ctx, g.b1.NodeID, api.MethodPing, nil, &pong); err != nil || pong.NodeID != g.b1.NodeID || pong.Caller != g.a2.NodeID {
		t.Fatalf("b1 after the move: %+v %v", pong, err)
	}
	// A node without endpoints says so.
	if err := NewPeers(regc, a2.client, PeersConfig{}).Call(ctx, g.a2.NodeID, api.MethodPing, nil, nil); !errors.Is(err, ErrNoEndpoint) {
		t.Fatalf("no endpoint: %v", err)
	}
	if err := a2.Call(ctx, 999_999, api.MethodPing, nil, nil); !errors.Is(err, ErrNotNode) {
		t.Fatalf("no node: %v", err)
	}
}

// TestOpenRPCMatchesServer: the document lists exactly the methods the
// server answers, every $ref resolves, and every error code is one the
// API defines.
func TestOpenRPCMatchesServer(t *testing.T) {
	var doc struct {
		OpenRPC string `json:"openrpc"`
		Info    struct {
			Version string `json:"version"`
		} `json:"info"`
		Methods []struct {
			Name   string `json:"name"`
			Result struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"result"`
			Errors []struct {
				Ref string `json:"$ref"`
			} `json:"errors"`
		} `json:"methods"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
			Errors  map[string]struct {
				Code int `json:"code"`
			} `json:"errors"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenRPC(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenRPC != "1.3.2" || doc.Info.Version != api.APIVersion {
		t.Fatalf("openrpc %q version %q", doc.OpenRPC, doc.Info.Version)
	}
	srv, err := NewServer(ServerConfig{Self: Self{NodeID: 1}, Callers: NewPeers(nil, nil, PeersConfig{}), Keys: auth.TwinKeysFunc(nil)})
	if err != nil {
		t.Fatal(err)
	}
	codes := []int{jsonrpc.CodeInvalidParams, api.CodeForbidden, api.CodeUnavailable, api.CodeNotFound, api.CodeConflict}
	var inDoc, inServer []string
	for _, m := range doc.Methods {
		inDoc = append(inDoc, m.Name)
		if ref := m.Result.Schema.Ref; ref != "" {
			if _, ok := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]; !ok {
				t.Errorf("%s: result %s undefined", m.Name, ref)
			}
		}
		for _, e := range m.Errors {
			def, ok := doc.Components.Errors[strings.TrimPrefix(e.Ref, "#/components/errors/")]
			if !ok {
				t.Errorf("%s: error %s undefined", m.Name, e.Ref)
			} else if !slices.Contains(codes, def.Code) {
				t.Errorf("%s: error code %d is not the API's", m.Name, def.Code)
			}
		}
	}
	for name := range srv.rpc.Methods {
		inServer = append(inServer, name)
	}
	sort.Strings(inDoc)
	sort.Strings(inServer)
	if !slices.Equal(inDoc, inServer) {
		t.Fatalf("document %v\nserver   %v", inDoc, inServer)
	}
}

// TestEndpoint: the node-to-node URL of published endpoints.
func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://10.0.0.1:2021/api/v1/rpc":      "http://10.0.0.1:2021/api/v1/node/rpc",
		"https://node.example/rpc":             "https://node.example/api/v1/node/rpc",
		"https://proxy.example/n7/api/v1/rpc/": "https://proxy.example/n7/api/v1/node/rpc",
		"http://[2001:db8::1]:2021":            "http://[2001:db8::1]:2021/api/v1/node/rpc",
	} {
		if got, err := rpcclient.Endpoint(in); err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", in, got, err, want)
		}
	}
	if _, err := rpcclient.Endpoint("ftp://x"); err == nil {
		t.Error("ftp accepted")
	}
}

// FuzzEndpoint: any published endpoint gives a node-to-node URL ending in
// the API's path, or an error; never a panic.
func FuzzEndpoint(f *testing.F) {
	for _, s := range []string{"http://10.0.0.1:2021/api/v1/rpc", "https://n.example/rpc", "http://[::1]", "ftp://x", "http://%zz", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := rpcclient.Endpoint(s)
		if err != nil {
			return
		}
		if !strings.HasSuffix(got, api.RPCPath) {
			t.Fatalf("%q gave %q", s, got)
		}
		_, _ = NodeHost(regapi.Node{APIEndpoints: []string{s}})
	})
}
