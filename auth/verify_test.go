package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
)

var allSchemes = []keys.Scheme{keys.Ed25519, keys.Sr25519}

func TestRoundTrip(t *testing.T) {
	for _, scheme := range allSchemes {
		for _, legacy := range []bool{false, true} {
			method := MethodV2
			if legacy {
				method = MethodLegacy
			}
			t.Run(string(scheme)+"/"+method, func(t *testing.T) {
				e := newEnv(t, nil)
				kp := mustKey(t, scheme)
				e.db.add(7, kp)
				c := e.client(kp, 7, legacy, nil)

				body := []byte(`{"farm_name":"alice","twin_id":7}`)
				r := doReq(t, c, http.MethodPost, e.srv.URL+"/protected/farms?x=1&y=%20z", body)
				wantStatus(t, r, http.StatusOK, "")
				if r.echo.TwinID != 7 || r.echo.Scheme != string(scheme) || r.echo.Method != method || r.echo.Body != string(body) {
					t.Fatalf("handler saw %+v", r.echo)
				}
				// Empty body, no query.
				r = doReq(t, c, http.MethodGet, e.srv.URL+"/protected/", nil)
				wantStatus(t, r, http.StatusOK, "")
				if r.echo.TwinID != 7 || r.echo.Body != "" {
					t.Fatalf("handler saw %+v", r.echo)
				}
				// Each second, a new legacy header; v2 gets a new nonce anyway.
				e.clk.Advance(time.Second)
				r = doReq(t, c, http.MethodPut, e.srv.URL+"/protected/a/b/", []byte("x"))
				wantStatus(t, r, http.StatusOK, "")
			})
		}
	}
}

func TestRoundTripExtraComponentsAndSha512(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(9, kp)
	tr := &Transport{Base: e.srv.Client().Transport, Signer: Signer{
		Key: kp, TwinID: 9, Now: e.clk.Now,
		Components: []string{ComponentAuthority, ComponentScheme, ComponentTargetURI, ComponentRequestTarget, "content-type", "x-multi", "host", ComponentMethod},
	}}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/protected/x?q=%2F", strings.NewReader("hello"))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", " b ")
	r := send(t, &http.Client{Transport: tr}, req)
	wantStatus(t, r, http.StatusOK, "")

	// Content-Digest with sha-256 and sha-512 is accepted when both match,
	// and refused when one does not.
	for _, tc := range []struct {
		field  string
		status int
	}{
		{ContentDigest([]byte("hello")) + ", " + sha512Digest([]byte("hello")), http.StatusOK},
		{sha512Digest([]byte("hello")), http.StatusOK},
		{ContentDigest([]byte("hello")) + ", " + sha512Digest([]byte("hellO")), http.StatusUnauthorized},
		{"md5=:XUFAKrxLKna5cZ2REBfFkg==:, " + ContentDigest([]byte("hello")), http.StatusOK},
		{"md5=:XUFAKrxLKna5cZ2REBfFkg==:", http.StatusBadRequest},
	} {
		req2, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/protected/y", strings.NewReader("hello"))
		p, _ := (&Signer{Key: kp, TwinID: 9}).Params(e.clk.Now())
		req2.Header.Set(HeaderContentDigest, tc.field)
		resignKeepingDigest(t, req2, kp, p)
		r = send(t, e.srv.Client(), req2)
		wantStatus(t, r, tc.status, "")
	}
}

func sha512Digest(b []byte) string {
	h, _ := newDigestHash(DigestSHA512)
	h.Write(b)
	d, _ := sfDict{{key: DigestSHA512, item: sfItem{bare: sfBytesOf(h.Sum(nil))}}}.serialize()
	return d
}

// resignKeepingDigest signs req's current headers (keeping its
// Content-Digest) with p.
func resignKeepingDigest(t *testing.T, req *http.Request, kp keys.KeyPair, p SignatureParams) {
	t.Helper()
	base, err := SignatureBase(req, p)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := kp.Sign(base)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := sfDict{{key: DefaultLabel, item: sfItem{bare: sfBytesOf(sig)}}}.serialize()
	req.Header.Set(HeaderSignature, f)
	in, err := p.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderSignatureInput, DefaultLabel+"="+in)
}

func TestStaleAndFuture(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprint("legacy=", legacy), func(t *testing.T) {
			e := newEnv(t, nil)
			kp := mustKey(t, keys.Ed25519)
			e.db.add(1, kp)
			signClock := newClock(e.clk.Now())
			c := &http.Client{Transport: &Transport{Base: e.srv.Client().Transport, Legacy: legacy,
				Signer: Signer{Key: kp, TwinID: 1, Now: signClock.Now}}}
			url := e.srv.URL + "/protected/"

			// Client clock 2 minutes behind: too old for both.
			signClock.Advance(-2 * time.Minute)
			wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusUnauthorized, "expired")
			// Client 2 minutes ahead: refused as future.
			signClock.Advance(4 * time.Minute)
			wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusUnauthorized, "not yet valid")
			// Small skews are fine: 3 s ahead (v2 skew 5 s, legacy 60 s).
			signClock.t = e.clk.Now().Add(3 * time.Second)
			wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusOK, "")
			if legacy {
				// Legacy: 59 s old and 59 s ahead pass, 61 s fail.
				signClock.t = e.clk.Now().Add(-59 * time.Second)
				wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusOK, "")
				signClock.t = e.clk.Now().Add(59 * time.Second)
				wantStatus(t, doReq(t, c, "GET", url+"b", nil), http.StatusOK, "")
				signClock.t = e.clk.Now().Add(61 * time.Second)
				wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusUnauthorized, "not yet valid")
				signClock.t = e.clk.Now().Add(-61 * time.Second)
				wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusUnauthorized, "expired")
			} else {
				// v2: 6 s ahead fails with the default 5 s skew.
				signClock.t = e.clk.Now().Add(6 * time.Second)
				wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusUnauthorized, "not yet valid")
				// Signed 59 s ago with 60 s validity: still valid; 61 s: expired.
				signClock.t = e.clk.Now().Add(-59 * time.Second)
				wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusOK, "")
				signClock.t = e.clk.Now().Add(-61 * time.Second)
				wantStatus(t, doReq(t, c, "GET", url, nil), http.StatusUnauthorized, "expired")
			}
		})
	}
}

func TestV2ValidityTooLong(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(1, kp)
	c := &http.Client{Transport: &Transport{Base: e.srv.Client().Transport,
		Signer: Signer{Key: kp, TwinID: 1, Now: e.clk.Now, Validity: 6 * time.Minute}}}
	wantStatus(t, doReq(t, c, "GET", e.srv.URL+"/protected/", nil), http.StatusUnauthorized, "validity too long")
	c.Transport.(*Transport).Signer.Validity = 5 * time.Minute
	wantStatus(t, doReq(t, c, "GET", e.srv.URL+"/protected/", nil), http.StatusOK, "")
}

func TestTamperedRequests(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*http.Request)
		msg    string
	}{
		{"body", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"amount":999}`))
			r.ContentLength = 14
		}, "digest mismatch"},
		{"body and digest", func(r *http.Request) {
			r.Body = io.NopCloser(strings.NewReader(`{"amount":999}`))
			r.ContentLength = 14
			r.Header.Set(HeaderContentDigest, ContentDigest([]byte(`{"amount":999}`)))
		}, "bad signature"},
		{"path", func(r *http.Request) { r.URL.Path = "/protected/other" }, "bad signature"},
		{"query", func(r *http.Request) { r.URL.RawQuery = "amount=2" }, "bad signature"},
		{"query removed", func(r *http.Request) { r.URL.RawQuery = "" }, "bad signature"},
		{"method", func(r *http.Request) { r.Method = http.MethodPut }, "bad signature"},
		{"keyid", func(r *http.Request) {
			r.Header.Set(HeaderSignatureInput, strings.Replace(r.Header.Get(HeaderSignatureInput), `keyid="5"`, `keyid="6"`, 1))
		}, "bad signature"},
		{"created", func(r *http.Request) {
			r.Header.Set(HeaderSignatureInput, strings.Replace(r.Header.Get(HeaderSignatureInput), `created=1718000000`, `created=1717999999`, 1))
		}, "bad signature"},
		{"coverage reduced", func(r *http.Request) {
			r.Header.Set(HeaderSignatureInput, strings.Replace(r.Header.Get(HeaderSignatureInput), `"@query" `, ``, 1))
		}, "does not cover"},
		{"signature bits", func(r *http.Request) {
			v := r.Header.Get(HeaderSignature)
			i := len("sig1=:") + 3
			c := byte('A')
			if v[i] == 'A' {
				c = 'B'
			}
			r.Header.Set(HeaderSignature, v[:i]+string(c)+v[i+1:])
		}, "bad signature"},
	}
	for _, scheme := range allSchemes {
		for _, tc := range cases {
			t.Run(string(scheme)+"/"+tc.name, func(t *testing.T) {
				e := newEnv(t, nil)
				kp := mustKey(t, scheme)
				e.db.add(5, kp)
				e.db.add(6, kp) // the keyid swap must fail on the signature, not the lookup
				var caps []captured
				c := e.client(kp, 5, false, recorder(e.srv.Client().Transport, &caps, tc.mutate))
				r := doReq(t, c, http.MethodPost, e.srv.URL+"/protected/pay?amount=1", []byte(`{"amount":1}`))
				wantStatus(t, r, http.StatusUnauthorized, tc.msg)
			})
		}
	}
}

func TestLegacyTampering(t *testing.T) {
	// Legacy X-Auth does not cover method, path or body: that is the point of
	// v2. What it does bind is the timestamp and twin id.
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(5, kp)
	e.db.add(6, mustKey(t, keys.Ed25519))
	v, err := SignLegacy(kp, 5, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	h, _ := ParseLegacyHeader(v)
	for name, challenge := range map[string][]byte{
		"twin":      LegacyChallenge(h.Timestamp, 6),
		"timestamp": LegacyChallenge(h.Timestamp+1, 5),
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.srv.URL+"/protected/", nil)
			req.Header.Set(HeaderXAuth, LegacyHeaderValue(challenge, h.Signature))
			wantStatus(t, send(t, e.srv.Client(), req), http.StatusUnauthorized, "bad signature")
		})
	}
}

func TestV2Replay(t *testing.T) {
	for _, scheme := range allSchemes {
		t.Run(string(scheme), func(t *testing.T) {
			e := newEnv(t, nil)
			kp := mustKey(t, scheme)
			e.db.add(3, kp)
			var caps []captured
			c := e.client(kp, 3, false, recorder(e.srv.Client().Transport, &caps, nil))
			wantStatus(t, doReq(t, c, "POST", e.srv.URL+"/protected/x", []byte("once")), http.StatusOK, "")
			// The captured request replayed verbatim is refused.
			wantStatus(t, e.replay(t, caps[0]), http.StatusUnauthorized, "replayed")
			// Still refused later within its validity.
			e.clk.Advance(50 * time.Second)
			wantStatus(t, e.replay(t, caps[0]), http.StatusUnauthorized, "replayed")
			// After expiry it is refused as expired (the nonce entry may be gone).
			e.clk.Advance(20 * time.Second)
			wantStatus(t, e.replay(t, caps[0]), http.StatusUnauthorized, "expired")
			// Same nonce in the same time but another twin: a separate namespace.
			// A legit client signing again gets a new nonce and passes.
			wantStatus(t, doReq(t, c, "POST", e.srv.URL+"/protected/x", []byte("once")), http.StatusOK, "")
		})
	}
}

func TestV2NonceReuseAfterExpiry(t *testing.T) {
	// Decision (docs/auth.md): a nonce is remembered until expires +
	// ClockSkew. A *new* signature reusing an old nonce is accepted only
	// after that, when the old signature can no longer be replayed anyway.
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(3, kp)
	sign := func() *http.Request {
		req, _ := http.NewRequest("GET", e.srv.URL+"/protected/n", nil)
		now := e.clk.Now()
		p := SignatureParams{Components: RequiredComponents(), Created: now, Expires: now.Add(10 * time.Second),
			Nonce: "fixed-nonce-0123456789", KeyID: "3"}
		if err := SignWithParams(req, nil, kp, "", p); err != nil {
			t.Fatal(err)
		}
		return req
	}
	wantStatus(t, send(t, e.srv.Client(), sign()), http.StatusOK, "")
	e.clk.Advance(5 * time.Second)
	wantStatus(t, send(t, e.srv.Client(), sign()), http.StatusUnauthorized, "replayed")
	// First signature expired at +10 s, remembered until +15 s.
	e.clk.Advance(9 * time.Second) // +14
	wantStatus(t, send(t, e.srv.Client(), sign()), http.StatusUnauthorized, "replayed")
	e.clk.Advance(2 * time.Second) // +16
	wantStatus(t, send(t, e.srv.Client(), sign()), http.StatusOK, "")
}

func TestLegacyReplayGuard(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.LegacyReplayGuard = true })
	kp := mustKey(t, keys.Sr25519)
	e.db.add(4, kp)
	var caps []captured
	c := e.client(kp, 4, true, recorder(e.srv.Client().Transport, &caps, nil))
	wantStatus(t, doReq(t, c, "POST", e.srv.URL+"/protected/up", []byte("a")), http.StatusOK, "")
	wantStatus(t, e.replay(t, caps[0]), http.StatusUnauthorized, "replayed")
	// Same header, another path or body: a different request, accepted
	// (legacy does not bind them; the guard only stops exact copies).
	other := caps[0]
	other.url = e.srv.URL + "/protected/other"
	wantStatus(t, e.replay(t, other), http.StatusOK, "")
	other = caps[0]
	other.body = []byte("b")
	wantStatus(t, e.replay(t, other), http.StatusOK, "")
	// The client re-signs a second later: accepted.
	e.clk.Advance(time.Second)
	wantStatus(t, doReq(t, c, "POST", e.srv.URL+"/protected/up", []byte("a")), http.StatusOK, "")
	// Without the guard the exact copy is accepted (registrar behaviour).
	e2 := newEnv(t, nil)
	e2.db.add(4, kp)
	var caps2 []captured
	c2 := e2.client(kp, 4, true, recorder(e2.srv.Client().Transport, &caps2, nil))
	wantStatus(t, doReq(t, c2, "POST", e2.srv.URL+"/protected/up", []byte("a")), http.StatusOK, "")
	wantStatus(t, e2.replay(t, caps2[0]), http.StatusOK, "")
}

func TestUnknownTwin(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		e := newEnv(t, nil)
		kp := mustKey(t, keys.Ed25519)
		c := e.client(kp, 99, legacy, nil)
		wantStatus(t, doReq(t, c, "GET", e.srv.URL+"/protected/", nil), http.StatusUnauthorized, "unknown twin")
		// Right twin id, wrong key.
		e.db.add(99, mustKey(t, keys.Ed25519))
		wantStatus(t, doReq(t, c, "GET", e.srv.URL+"/protected/", nil), http.StatusUnauthorized, "bad signature")
	}
}

func TestKeyLookupFailure(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Keys = TwinKeysFunc(func(context.Context, uint64) ([]byte, error) { return nil, errors.New("db down: secret detail") })
	})
	kp := mustKey(t, keys.Ed25519)
	r := doReq(t, e.client(kp, 1, false, nil), "GET", e.srv.URL+"/protected/", nil)
	wantStatus(t, r, http.StatusInternalServerError, "internal error")
	if strings.Contains(r.raw, "secret detail") {
		t.Fatal("internal error leaked")
	}
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 1000 })
	kp := mustKey(t, keys.Ed25519)
	e.db.add(1, kp)
	for _, legacy := range []bool{false, true} {
		c := e.client(kp, 1, legacy, nil)
		wantStatus(t, doReq(t, c, "POST", e.srv.URL+"/protected/", bytes.Repeat([]byte("x"), 1000)), http.StatusOK, "")
		wantStatus(t, doReq(t, c, "POST", e.srv.URL+"/protected/", bytes.Repeat([]byte("x"), 1001)), http.StatusRequestEntityTooLarge, "too large")
		// Chunked (no Content-Length): the cap still holds.
		req, _ := http.NewRequest("POST", e.srv.URL+"/protected/", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("y"), 3000))))
		req.ContentLength = -1
		wantStatus(t, send(t, c, req), http.StatusRequestEntityTooLarge, "too large")
	}
	// The default is 1 MiB.
	e2 := newEnv(t, nil)
	e2.db.add(1, kp)
	c := e2.client(kp, 1, false, nil)
	wantStatus(t, doReq(t, c, "POST", e2.srv.URL+"/protected/", bytes.Repeat([]byte("x"), 1<<20)), http.StatusOK, "")
	wantStatus(t, doReq(t, c, "POST", e2.srv.URL+"/protected/", bytes.Repeat([]byte("x"), 1<<20+1)), http.StatusRequestEntityTooLarge, "too large")
}

func TestLegacyDisabled(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DisableLegacy = true })
	kp := mustKey(t, keys.Ed25519)
	e.db.add(1, kp)
	r := doReq(t, e.client(kp, 1, true, nil), "GET", e.srv.URL+"/protected/", nil)
	wantStatus(t, r, http.StatusUnauthorized, "use signed requests v2")
	if r.header.Get(HeaderAcceptSignature) == "" {
		t.Fatal("no Accept-Signature hint")
	}
	wantStatus(t, doReq(t, e.client(kp, 1, false, nil), "GET", e.srv.URL+"/protected/", nil), http.StatusOK, "")
	// An unsigned request is not told to send the X-Auth it would be refused.
	r = doReq(t, e.srv.Client(), "GET", e.srv.URL+"/protected/", nil)
	wantStatus(t, r, http.StatusUnauthorized, "sign the request")
	if strings.Contains(r.errMsg, "X-Auth") {
		t.Fatalf("legacy disabled, yet the 401 suggests X-Auth: %q", r.errMsg)
	}
	// Where legacy is on, it is one of the ways.
	e2 := newEnv(t, nil)
	wantStatus(t, doReq(t, e2.srv.Client(), "GET", e2.srv.URL+"/protected/", nil), http.StatusUnauthorized, "or send X-Auth")
}

func TestOptional(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(1, kp)
	// Anonymous passes, with no caller.
	r := doReq(t, e.srv.Client(), "GET", e.srv.URL+"/open/", nil)
	wantStatus(t, r, http.StatusOK, "")
	if !r.echo.Anon {
		t.Fatal("anonymous request got a caller")
	}
	// Signed: the caller is set.
	r = doReq(t, e.client(kp, 1, false, nil), "GET", e.srv.URL+"/open/", nil)
	wantStatus(t, r, http.StatusOK, "")
	if r.echo.Anon || r.echo.TwinID != 1 {
		t.Fatalf("signed request: %+v", r.echo)
	}
	// Bad credentials are refused, not treated as anonymous.
	req, _ := http.NewRequest("GET", e.srv.URL+"/open/", nil)
	req.Header.Set(HeaderXAuth, "garbage")
	wantStatus(t, send(t, e.srv.Client(), req), http.StatusBadRequest, "X-Auth")
	// The mandatory middleware refuses anonymous requests.
	r = doReq(t, e.srv.Client(), "GET", e.srv.URL+"/protected/", nil)
	wantStatus(t, r, http.StatusUnauthorized, "missing credentials")
	if got := r.header.Get(HeaderAcceptSignature); got != `sig1=("@method" "@path" "@query" "content-digest")` {
		t.Fatalf("Accept-Signature %q", got)
	}
}

func TestTransportDoesNotMutateAndResigns(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(2, kp)
	var caps []captured
	c := e.client(kp, 2, false, recorder(e.srv.Client().Transport, &caps, nil))
	req, _ := http.NewRequest("POST", e.srv.URL+"/protected/r", bytes.NewReader([]byte("payload")))
	req.Header.Set("X-Custom", "1")
	before := req.Header.Clone()
	wantStatus(t, send(t, c, req), http.StatusOK, "")
	if len(req.Header) != len(before) || req.Header.Get(HeaderSignature) != "" {
		t.Fatalf("caller's request was modified: %v", req.Header)
	}
	// Resend the same request value (as a retry library would, via GetBody).
	wantStatus(t, send(t, c, req), http.StatusOK, "")
	if len(caps) != 2 {
		t.Fatalf("%d requests sent", len(caps))
	}
	if caps[0].header.Get(HeaderSignature) == caps[1].header.Get(HeaderSignature) {
		t.Fatal("retry reused the signature")
	}
	if string(caps[1].body) != "payload" {
		t.Fatalf("retry sent body %q", caps[1].body)
	}
}

func TestRedirectResigns(t *testing.T) {
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Ed25519)
	e.db.add(2, kp)
	redir := http.NewServeMux()
	redir.Handle("/", http.RedirectHandler(e.srv.URL+"/protected/after", http.StatusTemporaryRedirect))
	rs := newHTTPTestServer(t, redir)
	var caps []captured
	c := e.client(kp, 2, false, recorder(e.srv.Client().Transport, &caps, nil))
	r := doReq(t, c, "POST", rs+"/before", []byte("moved"))
	wantStatus(t, r, http.StatusOK, "")
	if r.echo.Body != "moved" || len(caps) != 2 {
		t.Fatalf("echo %+v after %d requests", r.echo, len(caps))
	}
	if caps[0].header.Get(HeaderSignatureInput) == caps[1].header.Get(HeaderSignatureInput) {
		t.Fatal("redirected request reused the signature parameters")
	}
}

func TestVerifierConfig(t *testing.T) {
	if _, err := NewVerifier(Config{}); err == nil {
		t.Fatal("NewVerifier without Keys succeeded")
	}
	v, err := NewVerifier(Config{Keys: &twinDB{}})
	if err != nil {
		t.Fatal(err)
	}
	if v.c.LegacyWindow != DefaultLegacyWindow || v.c.ClockSkew != DefaultClockSkew ||
		v.c.MaxValidity != DefaultMaxValidity || v.c.MaxBodyBytes != DefaultMaxBodyBytes || v.c.Nonces == nil {
		t.Fatalf("defaults not applied: %+v", v.c)
	}
}

func TestHTTPStatus(t *testing.T) {
	for err, want := range map[error]int{
		nil:                                 200,
		ErrMalformed:                        400,
		fmt.Errorf("x: %w", ErrReplay):      401,
		ErrNoCredentials:                    401,
		ErrBodyTooLarge:                     413,
		ErrNonceStoreFull:                   503,
		errors.New("db"):                    500,
		fmt.Errorf("%w", ErrUnknownTwin):    401,
		fmt.Errorf("%w", ErrLegacyDisabled): 401,
	} {
		if got := HTTPStatus(err); got != want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", err, got, want)
		}
	}
}
