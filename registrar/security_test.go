package registrar

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// replayable signs once with v2 and then sends the very same headers
// again.
func replayable(h *harness, tw twin) signer {
	var saved http.Header
	return func(t testing.TB, req *http.Request, body []byte) {
		if saved == nil {
			h.v2(tw)(t, req, body)
			saved = req.Header.Clone()
			return
		}
		for k, v := range saved {
			req.Header[k] = v
		}
	}
}

// withParams signs with v2 using explicit created/expires times.
func withParams(tw twin, created, expires time.Time) signer {
	return func(t testing.TB, req *http.Request, body []byte) {
		p := auth.SignatureParams{
			Components: auth.RequiredComponents(),
			Created:    created, Expires: expires,
			Nonce: auth.NewNonce(), KeyID: fmt.Sprint(tw.id),
		}
		if err := auth.SignWithParams(req, body, tw.keyPair(t), "", p); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSecurity(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		nodeTw := h.newTwin()
		node := h.newNode(nodeTw, farm)
		other := h.newTwin()
		otherFarm := h.newFarm(other)
		uptimePath := fmt.Sprintf("/api/v1/nodes/%d/uptime", node)
		report := func() map[string]any { return map[string]any{"uptime": 100, "timestamp": h.clock.Now().Unix()} }

		t.Run("v2 accepted", func(t *testing.T) {
			h.do("POST", uptimePath, report(), h.v2(nodeTw)).want(t, http.StatusCreated)
		})
		t.Run("tampered body", func(t *testing.T) {
			tamper := func(t testing.TB, req *http.Request, body []byte) {
				h.v2(nodeTw)(t, req, []byte(`{"uptime":1,"timestamp":1}`))
			}
			r := h.do("POST", uptimePath, report(), tamper).want(t, http.StatusUnauthorized)
			if !strings.Contains(r.errMsg(t), "digest") {
				t.Errorf("tampered body: %s", r.body)
			}
		})
		t.Run("tampered path", func(t *testing.T) {
			// Signed for the uptime of another node id, sent to ours.
			sign := func(t testing.TB, req *http.Request, body []byte) {
				orig := req.URL.Path
				req.URL.Path = fmt.Sprintf("/api/v1/nodes/%d/uptime", node+1000)
				h.v2(nodeTw)(t, req, body)
				req.URL.Path = orig
			}
			h.do("POST", uptimePath, report(), sign).want(t, http.StatusUnauthorized)
		})
		t.Run("replay v2", func(t *testing.T) {
			s := replayable(h, nodeTw)
			body := report()
			h.do("POST", uptimePath, body, s).want(t, http.StatusCreated)
			r := h.do("POST", uptimePath, body, s).want(t, http.StatusUnauthorized)
			if !strings.Contains(r.errMsg(t), "nonce") {
				t.Errorf("replay: %s", r.body)
			}
		})
		t.Run("replay on another process", func(t *testing.T) {
			// A second registrar on the same database shares the nonces.
			h2 := newHarnessOn(t, h.db, h.clock, nil)
			s := replayable(h, nodeTw)
			body := report()
			h.do("POST", uptimePath, body, s).want(t, http.StatusCreated)
			h2.do("POST", uptimePath, body, s).want(t, http.StatusUnauthorized)
		})
		t.Run("replay legacy", func(t *testing.T) {
			h.clock.Advance(time.Second)
			body := report()
			h.do("POST", uptimePath, body, h.legacy(nodeTw)).want(t, http.StatusCreated)
			r := h.do("POST", uptimePath, body, h.legacy(nodeTw)).want(t, http.StatusUnauthorized)
			if !strings.Contains(r.errMsg(t), "already") {
				t.Errorf("legacy replay: %s", r.body)
			}
		})
		t.Run("stale and future timestamps", func(t *testing.T) {
			now := h.clock.Now()
			for _, c := range []struct {
				name string
				s    signer
			}{
				{"legacy stale", func(_ testing.TB, req *http.Request, _ []byte) {
					req.Header.Set("X-Auth", xauth(nodeTw, now.Add(-61*time.Second).Unix()))
				}},
				{"legacy future", func(_ testing.TB, req *http.Request, _ []byte) {
					req.Header.Set("X-Auth", xauth(nodeTw, now.Add(61*time.Second).Unix()))
				}},
				{"v2 expired", withParams(nodeTw, now.Add(-2*time.Minute), now.Add(-time.Minute))},
				{"v2 future", withParams(nodeTw, now.Add(time.Minute), now.Add(2*time.Minute))},
				{"v2 too long", withParams(nodeTw, now, now.Add(24*time.Hour))},
			} {
				t.Run(c.name, func(t *testing.T) {
					h.do("POST", uptimePath, report(), c.s).want(t, http.StatusUnauthorized)
				})
			}
		})
		t.Run("bad signature and unknown twin", func(t *testing.T) {
			impostor := newKey()
			impostor.id = nodeTw.id
			h.do("POST", uptimePath, report(), h.legacy(impostor)).want(t, http.StatusUnauthorized)
			h.do("POST", uptimePath, report(), h.v2(impostor)).want(t, http.StatusUnauthorized)
			ghost := newKey()
			ghost.id = 999999
			h.do("POST", uptimePath, report(), h.legacy(ghost)).want(t, http.StatusUnauthorized)
			h.do("POST", uptimePath, report(), nil).want(t, http.StatusUnauthorized)
		})
		t.Run("another twin's resources", func(t *testing.T) {
			h.clock.Advance(time.Second)
			for _, c := range []struct {
				method, path string
				body         any
			}{
				{"PATCH", fmt.Sprintf("/api/v1/farms/%d", farm), map[string]any{"farm_name": uniqueFarmName()}},
				{"POST", fmt.Sprintf("/api/v1/farms/%d/approve", farm), map[string]any{"node_ids": []uint64{node}}},
				{"POST", fmt.Sprintf("/api/v1/farms/%d/reject", farm), map[string]any{"node_ids": []uint64{node}}},
				{"PATCH", fmt.Sprintf("/api/v1/nodes/%d", node), nodeReq(nodeTw, farm)},
				{"POST", uptimePath, report()},
				{"PATCH", fmt.Sprintf("/api/v1/accounts/%d", farmer.id), map[string]any{"relays": []string{"evil.example"}}},
				{"POST", "/api/v1/farms", map[string]any{"farm_name": uniqueFarmName(), "twin_id": farmer.id}},
				{"POST", "/api/v1/nodes", nodeReq(farmer, otherFarm)},
			} {
				for _, s := range []signer{h.legacy(other), h.v2(other)} {
					r := h.do(c.method, c.path, c.body, s).want(t, http.StatusUnauthorized)
					if !strings.HasPrefix(r.errMsg(t), "not authorized") {
						t.Errorf("%s %s: %s", c.method, c.path, r.body)
					}
				}
			}
			// Nothing changed.
			r := h.do("GET", fmt.Sprintf("/api/v1/accounts?twin_id=%d", farmer.id), nil, nil).want(t, http.StatusOK)
			if strings.Contains(string(r.body), "evil") {
				t.Errorf("account of another twin changed: %s", r.body)
			}
		})
		t.Run("node into a missing farm", func(t *testing.T) {
			tw := h.newTwin()
			r := h.do("POST", "/api/v1/nodes", nodeReq(tw, 424242), h.v2(tw)).want(t, http.StatusBadRequest)
			if r.errMsg(t) != "farm 424242 does not exist" {
				t.Errorf("missing farm: %s", r.body)
			}
			r = h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", node), nodeReq(nodeTw, 424242), h.v2(nodeTw)).want(t, http.StatusBadRequest)
			if r.errMsg(t) != "farm 424242 does not exist" {
				t.Errorf("move into missing farm: %s", r.body)
			}
		})
		t.Run("unknown field", func(t *testing.T) {
			b := report()
			b["uptime_seconds"] = 5
			r := h.do("POST", uptimePath, b, h.v2(nodeTw)).want(t, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(t), `"uptime_seconds"`) {
				t.Errorf("unknown field not named: %s", r.body)
			}
			// The legacy extras of node bodies are accepted on node routes only.
			r = h.do("POST", "/api/v1/farms", map[string]any{"farm_name": uniqueFarmName(), "online": true}, h.v2(farmer)).want(t, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(t), `"online"`) {
				t.Errorf("unknown farm field: %s", r.body)
			}
			nb := nodeReq(nodeTw, farm)
			nb["state"] = "up"
			h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", node), nb, h.v2(nodeTw)).want(t, http.StatusBadRequest)
			// The status fields a node is served with, and the public
			// registrar's status, are read-only: accepted and ignored.
			nb = nodeReq(nodeTw, farm)
			nb["status"], nb["healthy"], nb["status_at"], nb["free_resources"] = "up", true, nil, map[string]any{"mru": 1}
			h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", node), nb, h.v2(nodeTw)).want(t, http.StatusOK)
		})
		t.Run("oversized body", func(t *testing.T) {
			big := map[string]any{"relays": []string{strings.Repeat("a", int(h.cfg.MaxBody))}}
			h.do("PATCH", fmt.Sprintf("/api/v1/accounts/%d", farmer.id), big, h.v2(farmer)).want(t, http.StatusRequestEntityTooLarge)
			h.do("PATCH", fmt.Sprintf("/api/v1/accounts/%d", farmer.id), big, h.legacy(farmer)).want(t, http.StatusRequestEntityTooLarge)
			tw := newKey()
			ab := accountBody(tw, h.clock.Now().Unix())
			ab["rmb_enc_key"] = strings.Repeat("k", int(h.cfg.MaxBody))
			h.do("POST", "/api/v1/accounts", ab, nil).want(t, http.StatusRequestEntityTooLarge)
		})
		t.Run("malformed JSON", func(t *testing.T) {
			r := h.do("POST", uptimePath, `{"uptime": 1,`, h.v2(nodeTw)).want(t, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(t), "JSON") {
				t.Errorf("malformed: %s", r.body)
			}
			h.do("POST", uptimePath, `{"uptime": "1", "timestamp": 1}`, h.v2(nodeTw)).want(t, http.StatusBadRequest)
			h.do("POST", uptimePath, `{"uptime": 1, "timestamp": 1} {}`, h.v2(nodeTw)).want(t, http.StatusBadRequest)
		})
	})
}

func TestLegacySwitchedOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, func(c *Config) { c.LegacyAuth = false })
		tw := h.newTwin()
		r := h.do("POST", "/api/v1/farms", map[string]any{"farm_name": uniqueFarmName()}, h.legacy(tw)).want(t, http.StatusUnauthorized)
		if !strings.Contains(r.errMsg(t), "legacy X-Auth is disabled") {
			t.Errorf("legacy off: %s", r.body)
		}
		h.do("POST", "/api/v1/farms", map[string]any{"farm_name": uniqueFarmName()}, h.v2(tw)).want(t, http.StatusCreated)
	})
}

func TestRateLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		t.Run("per twin", func(t *testing.T) {
			h := newHarness(t, backend, func(c *Config) { c.RateTwin, c.RateTwinBurst = 1, 3 })
			tw := h.newTwin()
			path := fmt.Sprintf("/api/v1/accounts/%d", tw.id)
			for i := range 3 {
				h.do("PATCH", path, map[string]any{"relays": []string{fmt.Sprintf("r%d.example", i)}}, h.v2(tw)).want(t, http.StatusOK)
			}
			r := h.do("PATCH", path, map[string]any{"relays": []string{"x.example"}}, h.v2(tw)).want(t, http.StatusTooManyRequests)
			if r.header.Get("Retry-After") != "1" || !strings.Contains(r.errMsg(t), "rate limit") {
				t.Errorf("429: %v %s", r.header, r.body)
			}
			// Another twin is not affected; the first recovers with time.
			tw2 := h.newTwin()
			h.do("PATCH", fmt.Sprintf("/api/v1/accounts/%d", tw2.id), map[string]any{"relays": []string{"z.example"}}, h.v2(tw2)).want(t, http.StatusOK)
			h.clock.Advance(time.Second)
			h.do("PATCH", path, map[string]any{"relays": []string{"y.example"}}, h.v2(tw)).want(t, http.StatusOK)
		})
		t.Run("per IP", func(t *testing.T) {
			h := newHarness(t, backend, func(c *Config) { c.RateIP, c.RateIPBurst = 2, 4 })
			for range 4 {
				h.do("GET", "/api/v1/farms", nil, nil).want(t, http.StatusOK)
			}
			r := h.do("GET", "/v1/nodes", nil, nil).want(t, http.StatusTooManyRequests)
			if r.header.Get("Retry-After") == "" {
				t.Errorf("no Retry-After: %v", r.header)
			}
			// Health checks are not limited.
			h.do("GET", "/healthz", nil, nil).want(t, http.StatusOK)
			h.clock.Advance(time.Second)
			h.do("GET", "/api/v1/farms", nil, nil).want(t, http.StatusOK)
		})
	})
}

// panicStore makes Farm panic, to check the recovery middleware.
type panicStore struct{ *store.DB }

func (panicStore) Farm(context.Context, uint64) (api.Farm, error) { panic("boom") }

func TestPanicIsJSON500(t *testing.T) {
	db := openStore(t, "sqlite")
	srv, err := New(testConfig(), Deps{Store: panicStore{db}})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: newFakeClock(), srv: srv}
	h.ts = newTestServer(t, srv)
	r := h.do("GET", "/api/v1/farms/1", nil, nil).want(t, http.StatusInternalServerError)
	if r.errMsg(t) != "internal error" {
		t.Errorf("panic answer: %s", r.body)
	}
	// The server keeps serving.
	h.do("GET", "/healthz", nil, nil).want(t, http.StatusOK)
}

func TestUnknownRoutesAreJSON(t *testing.T) {
	db := openStore(t, "sqlite")
	h := newHarnessOn(t, db, newFakeClock(), nil)
	r := h.do("GET", "/api/v2/nodes", nil, nil).want(t, http.StatusNotFound)
	r.errMsg(t)
	r = h.do("DELETE", "/api/v1/nodes/1", nil, nil).want(t, http.StatusMethodNotAllowed)
	if !strings.Contains(r.header.Get("Allow"), "PATCH") {
		t.Errorf("Allow: %q", r.header.Get("Allow"))
	}
	r.errMsg(t)
	// A trailing slash is only served where the public registrar does.
	h.do("GET", "/api/v1/nodes/", nil, nil).want(t, http.StatusNotFound)
	h.do("GET", "/api/v1/farms/", nil, nil).want(t, http.StatusMethodNotAllowed) // only POST /farms/ exists
	h.do("POST", "/api/v1/farms/1/approve/", nil, nil).want(t, http.StatusNotFound)
}
