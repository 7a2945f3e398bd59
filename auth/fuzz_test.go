package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
)

// Seed inputs live in testdata/fuzz/<FuzzName>/ as well as in f.Add below.

func FuzzParseLegacyHeader(f *testing.F) {
	f.Add(exampleXAuth)
	f.Add("MTcxODAwMDAwMDo0Mg==:")
	f.Add("::")
	f.Add("MTox:AAAA")
	f.Add("MTcxODAwMDAwMDo0Mw==:QR==")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseLegacyHeader(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// The challenge is exactly "<ts>:<twin>" as parsed.
		ts, twin, ok := strings.Cut(string(h.Challenge), ":")
		if !ok || strings.Contains(twin, ":") || ts == "" || twin == "" {
			t.Fatalf("accepted challenge %q", h.Challenge)
		}
		// What parses is the one spelling of its bytes, so a replay guard
		// cannot be walked around by re-spelling.
		if canon := LegacyHeaderValue(h.Challenge, h.Signature); canon != s {
			t.Fatalf("accepted %q, a re-spelling of %q", s, canon)
		}
		// Re-encoding parses back to the same values.
		h2, err := ParseLegacyHeader(LegacyHeaderValue(h.Challenge, h.Signature))
		if err != nil || h2.Timestamp != h.Timestamp || h2.TwinID != h.TwinID ||
			!bytes.Equal(h2.Challenge, h.Challenge) || !bytes.Equal(h2.Signature, h.Signature) {
			t.Fatalf("re-encoding %q: %+v %v", s, h2, err)
		}
	})
}

// FuzzParseSignatureInput fuzzes the RFC 8941 dictionary parser (used for
// Signature-Input, Signature and Content-Digest) and the v2 header checks.
func FuzzParseSignatureInput(f *testing.F) {
	f.Add(exampleSigInput, exampleSignature)
	f.Add(`sig-b26=("date" "@method");created=1618884473;keyid="test-key-ed25519"`, `sig-b26=:AAAA:`)
	f.Add(`a=1.5, b=?0, c=:AQ==:, d=tok/x:y, e=("x";p=1 2);q="s\"\\"`, ``)
	f.Add(`a=(`, `a=:`)
	f.Fuzz(func(t *testing.T, input, sig string) {
		d, err := parseSFDictionary(input)
		if err != nil {
			if !errors.Is(err, errSF) {
				t.Fatalf("error %v does not wrap errSF", err)
			}
		} else {
			// A parsed dictionary always serializes, and serialization is a
			// fixed point of parse+serialize.
			s1, err := d.serialize()
			if err != nil {
				t.Fatalf("parsed %q but cannot serialize: %v", input, err)
			}
			d2, err := parseSFDictionary(s1)
			if err != nil {
				t.Fatalf("serialization %q of %q does not parse: %v", s1, input, err)
			}
			s2, err := d2.serialize()
			if err != nil || s2 != s1 {
				t.Fatalf("not a fixed point: %q -> %q -> %q (%v)", input, s1, s2, err)
			}
		}
		_, _ = parseSFItem(input)
		_, _ = parseSFInnerList(input)

		r := httptest.NewRequest("GET", "/x?y", nil)
		r.Header.Set(HeaderSignatureInput, input)
		r.Header.Set(HeaderSignature, sig)
		if s, err := parseV2(r); err == nil {
			if _, err := signatureBase(r, s.input); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("signatureBase error %v", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("parseV2 error %v does not wrap ErrMalformed", err)
		}
	})
}

func FuzzParseContentDigest(f *testing.F) {
	f.Add(exampleDigest, []byte(exampleBody))
	f.Add(ContentDigest(nil), []byte{})
	f.Add(sha512Digest([]byte("x"))+", "+ContentDigest([]byte("x")), []byte("x"))
	f.Add("md5=:AAAA:, sha-256=?1", []byte("y"))
	f.Fuzz(func(t *testing.T, field string, body []byte) {
		m, err := ParseContentDigest(field)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if len(m) == 0 {
			t.Fatal("accepted a field without a known digest")
		}
		for alg, d := range m {
			if _, size := newDigestHash(alg); size != len(d) {
				t.Fatalf("%s digest of %d bytes accepted", alg, len(d))
			}
		}
		err = VerifyContentDigest(field, body)
		if err != nil && !errors.Is(err, ErrDigestMismatch) {
			t.Fatalf("verify error %v", err)
		}
		if err == nil && m[DigestSHA256] != nil && ContentDigest(body) != "sha-256=:"+b64(m[DigestSHA256])+":" {
			t.Fatal("accepted a wrong sha-256 digest")
		}
	})
}

// FuzzMiddleware sends arbitrary header values, target and body through the
// middleware: it must never panic, and must refuse with a 4xx JSON error
// (unless the fuzzer produced a genuinely valid signature, which the fixed
// seeds do: then the handler must see twin 1).
func FuzzMiddleware(f *testing.F) {
	kp, err := keys.FromSecretURI(keys.Ed25519, exampleSURI)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("POST", "/api/v1/farms?dry_run=true", exampleSigInput, exampleSignature, exampleDigest, "", []byte(exampleBody))
	f.Add("GET", "/", "", "", "", exampleXAuth, []byte{})
	f.Add("GET", "/", "sig1=()", "sig1=:AAAA:", "sha-256=:AAAA:", "x", []byte{})
	f.Add("PUT", "*", `sig1=("@method" "@path" "@query" "content-digest" "@target-uri" "@authority" "@scheme" "@request-target" "host" "x-y");created=1718000000;expires=1718000060;nonce="abcdefghijklmnopqrstuv";keyid="42";alg="sr25519"`, exampleSignature, exampleDigest, "", []byte("{}"))
	f.Add("GET", "http://h/p?q", "", "", "", "MTcxODAwMDAwMDo0Mg==:AAAA", []byte{})
	f.Fuzz(func(t *testing.T, method, target, si, sig, digest, xauth string, body []byte) {
		db := &twinDB{}
		db.add(exampleTwin, kp)
		now := func() time.Time { return time.Unix(exampleTS+1, 0) }
		v, err := NewVerifier(Config{Keys: db, Now: now, MaxBodyBytes: 4096, LegacyReplayGuard: len(body)%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		var saw *Caller
		h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := CallerFrom(r.Context())
			saw = &c
			b, err := io.ReadAll(r.Body)
			if err != nil || !bytes.Equal(b, body) {
				t.Errorf("handler got body %q, %v", b, err)
			}
		}))
		u, err := url.ParseRequestURI(target)
		if err != nil {
			u = &url.URL{Path: "/"}
		}
		r := &http.Request{
			Method: method, URL: u, RequestURI: target, Host: "registrar.grid4.example",
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)),
		}
		r = r.WithContext(t.Context())
		for k, val := range map[string]string{HeaderSignatureInput: si, HeaderSignature: sig, HeaderContentDigest: digest, HeaderXAuth: xauth} {
			if val != "" {
				r.Header.Set(k, val)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if saw != nil {
			if w.Code != http.StatusOK || saw.TwinID != exampleTwin {
				t.Fatalf("handler ran with caller %+v, status %d", *saw, w.Code)
			}
			return
		}
		if w.Code < 400 || w.Code > 499 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		var e map[string]string
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e["error"] == "" || len(e) != 1 {
			t.Fatalf("error body %q: %v", w.Body, err)
		}
	})
}

func b64(b []byte) string {
	s, _ := sfDict{{key: "a", item: sfItem{bare: sfBytesOf(b)}}}.serialize()
	return strings.TrimSuffix(strings.TrimPrefix(s, "a=:"), ":")
}
