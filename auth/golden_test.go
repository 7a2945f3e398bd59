package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
)

// The worked example of docs/auth.md. Every value here is printed in the
// document; TestDocExample checks the document still contains them, and the
// tests below check the code still produces them. The key is the ed25519
// //Alice key of the Substrate development phrase.
const (
	exampleSURI       = keys.DevPhrase + "//Alice"
	exampleSeedHex    = "abf8e5bdbe30c65656c0a3cbd181ff8a56294a69dfedd27982aace4a76909115"
	examplePubB64     = "iNw0F9UFjsS0UD4MEuoaCom+IA/piSJCPUM0AU+msO4="
	exampleTwin       = 42
	exampleTS         = 1718000000
	exampleURL        = "https://registrar.grid4.example/api/v1/farms?dry_run=true"
	exampleBody       = `{"farm_name":"alicefarm","twin_id":42,"dedicated":false}`
	exampleNonce      = "Z3JpZDQtZXhhbXBsZS1ub25jZQ" // base64url("grid4-example-nonce")
	exampleDigest     = "sha-256=:vus2BYHjUmWQtSGuD11DaQDfGE8DmGgZlEQLlTm2Lxs=:"
	exampleParams     = `("@method" "@path" "@query" "content-digest");created=1718000000;expires=1718000060;nonce="Z3JpZDQtZXhhbXBsZS1ub25jZQ";keyid="42";alg="ed25519"`
	exampleSigInput   = "sig1=" + exampleParams
	exampleSigB64     = "zJgh1pZxdoNDG0PyRHdipU8OFbVnjzQiueZIWJCcYOj9D4g4k1NF7Uss2ESbZEc5U9I1iU4FuLdw0PIYM7C0BQ=="
	exampleSignature  = "sig1=:" + exampleSigB64 + ":"
	exampleBase       = "\"@method\": POST\n\"@path\": /api/v1/farms\n\"@query\": ?dry_run=true\n\"content-digest\": " + exampleDigest + "\n\"@signature-params\": " + exampleParams
	exampleChallenge  = "1718000000:42"
	exampleLegacySig  = "LE9j33RYsz0tOjSAIwH/U4kHCTdSwGPSzt/jq+Ih0a4vh6d4wskkT6Q39c5Vw4JAEfRY8iFF3n55maDAPF7WAg=="
	exampleXAuth      = "MTcxODAwMDAwMDo0Mg==:" + exampleLegacySig
	exampleAccountMsg = "1718000000:" + examplePubB64
	exampleAccountSig = "cdMTB94Ufylk7EvX2WtqOBngDY7hh9SS1K0b57tq2OfysKqEDNT8PUOeKe3GnfjOZT6gtAcs85xdN7UKI9YfCA=="
)

func exampleKey(t testing.TB) keys.KeyPair {
	t.Helper()
	kp, err := keys.FromSecretURI(keys.Ed25519, exampleSURI)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(kp.Seed()); got != exampleSeedHex {
		t.Fatalf("//Alice ed25519 seed %s, want %s", got, exampleSeedHex)
	}
	if got := base64.StdEncoding.EncodeToString(kp.Public().Key); got != examplePubB64 {
		t.Fatalf("//Alice ed25519 public key %s", got)
	}
	return kp
}

func exampleParamsValue() SignatureParams {
	return SignatureParams{
		Components: RequiredComponents(),
		Created:    time.Unix(exampleTS, 0),
		Expires:    time.Unix(exampleTS+60, 0),
		Nonce:      exampleNonce,
		KeyID:      "42",
		Alg:        AlgEd25519,
	}
}

func TestGoldenV2(t *testing.T) {
	kp := exampleKey(t)
	req, _ := http.NewRequest("POST", exampleURL, strings.NewReader(exampleBody))
	p := exampleParamsValue()
	if err := SignWithParams(req, []byte(exampleBody), kp, "", p); err != nil {
		t.Fatal(err)
	}
	base, err := SignatureBase(req, p)
	if err != nil {
		t.Fatal(err)
	}
	if string(base) != exampleBase {
		t.Fatalf("signature base:\n%s\nwant:\n%s", base, exampleBase)
	}
	if s, _ := p.Serialize(); s != exampleParams {
		t.Fatalf("params %s", s)
	}
	for h, want := range map[string]string{
		HeaderContentDigest:  exampleDigest,
		HeaderSignatureInput: exampleSigInput,
		HeaderSignature:      exampleSignature,
	} {
		if got := req.Header.Get(h); got != want {
			t.Fatalf("%s: %s\nwant %s", h, got, want)
		}
	}
	// Independently: crypto/ed25519 over the literal base.
	priv := ed25519.NewKeyFromSeed(kp.Seed())
	if got := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(exampleBase))); got != exampleSigB64 {
		t.Fatalf("crypto/ed25519 signature %s", got)
	}

	// A server whose clock is 10 s later accepts the very same headers, on
	// loopback and as an incoming request built from the wire form.
	e := newEnv(t, nil)
	e.db.add(exampleTwin, kp)
	e.clk.Advance(10 * time.Second)
	mux := http.NewServeMux()
	mux.Handle("/api/", e.v.Middleware(http.HandlerFunc(echoHandler)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	wire, _ := http.NewRequest("POST", srv.URL+"/api/v1/farms?dry_run=true", strings.NewReader(exampleBody))
	wire.Header = req.Header.Clone()
	r := send(t, srv.Client(), wire)
	wantStatus(t, r, http.StatusOK, "")
	if r.echo.TwinID != exampleTwin || r.echo.Body != exampleBody {
		t.Fatalf("echo %+v", r.echo)
	}
}

func TestEmptyBodyDigest(t *testing.T) {
	const want = "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
	if ContentDigest(nil) != want || ContentDigest([]byte{}) != want {
		t.Fatalf("empty digest %s", ContentDigest(nil))
	}
	if err := VerifyContentDigest(want, nil); err != nil {
		t.Fatal(err)
	}
}

func TestGoldenLegacyAndAccount(t *testing.T) {
	kp := exampleKey(t)
	x, err := SignLegacy(kp, exampleTwin, time.Unix(exampleTS, 0))
	if err != nil {
		t.Fatal(err)
	}
	if x != exampleXAuth {
		t.Fatalf("X-Auth %s", x)
	}
	if string(LegacyChallenge(exampleTS, exampleTwin)) != exampleChallenge {
		t.Fatal("challenge")
	}
	a, err := SignAccount(kp, time.Unix(exampleTS, 0))
	if err != nil {
		t.Fatal(err)
	}
	if a.PublicKey != examplePubB64 || a.Signature != exampleAccountSig || a.Timestamp != exampleTS {
		t.Fatalf("account %+v", a)
	}
	if string(AccountChallenge(exampleTS, kp.Public().Key)) != exampleAccountMsg {
		t.Fatal("account challenge")
	}
}

// TestDocExample keeps docs/auth.md and the code in step: the document must
// print exactly the values the code produces.
func TestDocExample(t *testing.T) {
	doc, err := os.ReadFile("../docs/auth.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"seed":                 exampleSeedHex,
		"public key":           examplePubB64,
		"body":                 exampleBody,
		"content digest":       "Content-Digest: " + exampleDigest,
		"signature input":      "Signature-Input: " + exampleSigInput,
		"signature":            "Signature: " + exampleSignature,
		"signature base":       exampleBase,
		"v2 signature base64":  exampleSigB64,
		"legacy challenge":     exampleChallenge,
		"legacy signature":     exampleLegacySig,
		"X-Auth":               "X-Auth: " + exampleXAuth,
		"account challenge":    exampleAccountMsg,
		"account signature":    exampleAccountSig,
		"nonce":                exampleNonce,
		"example request line": "POST /api/v1/farms?dry_run=true HTTP/1.1",
		"empty-body digest":    ContentDigest(nil),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("docs/auth.md does not contain the %s:\n%s", name, want)
		}
	}
}

// TestRFC9421B26 reproduces the ed25519 example of RFC 9421 appendix
// B.2.6 (published test key and signature) with an incoming request.
func TestRFC9421B26(t *testing.T) {
	seed, _ := base64.RawURLEncoding.DecodeString("n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU")
	kp, err := keys.FromSeed(keys.Ed25519, seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := base64.RawURLEncoding.EncodeToString(kp.Public().Key); got != "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs" {
		t.Fatalf("RFC test key public %s", got)
	}
	req := httptest.NewRequest("POST", "/foo?param=Value&Pet=dog", strings.NewReader(`{"hello": "world"}`))
	req.Host = "example.com"
	req.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Length", "18")
	const input = `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
	const wantBase = "\"date\": Tue, 20 Apr 2021 02:07:55 GMT\n\"@method\": POST\n\"@path\": /foo\n\"@authority\": example.com\n" +
		"\"content-type\": application/json\n\"content-length\": 18\n" +
		"\"@signature-params\": (\"date\" \"@method\" \"@path\" \"@authority\" \"content-type\" \"content-length\");created=1618884473;keyid=\"test-key-ed25519\""
	const wantSig = "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="

	// From the parsed Signature-Input, as the verifier does.
	d, err := parseSFDictionary(input)
	if err != nil {
		t.Fatal(err)
	}
	base, err := signatureBase(req, d[0].inner)
	if err != nil {
		t.Fatal(err)
	}
	if string(base) != wantBase {
		t.Fatalf("base:\n%s", base)
	}
	// From SignatureParams, as the signer does.
	base2, err := SignatureBase(req, SignatureParams{
		Components: []string{"date", "@method", "@path", "@authority", "content-type", "content-length"},
		Created:    time.Unix(1618884473, 0), KeyID: "test-key-ed25519",
	})
	if err != nil || string(base2) != wantBase {
		t.Fatalf("SignatureBase: %v\n%s", err, base2)
	}
	sig, _ := kp.Sign(base)
	if got := base64.StdEncoding.EncodeToString(sig); got != wantSig {
		t.Fatalf("signature %s, want %s", got, wantSig)
	}
}

// TestDerivedComponents checks every supported derived component, for an
// outgoing request and for the same request as the server sees it.
func TestDerivedComponents(t *testing.T) {
	comps := []string{ComponentMethod, ComponentAuthority, ComponentScheme, ComponentTargetURI,
		ComponentRequestTarget, ComponentPath, ComponentQuery, "x-list", "host"}
	want := map[string]string{
		ComponentMethod:        "PATCH",
		ComponentAuthority:     "example.com",
		ComponentScheme:        "https",
		ComponentTargetURI:     "https://example.com/a%2Fb/c%20d?x=1&y=%20&y=2",
		ComponentRequestTarget: "/a%2Fb/c%20d?x=1&y=%20&y=2",
		ComponentPath:          "/a%2Fb/c%20d",
		ComponentQuery:         "?x=1&y=%20&y=2",
		"x-list":               "a, b,c, d",
	}
	target := "https://Example.COM:443/a%2Fb/c%20d?x=1&y=%20&y=2"

	client, _ := http.NewRequest("PATCH", target, nil)
	client.Header.Add("X-List", "a")
	client.Header.Add("X-List", " b,c ")
	client.Header.Add("X-List", "d")

	serverAbs := httptest.NewRequest("PATCH", target, nil) // absolute-form request target
	serverAbs.Header = client.Header.Clone()

	serverOrigin := httptest.NewRequest("PATCH", "/a%2Fb/c%20d?x=1&y=%20&y=2", nil)
	serverOrigin.Host = "EXAMPLE.com:443"
	serverOrigin.TLS = serverAbs.TLS
	serverOrigin.Header = client.Header.Clone()

	for name, r := range map[string]*http.Request{"client": client, "server absolute": serverAbs, "server origin": serverOrigin} {
		for _, c := range comps {
			got, err := componentValue(r, c)
			if err != nil {
				t.Fatalf("%s %s: %v", name, c, err)
			}
			if w, ok := want[c]; ok && got != w {
				t.Errorf("%s %s = %q, want %q", name, c, got, w)
			}
		}
	}
	// The header was not modified by trimming.
	if client.Header.Values("X-List")[1] != " b,c " {
		t.Fatal("componentValue modified the header")
	}

	// Defaults: no query gives "?", empty path gives "/", http drops :80.
	r, _ := http.NewRequest("", "http://h.example:80", nil)
	for c, w := range map[string]string{ComponentQuery: "?", ComponentPath: "/", ComponentAuthority: "h.example",
		ComponentMethod: "GET", ComponentTargetURI: "http://h.example/", ComponentScheme: "http"} {
		if got, _ := componentValue(r, c); got != w {
			t.Errorf("%s = %q, want %q", c, got, w)
		}
	}
	r, _ = http.NewRequest("GET", "http://h.example:8080/p?", nil)
	if got, _ := componentValue(r, ComponentAuthority); got != "h.example:8080" {
		t.Errorf("authority %q", got)
	}
	if got, _ := componentValue(r, ComponentQuery); got != "?" {
		t.Errorf("empty query %q", got)
	}
	// An absent covered field fails.
	if _, err := componentValue(r, "x-absent"); err == nil {
		t.Error("absent field has a value")
	}
}

func TestSignerErrors(t *testing.T) {
	kp := mustKey(t, keys.Ed25519)
	req, _ := http.NewRequest("GET", "http://x/", nil)
	p := exampleParamsValue()
	for name, f := range map[string]func() error{
		"no key":          func() error { return SignWithParams(req, nil, nil, "", p) },
		"bad label":       func() error { return SignWithParams(req, nil, kp, "Sig", p) },
		"alg mismatch":    func() error { q := p; q.Alg = "sr25519"; return SignWithParams(req, nil, kp, "", q) },
		"bad component":   func() error { q := p; q.Components = []string{"@status"}; return SignWithParams(req, nil, kp, "", q) },
		"upper component": func() error { q := p; q.Components = []string{"X-Foo"}; return SignWithParams(req, nil, kp, "", q) },
		"absent field":    func() error { q := p; q.Components = []string{"x-foo"}; return SignWithParams(req, nil, kp, "", q) },
		"duplicate": func() error {
			q := p
			q.Components = []string{"@path", "@path"}
			return SignWithParams(req, nil, kp, "", q)
		},
		"bad nonce":     func() error { q := p; q.Nonce = "é"; return SignWithParams(req, nil, kp, "", q) },
		"signer no key": func() error { return (&Signer{}).Sign(req, nil) },
	} {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// Extra components are appended once, after the required ones.
	s := &Signer{Key: kp, TwinID: 1, Components: []string{"@path", "@authority"}}
	q, err := s.Params(time.Unix(100, 500))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(q.Components, " ") != "@method @path @query content-digest @authority" ||
		q.Created.Unix() != 100 || q.Expires.Unix() != 160 || len(q.Nonce) != 22 || q.KeyID != "1" || q.Alg != "ed25519" {
		t.Fatalf("params %+v", q)
	}
	if n1, n2 := NewNonce(), NewNonce(); n1 == n2 {
		t.Fatal("nonces repeat")
	}
}
