package registrar

// Regression tests for what an outside probe got through (issue 10, items
// 1, 2, 3 and 12), on every store.

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/registrar/api"
)

// header sets a fixed X-Auth value.
func header(v string) signer {
	return func(_ testing.TB, req *http.Request, _ []byte) { req.Header.Set("X-Auth", v) }
}

// TestLegacyRespelledHeaderNotReplayable: a captured X-Auth header was
// accepted once per re-spelling of its base64 (16 times).
func TestLegacyRespelledHeaderNotReplayable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		nodeTw := h.newTwin()
		node := h.newNode(nodeTw, h.newFarm(farmer))
		path := fmt.Sprintf("/api/v1/nodes/%d/uptime", node)
		body := map[string]any{"uptime": 100, "timestamp": h.clock.Now().Unix()}
		captured := xauth(nodeTw, h.clock.Now().Unix())
		h.do("POST", path, body, header(captured)).want(t, http.StatusCreated)

		ch, sig, _ := strings.Cut(captured, ":")
		spellings := strictb64.Respellings(sig)
		if len(spellings) != 15 {
			t.Fatalf("%d re-spellings of a 64-byte signature, want 15", len(spellings))
		}
		for _, v := range spellings {
			r := h.do("POST", path, body, header(ch+":"+v)).want(t, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(t), "base64") {
				t.Errorf("re-spelled header: %s", r.body)
			}
		}
		// Replayed as is, or with the path spelled another way (its
		// first digit percent-encoded): the same request.
		id := fmt.Sprint(node)
		for _, p := range []string{path, "/api/v1/nodes/%3" + id[:1] + id[1:] + "/uptime"} {
			r := h.do("POST", p, body, header(captured)).want(t, http.StatusUnauthorized)
			if !strings.Contains(r.errMsg(t), "already accepted") {
				t.Errorf("replay on %s: %s", p, r.body)
			}
		}
		sessions, err := h.db.UptimeSessions(t.Context(), node, time.Time{}, h.clock.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(sessions) != 1 {
			t.Errorf("%d uptime sessions after one accepted report", len(sessions))
		}
	})
}

// TestAdminLegacyHeader: a captured legacy admin header published any
// version within the legacy window.
func TestAdminLegacyHeader(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		admin := h.newTwin()

		// Default: admin routes refuse X-Auth and take v2.
		strict := newHarnessOn(t, h.db, h.clock, func(c *Config) { c.AdminTwins = []uint64{admin.id} })
		r := strict.do("PUT", "/api/v1/zos/version", map[string]any{"version": "v4.1.0", "safe_to_upgrade": true}, strict.legacy(admin)).want(t, http.StatusUnauthorized)
		if !strings.Contains(r.errMsg(t), "refused on this route") {
			t.Errorf("legacy on an admin route: %s", r.body)
		}
		strict.do("POST", "/api/v1/zos/versions", map[string]any{"version": "v4.1.0", "safe_to_upgrade": false}, strict.v2(admin)).want(t, http.StatusCreated)

		// With --admin-legacy-auth: each header once, whatever the body
		// and route.
		compat := newHarnessOn(t, h.db, h.clock, func(c *Config) { c.AdminTwins, c.AdminLegacyAuth = []uint64{admin.id}, true })
		h.clock.Advance(time.Second)
		captured := header(xauth(admin, h.clock.Now().Unix()))
		compat.do("PUT", "/api/v1/zos/version", map[string]any{"version": "v4.1.1", "safe_to_upgrade": false}, captured).want(t, http.StatusOK)
		for _, try := range []struct{ method, path string }{{"PUT", "/api/v1/zos/version"}, {"POST", "/api/v1/zos/versions"}, {"PUT", "/v1/zos/version"}} {
			r := compat.do(try.method, try.path, map[string]any{"version": "v6.6.6", "safe_to_upgrade": true}, captured).want(t, http.StatusUnauthorized)
			if !strings.Contains(r.errMsg(t), "already used") {
				t.Errorf("%s %s with a used admin header: %s", try.method, try.path, r.body)
			}
		}
		// The same header replayed on the other process is refused too:
		// the record is in the shared store.
		compat2 := newHarnessOn(t, h.db, h.clock, func(c *Config) { c.AdminTwins, c.AdminLegacyAuth = []uint64{admin.id}, true })
		compat2.do("POST", "/api/v1/zos/versions", map[string]any{"version": "v6.6.6", "safe_to_upgrade": true}, captured).want(t, http.StatusUnauthorized)

		cur, err := h.db.CurrentZosVersion(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if cur.Version != "v4.1.1" || cur.SafeToUpgrade {
			t.Errorf("current version %+v, want v4.1.1 not safe", cur)
		}
		// A fresh header a second later works.
		h.clock.Advance(time.Second)
		compat.do("PUT", "/api/v1/zos/version", map[string]any{"version": "v4.1.2", "safe_to_upgrade": true}, compat.legacy(admin)).want(t, http.StatusOK)
	})
}

// Small-order ed25519 encodings (the identity first) and the sr25519
// identity.
var weakKeys = []string{
	"0100000000000000000000000000000000000000000000000000000000000000",
	"0000000000000000000000000000000000000000000000000000000000000000",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

// identityForgery is a signature that crypto/ed25519 accepts for every
// message under the identity key: R = B, S = 1.
const identityForgery = "5866666666666666666666666666666666666666666666666666666666666666" +
	"0100000000000000000000000000000000000000000000000000000000000000"

// TestWeakKeysRefused: an account whose key was the identity point was
// created, after which one fixed signature verified every request.
func TestWeakKeysRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		forged, _ := hex.DecodeString(identityForgery)
		for _, k := range weakKeys {
			pub, _ := hex.DecodeString(k)
			pubB64 := base64.StdEncoding.EncodeToString(pub)
			ts := h.clock.Now().Unix()
			r := h.do("POST", "/api/v1/accounts", map[string]any{
				"public_key": pubB64, "timestamp": ts,
				"signature": base64.StdEncoding.EncodeToString(forged), "relays": []string{}, "rmb_enc_key": "",
			}, nil).want(t, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(t), "invalid public key") {
				t.Errorf("weak key %s: %s", k, r.body)
			}
		}

		// A weak key already in the store (written before the check
		// existed) verifies nothing.
		identity, _ := hex.DecodeString(weakKeys[0])
		acc, err := h.db.CreateAccount(t.Context(), api.Account{PublicKey: base64.StdEncoding.EncodeToString(identity), Relays: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		challenge := []byte(fmt.Sprintf("%d:%d", h.clock.Now().Unix(), acc.TwinID))
		xa := base64.StdEncoding.EncodeToString(challenge) + ":" + base64.StdEncoding.EncodeToString(forged)
		h.do("POST", "/api/v1/farms", map[string]any{"farm_name": uniqueFarmName(), "twin_id": acc.TwinID}, header(xa)).want(t, http.StatusUnauthorized)
		h.do("PATCH", fmt.Sprintf("/api/v1/accounts/%d", acc.TwinID), map[string]any{"relays": []string{"evil.example"}}, header(xa)).want(t, http.StatusUnauthorized)
	})
}

// TestCredentialsOnPublicRoutesVerified: a bad signature on a GET got 200.
func TestCredentialsOnPublicRoutesVerified(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		tw := h.newTwin()
		farm := h.newFarm(tw)
		stranger := newKey()
		stranger.id = tw.id // claims tw's twin id, signs with another key
		for _, path := range []string{"/api/v1/farms", fmt.Sprintf("/api/v1/farms/%d", farm), "/v1/nodes", fmt.Sprintf("/api/v1/accounts?twin_id=%d", tw.id)} {
			h.do("GET", path, nil, nil).want(t, http.StatusOK)
			h.do("GET", path, nil, h.legacy(tw)).want(t, http.StatusOK)
			h.do("GET", path, nil, h.v2(tw)).want(t, http.StatusOK)
			// Read-only: the same signed GET again is fine.
			h.do("GET", path, nil, h.legacy(tw)).want(t, http.StatusOK)
			h.do("GET", path, nil, h.legacy(stranger)).want(t, http.StatusUnauthorized)
			h.do("GET", path, nil, h.v2(stranger)).want(t, http.StatusUnauthorized)
			h.do("GET", path, nil, header("not-base64:!!")).want(t, http.StatusBadRequest)
			old := xauth(tw, h.clock.Now().Add(-time.Hour).Unix())
			h.do("GET", path, nil, header(old)).want(t, http.StatusUnauthorized)
		}
		// Account creation carries its signature in the body; X-Auth on it
		// is checked too.
		h.do("POST", "/api/v1/accounts", accountBody(newKey(), h.clock.Now().Unix()), h.legacy(stranger)).want(t, http.StatusUnauthorized)
	})
}
