package registrar

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
	"github.com/grid4/grid4/store/storetest"
)

// withHeader is a signer that only sets a header.
func withHeader(name, value string) signer {
	return func(_ testing.TB, req *http.Request, _ []byte) { req.Header.Set(name, value) }
}

// TestZosVersionETag: both version routes carry an ETag, answer 304 to
// If-None-Match with it (also weak, also in a list, also "*"), and a new
// version gets a new tag.
func TestZosVersionETag(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		ctx := context.Background()
		for _, p := range []string{"/api/v1/zos/version", "/v1/zos/versions/current"} {
			h.do("GET", p, nil, nil).want(t, http.StatusNotFound)
		}
		if _, err := h.db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.1.0", SafeToUpgrade: true}); err != nil {
			t.Fatal(err)
		}
		tags := map[string]string{}
		for _, p := range []string{"/api/v1/zos/version", "/v1/zos/versions/current"} {
			r := h.do("GET", p, nil, nil).want(t, http.StatusOK)
			tag := r.header.Get("ETag")
			if len(tag) < 3 || tag[0] != '"' || r.header.Get("Cache-Control") != "no-cache" {
				t.Fatalf("%s: ETag %q, Cache-Control %q", p, tag, r.header.Get("Cache-Control"))
			}
			tags[p] = tag
			for _, inm := range []string{tag, "W/" + tag, `"other", ` + tag, "*"} {
				r := h.do("GET", p, nil, withHeader("If-None-Match", inm)).want(t, http.StatusNotModified)
				if len(r.body) != 0 || r.header.Get("ETag") != tag {
					t.Fatalf("%s If-None-Match %s: body %q, ETag %q", p, inm, r.body, r.header.Get("ETag"))
				}
			}
			h.do("GET", p, nil, withHeader("If-None-Match", `"other"`)).want(t, http.StatusOK)
		}
		if tags["/api/v1/zos/version"] == tags["/v1/zos/versions/current"] {
			t.Fatal("the two representations share an ETag")
		}
		if _, err := h.db.SetZosVersion(ctx, api.ZosVersion{Version: "v4.2.0", SafeToUpgrade: true}); err != nil {
			t.Fatal(err)
		}
		r := h.do("GET", "/api/v1/zos/version", nil, withHeader("If-None-Match", tags["/api/v1/zos/version"])).want(t, http.StatusOK)
		if r.header.Get("ETag") == tags["/api/v1/zos/version"] || compatVersionOf(t, r.body) != "v4.2.0" {
			t.Fatalf("after a change: ETag %q, body %s", r.header.Get("ETag"), r.body)
		}
	})
}

// compatVersionOf decodes a GET /zos/version body.
func compatVersionOf(t *testing.T, body []byte) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	var v compatVersion
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v.Version
}

// TestZosVersionSeenByOtherProcesses: two registrars with stores of their
// own on one PostgreSQL database, as two processes. A version set through
// one is served by the other without a restart, although each serves the
// version from memory.
func TestZosVersionSeenByOtherProcesses(t *testing.T) {
	t.Parallel()
	url := storetest.PostgresURL(t)
	open := func() *store.DB {
		db, err := store.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	clock := newFakeClock()
	admin := newKey()
	a := newHarnessOn(t, open(), clock, nil)
	r := a.do("POST", "/api/v1/accounts", accountBody(admin, clock.Now().Unix()), nil).want(t, http.StatusCreated)
	admin.id = uint64(r.obj(t)["twin_id"].(float64))
	b := newHarnessOn(t, open(), clock, func(c *Config) { c.AdminTwins = []uint64{admin.id} })

	a.do("GET", "/api/v1/zos/version", nil, nil).want(t, http.StatusNotFound)
	for i, v := range []string{"v4.1.0", "v4.2.0"} {
		b.do("POST", "/api/v1/zos/versions", map[string]any{"version": v, "safe_to_upgrade": true}, b.v2(admin)).want(t, http.StatusCreated)
		deadline := time.Now().Add(15 * time.Second)
		for {
			r := a.do("GET", "/api/v1/zos/version", nil, nil)
			if r.status == http.StatusOK && compatVersionOf(t, r.body) == v {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("change %d: the other process still serves %d %s", i, r.status, r.body)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
