package registrar

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/grid4/grid4/registrar/api"
)

func (h *harness) nodeJSON(id uint64) api.Node {
	h.t.Helper()
	r := h.do("GET", fmt.Sprintf("/api/v1/nodes/%d", id), nil, nil).want(h.t, http.StatusOK)
	var n api.Node
	if err := json.Unmarshal(r.body, &n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

func TestApprovalFlow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		a, b := h.newTwin(), h.newTwin()
		na, nb := h.newNode(a, farm), h.newNode(b, farm)
		approve := func(path string, ids ...uint64) resp {
			h.clock.Advance(time.Second)
			return h.do("POST", fmt.Sprintf("/api/v1/farms/%d/%s", farm, path), api.ApprovalRequest{NodeIDs: ids}, h.legacy(farmer))
		}

		if h.nodeJSON(na).Approved {
			t.Fatal("a new node is not approved")
		}
		approve("approve", na, nb).want(t, http.StatusOK)
		if !h.nodeJSON(na).Approved || !h.nodeJSON(nb).Approved {
			t.Fatal("approve did not approve")
		}
		approve("reject", nb).want(t, http.StatusOK)
		if !h.nodeJSON(na).Approved || h.nodeJSON(nb).Approved {
			t.Fatal("reject changed the wrong nodes")
		}

		// All or nothing: a node of another farm spoils the whole request.
		other := h.newTwin()
		otherFarm := h.newFarm(other)
		c := h.newTwin()
		nc := h.newNode(c, otherFarm)
		r := approve("approve", nb, nc).want(t, http.StatusNotFound)
		if !strings.Contains(r.errMsg(t), fmt.Sprint(farm)) {
			t.Errorf("message does not name the farm: %s", r.body)
		}
		if h.nodeJSON(nb).Approved || h.nodeJSON(nc).Approved {
			t.Fatal("a refused approval changed something")
		}
		approve("approve").want(t, http.StatusBadRequest)
		approve("approve", 0).want(t, http.StatusBadRequest)

		// A node that moves to another farm loses its approval; an update
		// in place keeps it.
		body := nodeReq(a, farm)
		h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", na), body, h.v2(a)).want(t, http.StatusOK)
		if !h.nodeJSON(na).Approved {
			t.Fatal("an update within the farm withdrew approval")
		}
		body["farm_id"] = otherFarm
		h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", na), body, h.v2(a)).want(t, http.StatusOK)
		if n := h.nodeJSON(na); n.Approved || n.FarmID != otherFarm {
			t.Fatalf("after the move: farm %d approved %v", n.FarmID, n.Approved)
		}
		// The old farm's owner can no longer approve it.
		approve("approve", na).want(t, http.StatusNotFound)
	})
}

func TestUptimeOnline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		cutoff := h.srv.sched.cutoff(h.cfg.ReportInterval)
		if cutoff != 120*time.Minute {
			t.Fatalf("default cutoff %s, want 3 × 40m", cutoff)
		}

		if n := h.nodeJSON(node); n.Online || n.LastSeen != nil {
			t.Fatalf("never reported: online %v last_seen %v", n.Online, n.LastSeen)
		}
		r := h.uptime(tw, node, 600).want(t, http.StatusCreated)
		var rep api.UptimeReply
		if err := json.Unmarshal(r.body, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Restarted || rep.NextReportIn <= 0 || time.Duration(rep.NextReportIn)*time.Second >= cutoff {
			t.Fatalf("reply %+v", rep)
		}
		reported := h.clock.Now()
		if n := h.nodeJSON(node); !n.Online || n.LastSeen == nil || !n.LastSeen.Equal(reported) {
			t.Fatalf("after a report: online %v last_seen %v, want %v", n.Online, n.LastSeen, reported)
		}

		// Still online just before the cutoff, offline after it.
		h.clock.Advance(cutoff - time.Second)
		if !h.nodeJSON(node).Online {
			t.Fatal("offline before the cutoff")
		}
		onlineIDs := func(q string) int {
			r := h.do("GET", "/api/v1/nodes?"+q, nil, nil).want(t, http.StatusOK)
			return len(r.arr(t))
		}
		if onlineIDs("online=true") != 1 || onlineIDs("online=false") != 0 {
			t.Fatal("online filter disagrees before the cutoff")
		}
		h.clock.Advance(2 * time.Second)
		if h.nodeJSON(node).Online {
			t.Fatal("online after the cutoff")
		}
		if onlineIDs("online=true") != 0 || onlineIDs("online=false") != 1 {
			t.Fatal("online filter disagrees after the cutoff")
		}
		if onlineIDs(fmt.Sprintf("last_seen=%d", int(cutoff/time.Minute)+1)) != 1 || onlineIDs("last_seen=60") != 0 {
			t.Fatal("last_seen filter")
		}

		// Timestamp hint outside ±60 s is refused; zero uptime is refused.
		h.do("POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", node), map[string]any{"uptime": 10, "timestamp": h.clock.Now().Unix() - 61}, h.v2(tw)).want(t, http.StatusBadRequest)
		h.do("POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", node), map[string]any{"uptime": 0, "timestamp": h.clock.Now().Unix()}, h.v2(tw)).want(t, http.StatusBadRequest)
		h.do("POST", "/api/v1/nodes/999999/uptime", map[string]any{"uptime": 1, "timestamp": h.clock.Now().Unix()}, h.v2(tw)).want(t, http.StatusNotFound)
	})
}

// TestHealthyNodeNeverShownOffline follows the schedule the registrar hands
// out: a node that reports exactly when told (even at the last second) is
// online at every instant in between.
func TestHealthyNodeNeverShownOffline(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		uptime := uint64(60)
		for range 8 {
			r := h.uptime(tw, node, uptime).want(t, http.StatusCreated)
			var rep api.UptimeReply
			if err := json.Unmarshal(r.body, &rep); err != nil {
				t.Fatal(err)
			}
			wait := time.Duration(rep.NextReportIn) * time.Second
			// Checked at the last moment before the next report, with a
			// minute of network delay on top.
			h.clock.Advance(wait + time.Minute)
			if !h.nodeJSON(node).Online {
				t.Fatalf("node shown offline %s after its report, told to report in %s", wait+time.Minute, wait)
			}
			uptime += uint64((wait + time.Minute) / time.Second)
		}
	})
}

func TestRestartsAndHistory(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		restarted := func(r resp) bool {
			var rep api.UptimeReply
			if err := json.Unmarshal(r.want(t, http.StatusCreated).body, &rep); err != nil {
				t.Fatal(err)
			}
			return rep.Restarted
		}
		if restarted(h.uptime(tw, node, 1000)) {
			t.Fatal("first report is not a restart")
		}
		h.clock.Advance(10 * time.Minute)
		if restarted(h.uptime(tw, node, 1600)) {
			t.Fatal("uptime went up: not a restart")
		}
		h.clock.Advance(10 * time.Minute)
		if !restarted(h.uptime(tw, node, 30)) {
			t.Fatal("uptime went down: a restart")
		}
		if got := counterValue(t, h.srv.metrics.restarts); got != 1 {
			t.Errorf("restart metric %v", got)
		}
		if got := counterValue(t, h.srv.metrics.uptime); got != 3 {
			t.Errorf("uptime metric %v", got)
		}

		r := h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/uptime", node), nil, nil).want(t, http.StatusOK)
		var sessions []api.UptimeSession
		if err := json.Unmarshal(r.body, &sessions); err != nil {
			t.Fatal(err)
		}
		if len(sessions) != 2 {
			t.Fatalf("want 2 sessions, got %s", r.body)
		}
		if sessions[0].Uptime != 30 || sessions[1].Uptime != 1600 || sessions[1].Reports != 2 {
			t.Errorf("sessions newest first: %+v", sessions)
		}
		hasKeys(t, "uptime session", r.arr(t)[0], "boot_time", "last_report", "uptime", "reports")
		// Bounded by since/until and size.
		r = h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/uptime?size=1", node), nil, nil).want(t, http.StatusOK)
		if len(r.arr(t)) != 1 {
			t.Errorf("size=1: %s", r.body)
		}
		r = h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/uptime?since=0&until=%d", node, h.clock.Now().Add(-100*24*time.Hour).Unix()), nil, nil).want(t, http.StatusOK)
		if string(r.body) != "[]\n" {
			t.Errorf("until long ago: %s", r.body)
		}
		h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/uptime?since=yesterday", node), nil, nil).want(t, http.StatusBadRequest)
		h.do("GET", "/api/v1/nodes/999999/uptime", nil, nil).want(t, http.StatusNotFound)

		// Retention: closed sessions older than the retention are pruned.
		h.clock.Advance(h.cfg.UptimeRetention + time.Hour)
		h.srv.prune(context.Background())
		r = h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/uptime?since=0", node), nil, nil).want(t, http.StatusOK)
		if got := r.arr(t); len(got) != 1 {
			t.Errorf("after pruning, only the current session remains: %s", r.body)
		}
	})
}

func TestZosVersion(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		admin := h.newTwin()
		h.cfg.AdminTwins = []uint64{admin.id}
		h2 := newHarnessOn(t, h.db, h.clock, func(c *Config) { c.AdminTwins, c.AdminLegacyAuth = []uint64{admin.id}, true })
		user := h.newTwin()

		// No admin configured on h: refused with a clear message.
		r := h.do("POST", "/api/v1/zos/versions", map[string]any{"version": "v4.1.0"}, h.v2(admin)).want(t, http.StatusUnauthorized)
		if !strings.Contains(r.errMsg(t), "no admin twin is configured") {
			t.Errorf("no admin: %s", r.body)
		}
		h.do("PUT", "/api/v1/zos/version", map[string]any{"version": "v4.1.0", "safe_to_upgrade": true}, h.v2(admin)).want(t, http.StatusUnauthorized)

		h = h2
		h.do("GET", "/api/v1/zos/versions/current", nil, nil).want(t, http.StatusNotFound)
		r = h.do("POST", "/api/v1/zos/versions", map[string]any{"version": "v4.1.0", "safe_to_upgrade": false, "test_farms": []uint64{7, 3, 7}}, h.v2(user)).want(t, http.StatusUnauthorized)
		if !strings.Contains(r.errMsg(t), "not an admin") {
			t.Errorf("non-admin: %s", r.body)
		}

		set := func(body any) resp {
			h.clock.Advance(time.Second)
			return h.do("POST", "/api/v1/zos/versions", body, h.v2(admin))
		}
		r = set(map[string]any{"version": "v4.1.0", "safe_to_upgrade": false, "test_farms": []uint64{7, 3, 7}}).want(t, http.StatusCreated)
		var v1 api.ZosVersion
		if err := json.Unmarshal(r.body, &v1); err != nil {
			t.Fatal(err)
		}
		if v1.Serial == 0 || v1.SetBy != admin.id || fmt.Sprint(v1.TestFarms) != "[3 7]" {
			t.Fatalf("stored %+v", v1)
		}
		hasKeys(t, "zos version", r.obj(t), "version", "safe_to_upgrade", "test_farms", "serial", "set_by", "created_at")

		// Both encodings read the same version.
		r = h.do("GET", "/v1/zos/version", nil, nil).want(t, http.StatusOK)
		var enc string
		if err := json.Unmarshal(r.body, &enc); err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(enc)
		if string(raw) != `{"version":"v4.1.0","safe_to_upgrade":false,"test_farms":[3,7]}` {
			t.Errorf("compat encoding: %s", raw)
		}
		r = h.do("GET", "/v1/zos/versions/current", nil, nil).want(t, http.StatusOK)
		if r.obj(t)["version"] != "v4.1.0" {
			t.Errorf("native: %s", r.body)
		}

		// Unchanged → 409; test_farms absent keeps them; [] clears them.
		set(map[string]any{"version": "v4.1.0", "safe_to_upgrade": false}).want(t, http.StatusConflict)
		r = set(map[string]any{"version": "v4.1.0", "safe_to_upgrade": true}).want(t, http.StatusCreated)
		var v2 api.ZosVersion
		_ = json.Unmarshal(r.body, &v2)
		if v2.Serial <= v1.Serial || fmt.Sprint(v2.TestFarms) != "[3 7]" {
			t.Errorf("second version %+v after %+v", v2, v1)
		}
		h.clock.Advance(time.Second)
		h.do("PUT", "/api/v1/zos/version", map[string]any{"version": "4.2.0-rc1", "safe_to_upgrade": true, "test_farms": []uint64{}}, h.legacy(admin)).want(t, http.StatusOK)
		r = h.do("GET", "/api/v1/zos/versions/current", nil, nil).want(t, http.StatusOK)
		var v3 api.ZosVersion
		_ = json.Unmarshal(r.body, &v3)
		if v3.Version != "4.2.0-rc1" || len(v3.TestFarms) != 0 || v3.Serial != v2.Serial+1 {
			t.Errorf("third version %+v", v3)
		}

		// History, newest first, paged.
		r = h.do("GET", "/api/v1/zos/versions?size=2", nil, nil).want(t, http.StatusOK)
		var hist []api.ZosVersion
		_ = json.Unmarshal(r.body, &hist)
		if len(hist) != 2 || hist[0].Serial != v3.Serial || hist[1].Serial != v2.Serial {
			t.Errorf("history page 1: %+v", hist)
		}
		r = h.do("GET", "/api/v1/zos/versions?size=2&page=2", nil, nil).want(t, http.StatusOK)
		if hs := r.arr(t); len(hs) != 1 || hs[0]["serial"] != float64(v1.Serial) {
			t.Errorf("history page 2: %s", r.body)
		}

		// Malformed versions are refused, naming the field.
		for _, body := range []map[string]any{
			{"version": "4.1"},
			{"version": "v4.1.0; rm -rf /"},
			{"version": strings.Repeat("1", 30) + "." + strings.Repeat("2", 30) + "." + strings.Repeat("3", 30)},
			{"version": ""},
			{"version": "v4.1.0", "test_farms": []int{0}},
			{"version": "v4.1.0", "serial": 99},
		} {
			r := set(body).want(t, http.StatusBadRequest)
			if msg := r.errMsg(t); !strings.Contains(msg, "version") && !strings.Contains(msg, "test_farms") && !strings.Contains(msg, "serial") {
				t.Errorf("%v: %s", body, msg)
			}
		}
		for _, v := range []string{
			base64.StdEncoding.EncodeToString([]byte(`{"version":"not a version","safe_to_upgrade":true}`)),
			base64.StdEncoding.EncodeToString([]byte(`not json`)),
			"dGVzdA", // unpadded
		} {
			h.clock.Advance(time.Second)
			h.do("PUT", "/api/v1/zos/version", map[string]any{"version": v}, h.legacy(admin)).want(t, http.StatusBadRequest)
		}
	})
}

func TestValidationRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		for _, c := range []struct {
			field  string
			mutate func(m map[string]any)
		}{
			{"location.latitude", func(m map[string]any) { m["location"].(map[string]any)["latitude"] = "91" }},
			{"location.longitude", func(m map[string]any) { m["location"].(map[string]any)["longitude"] = "east" }},
			{"location.country", func(m map[string]any) { m["location"].(map[string]any)["country"] = strings.Repeat("x", 65) }},
			{"resources.cru", func(m map[string]any) { m["resources"].(map[string]any)["cru"] = 1 << 20 }},
			{"interfaces[0].mac", func(m map[string]any) { m["interfaces"].([]map[string]any)[0]["mac"] = "zz:zz" }},
			{"interfaces[0].ips[1]", func(m map[string]any) {
				m["interfaces"].([]map[string]any)[0]["ips"] = []string{"10.0.0.1", "10.0.0.300"}
			}},
			{"interfaces", func(m map[string]any) { m["interfaces"] = []map[string]any{} }},
			{"serial_number", func(m map[string]any) { m["serial_number"] = strings.Repeat("s", 129) }},
			{"farm_id", func(m map[string]any) { m["farm_id"] = 0 }},
		} {
			body := nodeReq(tw, farm)
			c.mutate(body)
			r := h.do("POST", "/api/v1/nodes", body, h.v2(tw)).want(t, http.StatusBadRequest)
			if msg := r.errMsg(t); !strings.Contains(msg, c.field) {
				t.Errorf("%s: message %q does not name the field", c.field, msg)
			}
		}
		for _, c := range []struct {
			field string
			body  map[string]any
		}{
			{"farm_name", map[string]any{"farm_name": "my farm"}},
			{"farm_name", map[string]any{"farm_name": strings.Repeat("a", 41)}},
			{"stellar_address", map[string]any{"farm_name": uniqueFarmName(), "stellar_address": "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGA"}},
		} {
			r := h.do("POST", "/api/v1/farms", c.body, h.v2(farmer)).want(t, http.StatusBadRequest)
			if msg := r.errMsg(t); !strings.Contains(msg, c.field) {
				t.Errorf("%s: message %q does not name the field", c.field, msg)
			}
		}
		for _, q := range []string{"size=101", "size=0", "page=0", "farm_id=-1", "online=maybe", "last_seen=x"} {
			r := h.do("GET", "/api/v1/nodes?"+q, nil, nil).want(t, http.StatusBadRequest)
			if name, _, _ := strings.Cut(q, "="); !strings.Contains(r.errMsg(t), name) {
				t.Errorf("%s: %s", q, r.body)
			}
		}
		h.do("GET", "/api/v1/farms?size=100", nil, nil).want(t, http.StatusOK)
	})
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
