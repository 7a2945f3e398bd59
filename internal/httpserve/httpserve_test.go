package httpserve

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestServeFinishesRequestsInFlight: a request running when ctx ends is
// answered, and Serve returns nil.
func TestServeFinishesRequestsInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		if r.Context().Err() != nil {
			t.Error("the request's context ended with the server's")
		}
		_, _ = io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, srv, ln, 5*time.Second, slog.New(slog.DiscardHandler), "test") }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if s := <-got; s != "done" {
		t.Fatalf("answer %q", s)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestServeReportsAClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), &http.Server{}, ln, time.Second, slog.New(slog.DiscardHandler), "test")
	if err == nil || !strings.HasPrefix(err.Error(), "test: serve: ") {
		t.Fatalf("Serve on a closed listener: %v", err)
	}
}

func TestRecorder(t *testing.T) {
	w := httptest.NewRecorder()
	rec := NewRecorder(w)
	if rec.Status() != http.StatusOK || rec.Wrote() {
		t.Fatal("fresh recorder")
	}
	rec.WriteHeader(http.StatusTeapot)
	rec.WriteHeader(http.StatusOK)
	_, _ = rec.Write([]byte("abc"))
	if rec.Status() != http.StatusTeapot || !rec.Wrote() || rec.Bytes() != 3 || http.NewResponseController(rec).Flush() != nil {
		t.Fatalf("status %d wrote %v bytes %d", rec.Status(), rec.Wrote(), rec.Bytes())
	}
}

func TestProbe(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /a", func(http.ResponseWriter, *http.Request) {})
	status, h := Probe(mux, httptest.NewRequest("POST", "/a", nil))
	if status != http.StatusMethodNotAllowed || !strings.Contains(h.Get("Allow"), "GET") {
		t.Fatalf("POST /a: %d %v", status, h)
	}
	if status, _ := Probe(mux, httptest.NewRequest("GET", "/b", nil)); status != http.StatusNotFound {
		t.Fatalf("GET /b: %d", status)
	}
}

// gathered returns the names of the metric families of reg, space
// separated, and the value of the first counter of each.
func gathered(t *testing.T, reg *prometheus.Registry) (string, map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	counts := map[string]float64{}
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if ms := mf.GetMetric(); len(ms) > 0 && ms[0].GetCounter() != nil {
			counts[mf.GetName()] = ms[0].GetCounter().GetValue()
		}
	}
	return strings.Join(names, " "), counts
}

func TestRequestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewRequestMetrics(reg, "x", []float64{.1, 1})
	if err != nil {
		t.Fatal(err)
	}
	m.Observe("GET /a", 200, time.Millisecond)
	names, counts := gathered(t, reg)
	if names != "x_http_request_duration_seconds x_http_requests_total" {
		t.Errorf("collectors %v", names)
	}
	if counts["x_http_requests_total"] != 1 {
		t.Errorf("count %v", counts)
	}
	if _, err := NewRequestMetrics(reg, "x", nil); err == nil {
		t.Fatal("registered the same names twice")
	}
}

func TestServiceMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewServiceMetrics(reg, "y", []float64{.1, 1}, "Refused.")
	if err != nil {
		t.Fatal(err)
	}
	m.Observe("GET /a", 401, time.Millisecond)
	m.AuthFailures.WithLabelValues("bad_signature").Inc()
	names, counts := gathered(t, reg)
	if names != "y_auth_failures_total y_http_request_duration_seconds y_http_requests_total" {
		t.Errorf("collectors %v", names)
	}
	if counts["y_auth_failures_total"] != 1 || counts["y_http_requests_total"] != 1 {
		t.Errorf("counts %v", counts)
	}
	if _, err := NewServiceMetrics(reg, "y", nil, "x"); err == nil {
		t.Fatal("registered the same names twice")
	}
}

func TestNewServer(t *testing.T) {
	srv := NewServer(http.NotFoundHandler(), time.Minute, 2*time.Minute)
	if srv.ReadTimeout != time.Minute || srv.WriteTimeout != 2*time.Minute || srv.ReadHeaderTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes != 64<<10 {
		t.Fatalf("%+v", srv)
	}
}

func TestRun(t *testing.T) {
	var got net.Addr
	err := Run(context.Background(), "127.0.0.1:0", "test", func(_ context.Context, ln net.Listener) error {
		got = ln.Addr()
		return ln.Close()
	})
	if err != nil || got == nil {
		t.Fatalf("Run: %v (served %v)", err, got)
	}
	err = Run(context.Background(), "127.0.0.1:-1", "test", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "test: listen on 127.0.0.1:-1: ") {
		t.Fatalf("Run on a bad address: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	log, reg, now := Defaults(nil, nil, nil)
	if log == nil || reg == nil || now == nil {
		t.Fatal("Defaults left a nil")
	}
	myLog, myReg := slog.New(slog.DiscardHandler), prometheus.NewRegistry()
	fixed := time.Unix(1, 0)
	log, reg, now = Defaults(myLog, myReg, func() time.Time { return fixed })
	if log != myLog || reg != myReg || !now().Equal(fixed) {
		t.Fatal("Defaults replaced a given dependency")
	}
	rec := httptest.NewRecorder()
	MetricsHandler(reg, log).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("MetricsHandler: %d", rec.Code)
	}
}
