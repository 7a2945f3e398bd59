package registrar

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
	"github.com/grid4/grid4/store/storetest"
)

// fakeClock is the injected clock of a test server.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Now().Truncate(time.Second)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// forEachBackend runs f as a parallel subtest per kind of store.
func forEachBackend(t *testing.T, f func(t *testing.T, backend string)) {
	for _, b := range storetest.Backends() {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

// openStore opens a fresh store for t.
func openStore(t testing.TB, backend string) *store.DB { return storetest.Open(t, backend) }

// harness is a registrar on a real store behind a real HTTP server on
// loopback, with a fake clock.
type harness struct {
	t     testing.TB
	cfg   Config
	clock *fakeClock
	db    *store.DB
	srv   *Server
	ts    *httptest.Server
}

// testConfig is the default configuration with limits that do not get in
// the way of tests.
func testConfig() Config {
	c := DefaultConfig()
	c.RateIP, c.RateTwin = 0, 0
	c.AdminTwins = nil
	return c
}

// newHarness starts a registrar on a fresh store of backend; mutate may
// change the configuration first.
func newHarness(t testing.TB, backend string, mutate func(*Config)) *harness {
	t.Helper()
	db := openStore(t, backend)
	return newHarnessOn(t, db, newFakeClock(), mutate)
}

// newHarnessOn starts a registrar on an existing store (several harnesses
// on one database act as several processes).
func newHarnessOn(t testing.TB, db *store.DB, clock *fakeClock, mutate func(*Config)) *harness {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := New(cfg, Deps{Store: db, Logger: logger, Now: clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &harness{t: t, cfg: cfg, clock: clock, db: db, srv: srv, ts: newTestServer(t, srv)}
}

// newTestServer serves srv on a loopback port until t ends.
func newTestServer(t testing.TB, srv *Server) *httptest.Server {
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// twin is a test identity: an ed25519 key with the twin id it got.
type twin struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	id   uint64
}

func newKey() twin {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return twin{priv: priv, pub: pub}
}

func (tw twin) pubB64() string { return base64.StdEncoding.EncodeToString(tw.pub) }

// keyPair returns the twin's key as a keys.KeyPair (for v2 signing).
func (tw twin) keyPair(t testing.TB) keys.KeyPair {
	kp, err := keys.FromSeed(keys.Ed25519, tw.priv.Seed())
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// xauth builds the legacy header by hand, exactly as the public Go client
// and ZOS do: std base64 (padded) of "<ts>:<twin>", ":", std base64 of the
// ed25519 signature of that text.
func xauth(tw twin, ts int64) string {
	challenge := []byte(strconv.FormatInt(ts, 10) + ":" + strconv.FormatUint(tw.id, 10))
	return base64.StdEncoding.EncodeToString(challenge) + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(tw.priv, challenge))
}

// signer decorates a request before it is sent.
type signer func(t testing.TB, req *http.Request, body []byte)

// legacy signs with X-Auth at the harness clock.
func (h *harness) legacy(tw twin) signer {
	return func(_ testing.TB, req *http.Request, _ []byte) {
		req.Header.Set("X-Auth", xauth(tw, h.clock.Now().Unix()))
	}
}

// v2 signs with signed requests v2 at the harness clock.
func (h *harness) v2(tw twin) signer {
	return func(t testing.TB, req *http.Request, body []byte) {
		s := auth.Signer{Key: tw.keyPair(t), TwinID: tw.id, Now: h.clock.Now}
		if err := s.Sign(req, body); err != nil {
			t.Fatalf("sign: %v", err)
		}
	}
}

// resp is a response read in full.
type resp struct {
	status int
	header http.Header
	body   []byte
}

// obj decodes the body as a JSON object.
func (r resp) obj(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// arr decodes the body as a JSON array of objects.
func (r resp) arr(t testing.TB) []map[string]any {
	t.Helper()
	var a []map[string]any
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("body %q is not a JSON array: %v", r.body, err)
	}
	return a
}

// errMsg returns the "error" member of a JSON error body.
func (r resp) errMsg(t testing.TB) string {
	t.Helper()
	m := r.obj(t)
	s, ok := m["error"].(string)
	if !ok {
		t.Fatalf("body %q has no string error member", r.body)
	}
	return s
}

// do sends a request with body (nil: none; []byte or string: as is;
// anything else: JSON) and sign (nil: unsigned).
func (h *harness) do(method, path string, body any, sign signer) resp {
	h.t.Helper()
	var raw []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		raw = b
	case string:
		raw = []byte(b)
	default:
		var err error
		if raw, err = json.Marshal(b); err != nil {
			h.t.Fatal(err)
		}
	}
	var rd io.Reader
	if raw != nil {
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if raw != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if sign != nil {
		sign(h.t, req, raw)
	}
	res, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); len(out) > 0 && ct != "application/json" && path != "/metrics" && path != "/docs" {
		h.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp{status: res.StatusCode, header: res.Header, body: out}
}

// want fails unless r has status.
func (r resp) want(t testing.TB, status int) resp {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	return r
}

// accountBody is a signed POST /accounts body, built by hand as the public
// Go client does: a map (so keys come out sorted), signature over
// "<ts>:<base64 key>".
func accountBody(tw twin, ts int64) map[string]any {
	msg := fmt.Sprintf("%d:%s", ts, tw.pubB64())
	return map[string]any{
		"public_key":  tw.pubB64(),
		"signature":   base64.StdEncoding.EncodeToString(ed25519.Sign(tw.priv, []byte(msg))),
		"timestamp":   ts,
		"rmb_enc_key": "",
		"relays":      []string{"relay.dev4.grid.tf"},
	}
}

// newTwin creates an account and returns the twin with its id.
func (h *harness) newTwin() twin {
	h.t.Helper()
	tw := newKey()
	r := h.do("POST", "/api/v1/accounts", accountBody(tw, h.clock.Now().Unix()), nil).want(h.t, http.StatusCreated)
	var acc api.Account
	if err := json.Unmarshal(r.body, &acc); err != nil {
		h.t.Fatal(err)
	}
	tw.id = acc.TwinID
	return tw
}

var farmSeq struct {
	mu sync.Mutex
	n  int
}

// uniqueFarmName returns a farm name not used before in this test binary.
func uniqueFarmName() string {
	farmSeq.mu.Lock()
	defer farmSeq.mu.Unlock()
	farmSeq.n++
	return fmt.Sprintf("farm%d%s", farmSeq.n, randAlnum(6))
}

func randAlnum(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// newFarm creates a farm owned by tw.
func (h *harness) newFarm(tw twin) uint64 {
	h.t.Helper()
	r := h.do("POST", "/api/v1/farms", map[string]any{"farm_id": 0, "farm_name": uniqueFarmName(), "twin_id": tw.id, "dedicated": false, "stellar_address": ""}, h.legacy(tw)).want(h.t, http.StatusCreated)
	return uint64(r.obj(h.t)["farm_id"].(float64))
}

// nodeBody is a registration body as ZOS builds it.
func nodeReq(tw twin, farm uint64) map[string]any {
	return map[string]any{
		"twin_id": tw.id,
		"farm_id": farm,
		"resources": map[string]any{
			"hru": 4 << 40, "sru": 512 << 30, "cru": 8, "mru": 32 << 30,
		},
		"location": map[string]any{"country": "Belgium", "city": "Ghent", "longitude": "3.7174", "latitude": "51.0543"},
		"interfaces": []map[string]any{
			{"name": "zos", "mac": "52:54:00:12:34:56", "ips": []string{"10.0.0.5/24", "2001:db8::5/64"}},
		},
		"secure_boot":   true,
		"virtualized":   false,
		"serial_number": "SN-" + randAlnum(8),
	}
}

// newNode registers tw's node in farm.
func (h *harness) newNode(tw twin, farm uint64) uint64 {
	h.t.Helper()
	r := h.do("POST", "/api/v1/nodes", nodeReq(tw, farm), h.legacy(tw)).want(h.t, http.StatusCreated)
	return uint64(r.obj(h.t)["node_id"].(float64))
}

// uptime reports uptime seconds for node, signed by tw.
func (h *harness) uptime(tw twin, node uint64, secs uint64) resp {
	h.t.Helper()
	return h.do("POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", node),
		map[string]any{"uptime": secs, "timestamp": h.clock.Now().Unix()}, h.legacy(tw))
}

// hasKeys fails unless m has every key.
func hasKeys(t testing.TB, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s: key %q missing in %v", what, k, m)
		}
	}
}
