package auth

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/keys"
)

// TestLegacyByteCompatibility builds X-Auth by hand from the registrar's
// documented format, with crypto/ed25519 and encoding/base64 only, and
// checks the verifier accepts it; and that the signer's output decodes to
// exactly that format.
func TestLegacyByteCompatibility(t *testing.T) {
	seed := []byte("0123456789abcdef0123456789abcdef")
	priv := ed25519.NewKeyFromSeed(seed)
	kp, err := keys.FromSeed(keys.Ed25519, seed)
	if err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, nil)
	e.db.add(42, kp)
	ts := e.clk.Now().Unix()

	challenge := []byte("1718000000:42") // "<unix_ts>:<twin_id>"
	if ts != 1718000000 {
		t.Fatal("test clock moved")
	}
	header := base64.StdEncoding.EncodeToString(challenge) + ":" +
		base64.StdEncoding.EncodeToString(ed25519.Sign(priv, challenge))

	req, _ := http.NewRequest("PATCH", e.srv.URL+"/protected/accounts/42", strings.NewReader(`{"relays":[]}`))
	req.Header.Set("X-Auth", header)
	r := send(t, e.srv.Client(), req)
	wantStatus(t, r, http.StatusOK, "")
	if r.echo.TwinID != 42 || r.echo.Method != MethodLegacy || r.echo.Scheme != "ed25519" {
		t.Fatalf("caller %+v", r.echo)
	}

	// The signer produces the same bytes (ed25519 is deterministic).
	got, err := SignLegacy(kp, 42, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got != header {
		t.Fatalf("SignLegacy = %q, want %q", got, header)
	}
	// ... and they parse back.
	chB64, sigB64, _ := strings.Cut(got, ":")
	ch, err := base64.StdEncoding.DecodeString(chB64)
	if err != nil || string(ch) != "1718000000:42" {
		t.Fatalf("challenge %q %v", ch, err)
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil || !ed25519.Verify(priv.Public().(ed25519.PublicKey), ch, sig) {
		t.Fatal("signature does not verify with crypto/ed25519")
	}
	h, err := ParseLegacyHeader(got)
	if err != nil || h.Timestamp != 1718000000 || h.TwinID != 42 || string(h.Challenge) != "1718000000:42" {
		t.Fatalf("ParseLegacyHeader: %+v %v", h, err)
	}
	if string(LegacyChallenge(1718000000, 42)) != "1718000000:42" {
		t.Fatal("LegacyChallenge")
	}
}

func TestLegacySr25519VerifyAny(t *testing.T) {
	// The registrar stores bare keys and tries ed25519 then sr25519.
	e := newEnv(t, nil)
	kp := mustKey(t, keys.Sr25519)
	e.db.add(8, kp)
	v, err := SignLegacy(kp, 8, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/protected/", nil)
	req.Header.Set(HeaderXAuth, v)
	r := send(t, e.srv.Client(), req)
	wantStatus(t, r, http.StatusOK, "")
	if r.echo.Scheme != "sr25519" {
		t.Fatalf("scheme %q", r.echo.Scheme)
	}
}

func TestParseLegacyHeader(t *testing.T) {
	b := base64.StdEncoding.EncodeToString
	sig := b(make([]byte, 64))
	good := []struct {
		in   string
		ts   int64
		twin uint64
	}{
		{b([]byte("1718000000:42")) + ":" + sig, 1718000000, 42},
		{b([]byte("-5:0")) + ":" + sig, -5, 0},
		{b([]byte("+7:18446744073709551615")) + ":" + sig, 7, 18446744073709551615},
		{b([]byte("0001:01")) + ":", 1, 1}, // empty signature parses; it fails verification
	}
	for _, tc := range good {
		h, err := ParseLegacyHeader(tc.in)
		if err != nil || h.Timestamp != tc.ts || h.TwinID != tc.twin {
			t.Errorf("ParseLegacyHeader(%q) = %+v, %v", tc.in, h, err)
		}
	}
	bad := map[string]string{
		"empty":              "",
		"no colon":           b([]byte("1:2")),
		"three parts":        b([]byte("1:2")) + ":" + sig + ":" + sig,
		"challenge not b64":  "!!!:" + sig,
		"challenge unpadded": strings.TrimRight(b([]byte("1718000000:42")), "=") + ":" + sig,
		"challenge url b64":  base64.URLEncoding.EncodeToString([]byte("1718000000:4?>")) + ":" + sig,
		"sig not b64":        b([]byte("1:2")) + ":" + "a_b-",
		"sig unpadded":       b([]byte("1:2")) + ":" + strings.TrimRight(sig, "="),
		"challenge no colon": b([]byte("17180000")) + ":" + sig,
		"challenge 3 parts":  b([]byte("1:2:3")) + ":" + sig,
		"ts not a number":    b([]byte("abc:2")) + ":" + sig,
		"ts empty":           b([]byte(":2")) + ":" + sig,
		"ts overflow":        b([]byte("99999999999999999999:2")) + ":" + sig,
		"twin negative":      b([]byte("1:-2")) + ":" + sig,
		"twin plus":          b([]byte("1:+2")) + ":" + sig,
		"twin empty":         b([]byte("1:")) + ":" + sig,
		"twin hex":           b([]byte("1:0x2")) + ":" + sig,
		"twin spaces":        b([]byte("1: 2")) + ":" + sig,
	}
	for name, in := range bad {
		if h, err := ParseLegacyHeader(in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseLegacyHeader(%q) = %+v, %v; want ErrMalformed", name, in, h, err)
		}
	}
}

func TestAccountChallenge(t *testing.T) {
	now := time.Unix(1718000000, 0)
	for _, scheme := range allSchemes {
		kp := mustKey(t, scheme)
		a, err := SignAccount(kp, now)
		if err != nil {
			t.Fatal(err)
		}
		// Built by hand: "<ts>:<base64 std of the key>".
		want := "1718000000:" + base64.StdEncoding.EncodeToString(kp.Public().Key)
		if string(AccountChallenge(1718000000, kp.Public().Key)) != want {
			t.Fatalf("AccountChallenge = %q", AccountChallenge(1718000000, kp.Public().Key))
		}
		sig, _ := base64.StdEncoding.DecodeString(a.Signature)
		if !kp.Public().Verify([]byte(want), sig) {
			t.Fatal("account signature is not over the documented challenge")
		}
		pub, got, err := VerifyAccount(a, now, 0)
		if err != nil || got != scheme || string(pub) != string(kp.Public().Key) {
			t.Fatalf("VerifyAccount: %v %v", got, err)
		}
		// Window: 2 s by default, both directions.
		if _, _, err := VerifyAccount(a, now.Add(2*time.Second), 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := VerifyAccount(a, now.Add(3*time.Second), 0); !errors.Is(err, ErrExpired) {
			t.Fatalf("3 s late: %v", err)
		}
		if _, _, err := VerifyAccount(a, now.Add(-3*time.Second), 0); !errors.Is(err, ErrNotYetValid) {
			t.Fatalf("3 s early: %v", err)
		}
		if _, _, err := VerifyAccount(a, now.Add(-30*time.Second), time.Minute); err != nil {
			t.Fatalf("custom window: %v", err)
		}
		// Tampering.
		b := a
		b.Timestamp++
		if _, _, err := VerifyAccount(b, now, 0); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("other timestamp: %v", err)
		}
		b = a
		b.PublicKey = base64.StdEncoding.EncodeToString(mustKey(t, scheme).Public().Key)
		if _, _, err := VerifyAccount(b, now, 0); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("other key: %v", err)
		}
		for _, pk := range []string{"", "AAAA", "not base64!", strings.TrimRight(a.PublicKey, "=")} {
			b = a
			b.PublicKey = pk
			if _, _, err := VerifyAccount(b, now, 0); !errors.Is(err, ErrMalformed) {
				t.Fatalf("public key %q: %v", pk, err)
			}
		}
		b = a
		b.Signature = "%%%"
		if _, _, err := VerifyAccount(b, now, 0); !errors.Is(err, ErrMalformed) {
			t.Fatalf("bad signature encoding: %v", err)
		}
	}
	if _, err := SignAccount(nil, now); err == nil {
		t.Fatal("SignAccount(nil) succeeded")
	}
	if _, err := SignLegacy(nil, 1, now); err == nil {
		t.Fatal("SignLegacy(nil) succeeded")
	}
}
