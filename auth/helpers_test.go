package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
)

// twinDB is an in-memory TwinKeys.
type twinDB struct {
	mu   sync.Mutex
	keys map[uint64][]byte
}

func (d *twinDB) add(id uint64, kp keys.KeyPair) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.keys == nil {
		d.keys = make(map[uint64][]byte)
	}
	d.keys[id] = kp.Public().Key
}

func (d *twinDB) TwinPublicKey(_ context.Context, id uint64) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	k, ok := d.keys[id]
	if !ok {
		return nil, ErrUnknownTwin
	}
	return k, nil
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustKey(t testing.TB, scheme keys.Scheme) keys.KeyPair {
	t.Helper()
	kp, err := keys.Generate(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// echo is the protected handler: it answers the caller and the body it saw.
type echoReply struct {
	TwinID uint64 `json:"twin_id"`
	Scheme string `json:"scheme"`
	Method string `json:"method"`
	Body   string `json:"body"`
	Anon   bool   `json:"anon"`
}

func echoHandler(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	c, ok := CallerFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(echoReply{TwinID: c.TwinID, Scheme: string(c.Scheme), Method: c.Method, Body: string(b), Anon: !ok})
}

type testEnv struct {
	db    *twinDB
	clk   *clock
	v     *Verifier
	srv   *httptest.Server
	cfg   Config
	nonce *MemoryNonceStore
}

// newEnv starts a loopback server: /protected behind Middleware, /open
// behind Optional.
func newEnv(t *testing.T, mod func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{db: &twinDB{}, clk: newClock(time.Unix(1_718_000_000, 0))}
	e.nonce = NewMemoryNonceStore(1000, e.clk.Now)
	e.cfg = Config{Keys: e.db, Now: e.clk.Now, Nonces: e.nonce}
	if mod != nil {
		mod(&e.cfg)
	}
	v, err := NewVerifier(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.v = v
	mux := http.NewServeMux()
	mux.Handle("/protected/", v.Middleware(http.HandlerFunc(echoHandler)))
	mux.Handle("/open/", v.Optional(http.HandlerFunc(echoHandler)))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// client returns a signing client for (kp, twin) using the env's clock.
func (e *testEnv) client(kp keys.KeyPair, twin uint64, legacy bool, base http.RoundTripper) *http.Client {
	if base == nil {
		base = e.srv.Client().Transport
	}
	return &http.Client{Transport: &Transport{
		Base:   base,
		Signer: Signer{Key: kp, TwinID: twin, Now: e.clk.Now},
		Legacy: legacy,
	}}
}

type result struct {
	status int
	header http.Header
	echo   echoReply
	errMsg string
	raw    string
}

func doReq(t *testing.T, c *http.Client, method, url string, body []byte) result {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	return send(t, c, req)
}

func send(t *testing.T, c *http.Client, req *http.Request) result {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	res := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &res.echo); err != nil {
			t.Fatalf("bad echo %q: %v", raw, err)
		}
		return res
	}
	checkJSONError(t, resp.StatusCode, resp.Header, raw)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	res.errMsg = e.Error
	return res
}

// checkJSONError asserts the error answer format.
func checkJSONError(t testing.TB, status int, h http.Header, raw []byte) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("status %d: Content-Type %q, body %q", status, ct, raw)
	}
	var e map[string]any
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("status %d: error body %q is not JSON: %v", status, raw, err)
	}
	if len(e) != 1 || e["error"] == nil || e["error"] == "" {
		t.Fatalf("status %d: error body %q is not {\"error\": ...}", status, raw)
	}
	if status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" {
		t.Fatalf("401 without WWW-Authenticate")
	}
}

func wantStatus(t *testing.T, r result, status int, msgPart string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d (%s), want %d", r.status, r.raw, status)
	}
	if msgPart != "" && !strings.Contains(r.errMsg, msgPart) {
		t.Fatalf("error %q does not mention %q", r.errMsg, msgPart)
	}
}

// rtFunc adapts a function to http.RoundTripper.
type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// captured is a signed request recorded on its way out.
type captured struct {
	method, url string
	header      http.Header
	body        []byte
}

// recorder returns a base transport that records each request before
// sending it, optionally changing it first.
func recorder(base http.RoundTripper, out *[]captured, mutate func(*http.Request)) http.RoundTripper {
	return rtFunc(func(r *http.Request) (*http.Response, error) {
		if mutate != nil {
			mutate(r)
		}
		var b []byte
		if r.Body != nil {
			b, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		*out = append(*out, captured{method: r.Method, url: r.URL.String(), header: r.Header.Clone(), body: b})
		return base.RoundTrip(r)
	})
}

// replay sends a captured request again, byte for byte.
func (e *testEnv) replay(t *testing.T, c captured) result {
	t.Helper()
	req, err := http.NewRequest(c.method, c.url, bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.header.Clone()
	return send(t, e.srv.Client(), req)
}

// newHTTPTestServer starts another loopback server and returns its URL.
func newHTTPTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}
