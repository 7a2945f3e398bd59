package registrar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// statusReport is a healthy report with mru bytes of memory free.
func (h *harness) statusReport(mru uint64) map[string]any {
	return map[string]any{
		"timestamp": h.clock.Now().Unix(), "version": "v4.2.0", "healthy": true,
		"checks":      []map[string]any{{"name": "disk", "ok": true}},
		"modules":     []map[string]any{{"name": "provisiond", "state": "running"}},
		"total":       map[string]any{"cru": 8, "mru": 32 << 30, "sru": 1 << 40, "hru": 0, "ipv4": 2},
		"used":        map[string]any{"cru": 2, "mru": 32<<30 - mru, "sru": 1 << 30, "hru": 0, "ipv4": 1},
		"deployments": 1, "workloads": map[string]any{"ok": 2},
		"peers": map[string]any{"probed": 2, "reached": 1, "probes": []map[string]any{
			{"node_id": 7, "reached": true}, {"node_id": 9, "reached": false, "error": "connection refused"}}},
	}
}

// statusOf reads GET /nodes/{id}/status.
func (h *harness) statusOf(node uint64) api.NodeStatusHistory {
	h.t.Helper()
	r := h.do("GET", fmt.Sprintf("/api/v1/nodes/%d/status", node), nil, nil).want(h.t, http.StatusOK)
	var st api.NodeStatusHistory
	if err := json.Unmarshal(r.body, &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}

// listIDs returns the ids GET /nodes?q answers.
func (h *harness) listIDs(q string) []uint64 {
	h.t.Helper()
	r := h.do("GET", "/api/v1/nodes?"+q, nil, nil).want(h.t, http.StatusOK)
	var ns []api.Node
	if err := json.Unmarshal(r.body, &ns); err != nil {
		h.t.Fatal(err)
	}
	ids := []uint64{}
	for _, n := range ns {
		ids = append(ids, n.NodeID)
	}
	return ids
}

func TestNodeStatusReports(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		path := fmt.Sprintf("/api/v1/nodes/%d/status", node)

		if st := h.statusOf(node); st.NodeID != node || st.Latest != nil || st.History == nil || len(st.History) != 0 {
			t.Fatalf("before any report: %+v", st)
		}
		if n := h.nodeJSON(node); n.Healthy || n.StatusAt != nil || n.Free != nil {
			t.Fatalf("node before any report: %+v", n)
		}

		// Both signature schemes.
		r := h.do("POST", path, h.statusReport(8<<30), h.legacy(tw)).want(t, http.StatusCreated)
		if r.obj(t)["message"] != "status reported successfully" {
			t.Fatalf("reply %s", r.body)
		}
		h.clock.Advance(time.Minute)
		h.do("POST", path, h.statusReport(10<<30), h.v2(tw)).want(t, http.StatusCreated)
		at := h.clock.Now()
		st := h.statusOf(node)
		want := api.Capacity{CRU: 6, MRU: 10 << 30, SRU: 1<<40 - 1<<30, IPv4: 1}
		if l := st.Latest; l == nil || !l.Healthy || !l.ReportedAt.Equal(at) || l.Free != want || l.Version != "v4.2.0" ||
			len(l.Checks) != 1 || len(l.Modules) != 1 || l.Workloads["ok"] != 2 || l.Deployments != 1 || l.Reasons != nil {
			t.Fatalf("latest = %+v", st.Latest)
		}
		if len(st.History) != 2 || st.History[1].Free.MRU != 8<<30 || st.History[0].Checks != nil {
			t.Fatalf("history = %+v", st.History)
		}
		// The peers' probes: in full in the latest, counted in the history.
		if p := st.Latest.Peers; p == nil || p.Probed != 2 || p.Reached != 1 || len(p.Probes) != 2 || p.Probes[1].NodeID != 9 || p.Probes[1].Error != "connection refused" {
			t.Fatalf("latest peers = %+v", st.Latest.Peers)
		}
		if p := st.History[1].Peers; p == nil || p.Reached != 1 || p.Probes != nil {
			t.Fatalf("history peers = %+v", st.History[1].Peers)
		}
		if n := h.nodeJSON(node); !n.Healthy || n.StatusAt == nil || !n.StatusAt.Equal(at) || n.Free == nil || *n.Free != want {
			t.Fatalf("node after reports: %+v", n)
		}
		r = h.do("GET", path+"?size=1", nil, nil).want(t, http.StatusOK)
		if !strings.Contains(string(r.body), `"history":[{`) || strings.Count(string(r.body), `"reported_at"`) != 2 {
			t.Fatalf("size=1: %s", r.body)
		}

		// A failing module and check make the node unhealthy at once,
		// with the reasons named.
		h.clock.Advance(time.Minute)
		sick := h.statusReport(10 << 30)
		sick["healthy"] = false
		sick["checks"] = []map[string]any{{"name": "disk", "ok": false, "reason": "data directory 99% full"}}
		sick["modules"] = []map[string]any{{"name": "provisiond", "state": "restarting", "restarts": 7, "last_exit": "exit status 1"}}
		h.do("POST", path, sick, h.v2(tw)).want(t, http.StatusCreated)
		l := h.statusOf(node).Latest
		wantReasons := []string{"check disk: data directory 99% full", "module provisiond: restarting (exit status 1)"}
		if l.Healthy || !slices.Equal(l.Reasons, wantReasons) {
			t.Fatalf("sick: healthy %v reasons %q", l.Healthy, l.Reasons)
		}
		if h.nodeJSON(node).Healthy {
			t.Fatal("node healthy after an unhealthy report")
		}
		// Healthy again; then reports stop: unhealthy after the cutoff.
		h.do("POST", path, h.statusReport(10<<30), h.v2(tw)).want(t, http.StatusCreated)
		cutoff := h.srv.sched.cutoff(h.cfg.ReportInterval)
		h.clock.Advance(cutoff - time.Second)
		if !h.nodeJSON(node).Healthy || !h.statusOf(node).Latest.Healthy {
			t.Fatal("unhealthy before the cutoff")
		}
		h.clock.Advance(2 * time.Second)
		l = h.statusOf(node).Latest
		if l.Healthy || len(l.Reasons) != 1 || !strings.HasPrefix(l.Reasons[0], "no status report since ") {
			t.Fatalf("stale: healthy %v reasons %q", l.Healthy, l.Reasons)
		}
		if h.nodeJSON(node).Healthy {
			t.Fatal("node healthy after its reports stopped")
		}
		if ids := h.listIDs("status=unhealthy"); !slices.Equal(ids, []uint64{node}) {
			t.Fatalf("status=unhealthy: %v", ids)
		}
	})
}

func TestNodeStatusRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		other := h.newTwin()
		h.newNode(other, farm)
		path := fmt.Sprintf("/api/v1/nodes/%d/status", node)

		h.do("POST", path, h.statusReport(1), nil).want(t, http.StatusUnauthorized)
		r := h.do("POST", path, h.statusReport(1), h.v2(other)).want(t, http.StatusUnauthorized)
		if !strings.HasPrefix(r.errMsg(t), "not authorized") {
			t.Fatalf("other twin: %s", r.body)
		}
		h.do("POST", "/api/v1/nodes/999999/status", h.statusReport(1), h.v2(tw)).want(t, http.StatusNotFound)
		h.do("POST", "/api/v1/nodes/x/status", h.statusReport(1), h.v2(tw)).want(t, http.StatusBadRequest)
		h.do("GET", "/api/v1/nodes/999999/status", nil, nil).want(t, http.StatusNotFound)
		h.do("GET", "/api/v1/nodes/0/status", nil, nil).want(t, http.StatusBadRequest)
		for _, size := range []string{"0", "13", "x", "-1"} {
			r := h.do("GET", path+"?size="+size, nil, nil).want(t, http.StatusBadRequest)
			if !strings.Contains(r.errMsg(t), "size") {
				t.Errorf("size=%s: %s", size, r.body)
			}
		}
		long := strings.Repeat("x", api.MaxStatusName+1)
		for _, c := range []struct {
			name  string
			edit  func(m map[string]any)
			field string
		}{
			{"no timestamp", func(m map[string]any) { delete(m, "timestamp") }, "timestamp"},
			{"old timestamp", func(m map[string]any) { m["timestamp"] = h.clock.Now().Unix() - 61 }, "timestamp"},
			{"future timestamp", func(m map[string]any) { m["timestamp"] = h.clock.Now().Unix() + 61 }, "timestamp"},
			{"bad version", func(m map[string]any) { m["version"] = "four" }, "version"},
			{"huge cru", func(m map[string]any) { m["total"] = map[string]any{"cru": 1 << 20} }, "total.cru"},
			{"huge ipv4", func(m map[string]any) { m["used"] = map[string]any{"ipv4": uint64(1)<<32 + 1} }, "used.ipv4"},
			{"negative", func(m map[string]any) { m["used"] = map[string]any{"mru": -1} }, "mru"},
			{"deployments", func(m map[string]any) { m["deployments"] = uint64(1)<<32 + 1 }, "deployments"},
			{"check name", func(m map[string]any) { m["checks"] = []map[string]any{{"name": "", "ok": true}} }, "checks[0].name"},
			{"peers reached", func(m map[string]any) { m["peers"] = map[string]any{"probed": 1, "reached": 2} }, "peers.reached"},
			{"peers probed", func(m map[string]any) { m["peers"] = map[string]any{"probed": 65, "reached": 0} }, "peers.probed"},
			{"peer id", func(m map[string]any) {
				m["peers"] = map[string]any{"probed": 1, "reached": 1, "probes": []map[string]any{{"reached": true}}}
			}, "peers.probes[0].node_id"},
			{"peer error", func(m map[string]any) {
				m["peers"] = map[string]any{"probed": 1, "reached": 0, "probes": []map[string]any{{"node_id": 3, "reached": false, "error": "bad\u202eevil"}}}
			}, "peers.probes[0].error"},
			{"check name long", func(m map[string]any) { m["checks"] = []map[string]any{{"name": long}} }, "checks[0].name"},
			{"check reason", func(m map[string]any) {
				m["checks"] = []map[string]any{{"name": "a", "reason": "bad\u202eevil"}}
			}, "checks[0].reason"},
			{"module state", func(m map[string]any) { m["modules"] = []map[string]any{{"name": "a", "state": "a b"}} }, "modules[0].state"},
			{"module exit", func(m map[string]any) {
				m["modules"] = []map[string]any{{"name": "a", "state": "failed", "last_exit": strings.Repeat("e", api.MaxStatusReason+1)}}
			}, "modules[0].last_exit"},
			{"module restarts", func(m map[string]any) {
				m["modules"] = []map[string]any{{"name": "a", "state": "failed", "restarts": uint64(1)<<32 + 1}}
			}, "modules[0].restarts"},
			{"too many checks", func(m map[string]any) {
				cs := make([]map[string]any, api.MaxStatusItems+1)
				for i := range cs {
					cs[i] = map[string]any{"name": fmt.Sprint("c", i), "ok": true}
				}
				m["checks"] = cs
			}, "checks"},
			{"too many modules", func(m map[string]any) {
				ms := make([]map[string]any, api.MaxStatusItems+1)
				for i := range ms {
					ms[i] = map[string]any{"name": fmt.Sprint("m", i), "state": "running"}
				}
				m["modules"] = ms
			}, "modules"},
			{"too many states", func(m map[string]any) {
				ws := map[string]any{}
				for i := range api.MaxStatusItems + 1 {
					ws[fmt.Sprint("s", i)] = 1
				}
				m["workloads"] = ws
			}, "workloads"},
			{"state name", func(m map[string]any) { m["workloads"] = map[string]any{"o k": 1} }, "workloads"},
			{"state count", func(m map[string]any) { m["workloads"] = map[string]any{"ok": uint64(1)<<32 + 1} }, "workloads.ok"},
			{"unknown field", func(m map[string]any) { m["uptime"] = 5 }, `"uptime"`},
			// Required members whose zero value is valid are refused
			// absent or null, not read as unhealthy or all free.
			{"no healthy", func(m map[string]any) { delete(m, "healthy") }, "invalid healthy: required"},
			{"null healthy", func(m map[string]any) { m["healthy"] = nil }, "invalid healthy: required"},
			{"no total", func(m map[string]any) { delete(m, "total") }, "invalid total: required"},
			{"no used", func(m map[string]any) { delete(m, "used") }, "invalid used: required"},
			{"null used", func(m map[string]any) { m["used"] = nil }, "invalid used: required"},
			{"peers no probed", func(m map[string]any) { m["peers"] = map[string]any{"reached": 0} }, "invalid peers.probed: required"},
			{"peers no reached", func(m map[string]any) { m["peers"] = map[string]any{"probed": 0} }, "invalid peers.reached: required"},
			{"probe no reached", func(m map[string]any) {
				m["peers"] = map[string]any{"probed": 1, "reached": 0, "probes": []map[string]any{{"node_id": 3}}}
			}, "invalid peers.probes[0].reached: required"},
		} {
			rep := h.statusReport(1)
			c.edit(rep)
			r := h.do("POST", path, rep, h.v2(tw)).want(t, http.StatusBadRequest)
			if msg := r.errMsg(t); !strings.Contains(msg, c.field) {
				t.Errorf("%s: error %q does not name %s", c.name, msg, c.field)
			}
		}
		h.do("POST", path, `{"timestamp": 1,`, h.v2(tw)).want(t, http.StatusBadRequest)
		h.do("POST", path, `null`, h.v2(tw)).want(t, http.StatusBadRequest)
		// Nothing was stored by the refusals.
		if st := h.statusOf(node); st.Latest != nil {
			t.Fatalf("a refused report was stored: %+v", st.Latest)
		}

		// Bad list filters.
		for _, q := range []string{"free_mru=8+lots", "free_mru=-1", "free_cru=x", "free_ips=1.5", "free_sru=99999999EiB",
			"free_hru>=x", "healthy=maybe", "status=sideways", "healthy=true&status=unhealthy", "free_cru=9223372036854775808"} {
			r := h.do("GET", "/api/v1/nodes?"+q, nil, nil).want(t, http.StatusBadRequest)
			name, _, _ := strings.Cut(q, "=")
			name = strings.TrimSuffix(strings.TrimPrefix(name, "healthy=true&"), ">")
			if q == "healthy=true&status=unhealthy" {
				name = "status"
			}
			if !strings.HasPrefix(r.errMsg(t), "invalid "+name) {
				t.Errorf("%s: %s", q, r.body)
			}
		}
	})
}

// TestNodeStatusFilters: the filters of GET /nodes return exactly the
// matching nodes, with the old client's healthy=false still filtering
// nothing.
func TestNodeStatusFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		farm2 := h.newFarm(farmer)
		type node struct {
			id      uint64
			tw      twin
			mru     uint64
			healthy bool
		}
		mk := func(farm uint64, mru uint64, healthy bool) node {
			tw := h.newTwin()
			return node{id: h.newNode(tw, farm), tw: tw, mru: mru, healthy: healthy}
		}
		report := func(n node) {
			rep := h.statusReport(n.mru)
			rep["healthy"] = n.healthy
			h.do("POST", fmt.Sprintf("/api/v1/nodes/%d/status", n.id), rep, h.v2(n.tw)).want(t, http.StatusCreated)
			h.uptime(n.tw, n.id, 100+uint64(h.clock.Now().Unix()%1000)).want(t, http.StatusCreated)
		}
		big, small, sick := mk(farm, 16<<30, true), mk(farm, 2<<30, true), mk(farm, 16<<30, false)
		silent, other, stale := mk(farm, 0, false), mk(farm2, 8<<30, true), mk(farm, 16<<30, true)
		// stale reports once, the others again after the cutoff: only
		// stale's latest report no longer counts.
		cutoff := h.srv.sched.cutoff(h.cfg.ReportInterval)
		report(stale)
		h.clock.Advance(cutoff)
		for _, n := range []node{big, small, sick, other} {
			report(n)
		}
		for _, c := range []struct {
			q    string
			want []node
		}{
			{"", []node{big, small, sick, silent, other, stale}},
			{"healthy=false", []node{big, small, sick, silent, other, stale}},
			{"farm_id=0&healthy=false&page=1&size=50", []node{big, small, sick, silent, other, stale}},
			{"healthy=true", []node{big, small, other}},
			{"status=healthy", []node{big, small, other}},
			{"status=unhealthy", []node{sick, stale}},
			{"free_mru=8GiB", []node{big, sick, other, stale}},
			{url.QueryEscape("free_mru>") + "=8GiB", []node{big, sick, other, stale}},
			{"free_mru>=8GiB", []node{big, sick, other, stale}},
			{"free_mru=8589934593", []node{big, sick, stale}},
			{"free_mru=8GiB&healthy=true", []node{big, other}},
			{fmt.Sprintf("free_mru=8GiB&healthy=true&farm_id=%d", farm), []node{big}},
			{"free_cru=6&free_ips=1&free_sru=1TB", []node{big, small, sick, other, stale}},
			{"free_cru=7", nil},
			{"free_ips=2", nil},
			{"free_hru=1", nil},
			{"free_mru=8GiB&healthy=true&size=1", []node{big}},
			{fmt.Sprintf("free_mru=8GiB&healthy=true&after_node_id=%d", big.id), []node{other}},
			{"free_mru=8GiB&healthy=true&size=1&page=2", []node{other}},
		} {
			want := []uint64{}
			for _, n := range c.want {
				want = append(want, n.id)
			}
			if got := h.listIDs(c.q); !slices.Equal(got, want) {
				t.Errorf("GET /nodes?%s = %v, want %v", c.q, got, want)
			}
		}
		// status=up and down are online=true and false.
		if up, down := h.listIDs("status=up"), h.listIDs("status=down"); !slices.Equal(up, h.listIDs("online=true")) ||
			!slices.Equal(down, h.listIDs("online=false")) || len(up) < 4 || !slices.Contains(down, silent.id) {
			t.Errorf("status=up %v, down %v", up, down)
		}
		// The node list carries the same verdicts.
		r := h.do("GET", "/api/v1/nodes", nil, nil).want(t, http.StatusOK)
		var ns []api.Node
		if err := json.Unmarshal(r.body, &ns); err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			wantHealthy := n.NodeID == big.id || n.NodeID == small.id || n.NodeID == other.id
			if n.Healthy != wantHealthy || (n.Free == nil) != (n.NodeID == silent.id) {
				t.Errorf("node %d in the list: healthy %v free %v", n.NodeID, n.Healthy, n.Free)
			}
		}
	})
}
