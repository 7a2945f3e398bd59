package registrar

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/logflag"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store/storetest"
)

// BenchmarkHandler measures the registrar's own work per request on
// PostgreSQL — routing, middleware, authentication, the handler, metrics
// and the access log to a file as cmd/registrar writes it — without an
// HTTP server or client: the handler is called directly, so ns/op and
// allocs/op are the part of a request's CPU the registrar's code decides.
// Run with
//
//	go test -run '^$' -bench Handler -benchmem ./registrar/
func BenchmarkHandler(b *testing.B) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		b.Run("version/log="+level.String(), func(b *testing.B) { benchVersion(b, level) })
		b.Run("uptime-legacy/log="+level.String(), func(b *testing.B) { benchLegacyUptime(b, level) })
		b.Run("status-legacy/log="+level.String(), func(b *testing.B) { benchLegacyStatus(b, level) })
	}
}

// benchServer is a registrar on a fresh PostgreSQL store logging at level
// to a file, as cmd/registrar does.
func benchServer(b *testing.B, level slog.Level) (*harness, http.Handler) {
	h := newHarness(b, storetest.Postgres, nil)
	f, err := os.Create(filepath.Join(b.TempDir(), "registrar.log"))
	if err != nil {
		b.Fatal(err)
	}
	out := logflag.NewBuffered(f, 100*time.Millisecond)
	b.Cleanup(func() { _ = out.Close(); _ = f.Close() })
	srv, err := New(h.cfg, Deps{Store: h.db, Logger: logflag.New(out, level, "text"), Now: h.clock.Now})
	if err != nil {
		b.Fatal(err)
	}
	return h, srv.Handler()
}

// benchWriter is the cheapest http.ResponseWriter: it keeps the status
// and drops the body.
type benchWriter struct {
	header http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.header }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(code int)        { w.status = code }

// serve has handler answer req through w and tells whether the status
// was want (failing the benchmark if not).
func (w *benchWriter) serve(b *testing.B, handler http.Handler, req *http.Request, want int) bool {
	clear(w.header)
	w.status = 0
	handler.ServeHTTP(w, req)
	if w.status != want {
		b.Errorf("status %d, want %d", w.status, want)
		return false
	}
	return true
}

func benchVersion(b *testing.B, level slog.Level) {
	h, handler := benchServer(b, level)
	if _, err := h.db.SetZosVersion(context.Background(), api.ZosVersion{Version: "v4.1.2", SafeToUpgrade: true}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{header: http.Header{}}
		req := httptest.NewRequest("GET", "/api/v1/zos/version", nil)
		for pb.Next() && w.serve(b, handler, req, http.StatusOK) {
		}
	})
}

func benchLegacyUptime(b *testing.B, level slog.Level) {
	h, handler := benchServer(b, level)
	const nodes = 64
	farm := h.newFarm(h.newTwin())
	type node struct {
		id    uint64
		xauth string
	}
	ns := make([]node, nodes)
	for i := range ns {
		tw := h.newTwin()
		// X-Auth signs only the second and the twin: one header per node
		// serves every report; the replay guard tells the reports apart
		// by their bodies.
		ns[i] = node{h.newNode(tw, farm), xauth(tw, h.clock.Now().Unix())}
	}
	var seq atomic.Uint64
	now := h.clock.Now().Unix()
	reqs := make([]*http.Request, nodes)
	for i, n := range ns {
		reqs[i] = httptest.NewRequest("POST", fmt.Sprintf("/api/v1/nodes/%d/uptime", n.id), nil)
		reqs[i].Header.Set("Content-Type", "application/json")
		reqs[i].Header.Set("X-Auth", n.xauth)
	}
	// Reports wait for the database: enough in flight for the store to
	// batch them, as under load.
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{header: http.Header{}}
		for pb.Next() {
			i := seq.Add(1)
			body := fmt.Appendf(nil, `{"uptime":%d,"timestamp":%d}`, 1000+i, now)
			req := reqs[i%nodes].Clone(context.Background())
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			if !w.serve(b, handler, req, http.StatusCreated) {
				return
			}
		}
	})
}

// benchStatusReport is a node's status report as zosd sends it: 14
// supervised processes, powerd's checks, one deployment of 3 workloads;
// deployments is set to n so that each body differs (the replay guard
// tells X-Auth requests apart by their bodies).
func benchStatusReport(n uint64, now int64) []byte {
	rep := api.NodeStatusReport{Timestamp: now, Version: "v4.1.2", Healthy: true,
		Total:       api.Capacity{CRU: 32, MRU: 256 << 30, SRU: 4 << 40, HRU: 16 << 40, IPv4: 4},
		Used:        api.Capacity{CRU: 6, MRU: 24 << 30, SRU: 300 << 30, IPv4: 1},
		Deployments: n, Workloads: map[string]uint64{"ok": 3}}
	for _, m := range []string{"redis", "identityd", "noded", "storaged", "flistd", "location", "powerd", "registrar_gateway",
		"registrar_light", "netlightd", "contd", "vmd", "provisiond", "upgrader"} {
		rep.Modules = append(rep.Modules, api.ModuleState{Name: m, State: "running", Restarts: 1})
	}
	for _, c := range []string{"disk_space", "data_writable", "bus", "clock"} {
		rep.Checks = append(rep.Checks, api.HealthCheck{Name: c, OK: true})
	}
	body, err := json.Marshal(rep)
	if err != nil {
		panic(err)
	}
	return body
}

func benchLegacyStatus(b *testing.B, level slog.Level) {
	h, handler := benchServer(b, level)
	const nodes = 64
	farm := h.newFarm(h.newTwin())
	reqs := make([]*http.Request, nodes)
	for i := range reqs {
		tw := h.newTwin()
		reqs[i] = httptest.NewRequest("POST", fmt.Sprintf("/api/v1/nodes/%d/status", h.newNode(tw, farm)), nil)
		reqs[i].Header.Set("Content-Type", "application/json")
		reqs[i].Header.Set("X-Auth", xauth(tw, h.clock.Now().Unix()))
	}
	var seq atomic.Uint64
	now := h.clock.Now().Unix()
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{header: http.Header{}}
		for pb.Next() {
			i := seq.Add(1)
			body := benchStatusReport(i, now)
			req := reqs[i%nodes].Clone(context.Background())
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			if !w.serve(b, handler, req, http.StatusCreated) {
				return
			}
		}
	})
	b.ReportMetric(float64(len(benchStatusReport(1, now))), "body-bytes")
}
