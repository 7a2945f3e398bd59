package auth

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/keys"
)

// TestLegacyRespelledBase64Refused is the outside probe's finding: a
// captured X-Auth header re-spelled (same decoded bytes) was accepted once
// per spelling. Each spelling is now refused as malformed, and the guard
// keys on the decoded request anyway.
func TestLegacyRespelledBase64Refused(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LegacyReplayGuard = true })
	kp := mustKey(t, keys.Ed25519)
	e.db.add(42, kp)
	var caps []captured
	c := e.client(kp, 42, true, recorder(e.srv.Client().Transport, &caps, nil))
	wantStatus(t, doReq(t, c, "POST", e.srv.URL+"/protected/up", []byte("a")), http.StatusOK, "")

	ch, sig, _ := strings.Cut(caps[0].header.Get(HeaderXAuth), ":")
	variants := 0
	for _, v := range strictb64.Respellings(sig) {
		r := caps[0]
		r.header = r.header.Clone()
		r.header.Set(HeaderXAuth, ch+":"+v)
		wantStatus(t, e.replay(t, r), http.StatusBadRequest, "not standard base64")
		variants++
	}
	// "<10 digits>:42" is 13 bytes: its base64 has padding bits too.
	for _, v := range strictb64.Respellings(ch) {
		r := caps[0]
		r.header = r.header.Clone()
		r.header.Set(HeaderXAuth, v+":"+sig)
		wantStatus(t, e.replay(t, r), http.StatusBadRequest, "not standard base64")
		variants++
	}
	if variants < 15 {
		t.Fatalf("only %d re-spellings tried", variants)
	}
	wantStatus(t, e.replay(t, caps[0]), http.StatusUnauthorized, "already accepted")
}

// TestLegacyGuardKeysOnMeaning: another valid signature of the same
// challenge (sr25519 signs with randomness) and a percent-encoded path are
// the same request again.
func TestLegacyGuardKeysOnMeaning(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LegacyReplayGuard = true })
	kp := mustKey(t, keys.Sr25519)
	e.db.add(5, kp)
	post := func(path, xauth string) result {
		req, err := http.NewRequest("POST", e.srv.URL+path, strings.NewReader("a"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set(HeaderXAuth, xauth)
		return send(t, e.srv.Client(), req)
	}
	h1, err := SignLegacy(kp, 5, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	h2, err := SignLegacy(kp, 5, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("sr25519 signed the same challenge twice with the same signature")
	}
	wantStatus(t, post("/protected/up", h1), http.StatusOK, "")
	wantStatus(t, post("/protected/up", h2), http.StatusUnauthorized, "already accepted")
	wantStatus(t, post("/protected/%75p", h1), http.StatusUnauthorized, "already accepted")
	wantStatus(t, post("/protected/up?x=1", h1), http.StatusUnauthorized, "already accepted")
}

// policyServer serves /r behind VerifyPolicy(p).
func policyServer(t *testing.T, e *testEnv, p Policy) string {
	t.Helper()
	return newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := e.v.VerifyPolicy(r, p)
		if err != nil {
			WriteError(w, err)
			return
		}
		echoHandler(w, r.WithContext(WithCaller(r.Context(), c)))
	}))
}

// TestPolicyLegacyOnce is the admin route rule: a captured legacy header
// is usable once, whatever the method, path and body, even with the
// general guard off.
func TestPolicyLegacyOnce(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(1, kp)
	url := policyServer(t, e, Policy{LegacyOnce: true})
	xauth, err := SignLegacy(kp, 1, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	do := func(method, path, body string) result {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set(HeaderXAuth, xauth)
		return send(t, e.srv.Client(), req)
	}
	wantStatus(t, do("PUT", "/zos/version", `{"version":"v4.1.0"}`), http.StatusOK, "")
	wantStatus(t, do("PUT", "/zos/version", `{"version":"v6.6.6","safe_to_upgrade":true}`), http.StatusUnauthorized, "already used")
	wantStatus(t, do("POST", "/zos/versions", `{"version":"v6.6.6"}`), http.StatusUnauthorized, "already used")
	// v2 requests are bound to their body anyway and keep working.
	c := e.client(kp, 1, false, nil)
	wantStatus(t, doReq(t, c, "PUT", url+"/zos/version", []byte(`{}`)), http.StatusOK, "")
	wantStatus(t, doReq(t, c, "PUT", url+"/zos/version", []byte(`{}`)), http.StatusOK, "")
}

// TestPolicyDeferNonce: the route keeps the record itself, after its own
// checks; a replay of a kept request is refused in the verifier's words,
// a request the route refused before keeping it is refused again the
// same way, and LegacyOnce is kept by the verifier whatever the policy.
func TestPolicyDeferNonce(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LegacyReplayGuard = true })
	kp := mustKey(t, keys.Ed25519)
	e.db.add(4, kp)
	route := func(p Policy) string {
		return newHTTPTestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := e.v.VerifyPolicy(r, p)
			if err != nil {
				WriteError(w, err)
				return
			}
			if b, _ := io.ReadAll(r.Body); string(b) == "refuse" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"refused by the route"}` + "\n"))
				return
			}
			if c.Nonce != nil {
				if err := e.nonce.UseNonce(r.Context(), c.Nonce.KeyID, c.Nonce.Value, c.Nonce.Expires); errors.Is(err, ErrReplay) {
					WriteError(w, c.Nonce.Replay())
					return
				}
			}
			echoHandler(w, r.WithContext(WithCaller(r.Context(), c)))
		}))
	}
	deferred := route(Policy{DeferNonce: true})
	for _, legacy := range []bool{false, true} {
		var caps []captured
		c := e.client(kp, 4, legacy, recorder(e.srv.Client().Transport, &caps, nil))
		wantStatus(t, doReq(t, c, "POST", deferred+"/r", []byte("refuse")), http.StatusBadRequest, "")
		wantStatus(t, e.replay(t, caps[0]), http.StatusBadRequest, "")
		wantStatus(t, doReq(t, c, "POST", deferred+"/r", []byte("write")), http.StatusOK, "")
		want := "already used by keyid"
		if legacy {
			want = "already accepted"
		}
		wantStatus(t, e.replay(t, caps[1]), http.StatusUnauthorized, want)
	}
	if n := e.nonce.Len(); n != 2 {
		t.Fatalf("%d records kept, want 2 (one per scheme)", n)
	}
	// LegacyOnce: kept by the verifier, nothing left to the route.
	once := route(Policy{DeferNonce: true, LegacyOnce: true})
	xauth, err := SignLegacy(kp, 4, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []int{http.StatusBadRequest, http.StatusUnauthorized} {
		req, _ := http.NewRequest("POST", once+"/r", strings.NewReader("refuse"))
		req.Header.Set(HeaderXAuth, xauth)
		wantStatus(t, send(t, e.srv.Client(), req), want, []string{"", "already used"}[i])
	}
}

func TestPolicyNoLegacy(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(1, kp)
	url := policyServer(t, e, Policy{NoLegacy: true})
	wantStatus(t, doReq(t, e.client(kp, 1, true, nil), "POST", url+"/r", []byte("x")), http.StatusUnauthorized, "refused on this route")
	wantStatus(t, doReq(t, e.client(kp, 1, false, nil), "POST", url+"/r", []byte("x")), http.StatusOK, "")
}

// TestPolicyReadOnly: credentials are checked, nothing is recorded.
func TestPolicyReadOnly(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LegacyReplayGuard = true })
	kp := mustKey(t, keys.Ed25519)
	e.db.add(3, kp)
	url := policyServer(t, e, Policy{ReadOnly: true})
	for _, legacy := range []bool{false, true} {
		var caps []captured
		c := e.client(kp, 3, legacy, recorder(e.srv.Client().Transport, &caps, nil))
		wantStatus(t, doReq(t, c, "GET", url+"/r", nil), http.StatusOK, "")
		wantStatus(t, e.replay(t, caps[0]), http.StatusOK, "")
		wrong := e.client(mustKey(t, keys.Ed25519), 3, legacy, nil)
		wantStatus(t, doReq(t, wrong, "GET", url+"/r", nil), http.StatusUnauthorized, "bad signature")
	}
	if n := e.nonce.Len(); n != 0 {
		t.Fatalf("%d nonces recorded by read-only verification", n)
	}
}

func TestVerifyAccountRefusesWeakKeys(t *testing.T) {
	now := time.Unix(1_718_000_000, 0)
	for name, h := range map[string]string{
		"ed25519 identity":     "0100000000000000000000000000000000000000000000000000000000000000",
		"all zeros":            "0000000000000000000000000000000000000000000000000000000000000000",
		"order 8":              "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
		"identity, y = p + 1":  "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"order 2 (y = -1)":     "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
		"negative zero x, y=1": "0100000000000000000000000000000000000000000000000000000000000080",
	} {
		pub, _ := hex.DecodeString(h)
		a := AccountSignature{Timestamp: now.Unix(), PublicKey: base64.StdEncoding.EncodeToString(pub), Signature: base64.StdEncoding.EncodeToString(make([]byte, 64))}
		_, _, err := VerifyAccount(a, now, 0)
		if !errors.Is(err, ErrWeakKey) {
			t.Errorf("%s: VerifyAccount = %v, want ErrWeakKey", name, err)
		}
		if HTTPStatus(err) != http.StatusBadRequest {
			t.Errorf("%s: status %d", name, HTTPStatus(err))
		}
	}
	// A re-spelled public key (padding bits) is refused before any check.
	kp := mustKey(t, keys.Ed25519)
	a, err := SignAccount(kp, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range strictb64.Respellings(a.PublicKey) {
		b := a
		b.PublicKey = v
		if _, _, err := VerifyAccount(b, now, 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("re-spelled public_key %q: %v", v, err)
		}
	}
	if _, _, err := VerifyAccount(a, now, 0); err != nil {
		t.Fatal(err)
	}
}

// TestStoredWeakKeyVerifiesNothing: a twin whose key is the identity (one
// that reached a store before keys were checked) cannot be impersonated
// with the signature that verifies every message under crypto/ed25519.
func TestStoredWeakKeyVerifiesNothing(t *testing.T) {
	e := newEnv(t, nil)
	identity, _ := hex.DecodeString("0100000000000000000000000000000000000000000000000000000000000000")
	e.db.mu.Lock()
	e.db.keys = map[uint64][]byte{9: identity}
	e.db.mu.Unlock()
	forged, _ := hex.DecodeString("5866666666666666666666666666666666666666666666666666666666666666" +
		"0100000000000000000000000000000000000000000000000000000000000000")
	req := httptest.NewRequest("POST", "/protected/x", strings.NewReader("{}"))
	req.Header.Set(HeaderXAuth, LegacyHeaderValue(LegacyChallenge(e.clk.Now().Unix(), 9), forged))
	if _, err := e.v.Verify(req); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged request with a stored identity key: %v, want ErrBadSignature", err)
	}
}

// TestPolicyRequire: a route that binds requests to a field refuses a
// signature that does not cover it, even a valid one.
func TestPolicyRequire(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(3, kp)
	url := policyServer(t, e, Policy{Require: []string{"grid-node"}})
	req := func(c *http.Client) result {
		r, _ := http.NewRequest("POST", url+"/r", strings.NewReader("x"))
		r.Header.Set("Grid-Node", "7")
		return send(t, c, r)
	}
	wantStatus(t, req(e.client(kp, 3, false, nil)), http.StatusUnauthorized, `"grid-node" is not covered`)
	covering := &http.Client{Transport: &Transport{Base: e.srv.Client().Transport, Signer: Signer{Key: kp, TwinID: 3, Now: e.clk.Now, Components: []string{"grid-node"}}}}
	wantStatus(t, req(covering), http.StatusOK, "")
}
