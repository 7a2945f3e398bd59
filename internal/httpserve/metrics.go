package httpserve

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults returns a server's logger, registry and clock with each that is
// nil replaced by what grid4's servers default to: a logger that discards,
// a new private registry (never the global one), time.Now.
func Defaults(log *slog.Logger, reg *prometheus.Registry, now func() time.Time) (*slog.Logger, *prometheus.Registry, func() time.Time) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if now == nil {
		now = time.Now
	}
	return log, reg, now
}

// MetricsHandler serves the collectors of reg (a server's /metrics); the
// errors of gathering them go to log at warning level.
func MetricsHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)})
}

// RequestMetrics counts a server's requests and their durations by route
// and status code: <namespace>_http_requests_total and
// <namespace>_http_request_duration_seconds.
type RequestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// children holds the counter and histogram of each route and code
	// seen (a routeCode's *routeChildren): the vectors' own lookup hashes
	// the label values on every request. Routes and codes are few (a
	// server's route table), so the map stays small.
	children sync.Map
}

// routeCode is the key of RequestMetrics.children.
type routeCode struct {
	route string
	code  int
}

// routeChildren are the collectors of one route and code.
type routeChildren struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewRequestMetrics makes the collectors, duration buckets in seconds, and
// registers them on reg (a server's own registry, never the global one:
// several servers live in one test process).
func NewRequestMetrics(reg prometheus.Registerer, namespace string, buckets []float64) (*RequestMetrics, error) {
	m := &RequestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: namespace + "_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: namespace + "_http_request_duration_seconds", Help: "HTTP request durations by route pattern and status code.",
			Buckets: buckets,
		}, []string{"route", "code"}),
	}
	if err := Register(reg, m.requests, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// Observe counts one request of route answered with code after d.
func (m *RequestMetrics) Observe(route string, code int, d time.Duration) {
	k := routeCode{route, code}
	c, ok := m.children.Load(k)
	if !ok {
		label := strconv.Itoa(code)
		c, _ = m.children.LoadOrStore(k, &routeChildren{
			count:    m.requests.WithLabelValues(route, label),
			duration: m.duration.WithLabelValues(route, label),
		})
	}
	rc := c.(*routeChildren)
	rc.count.Inc()
	rc.duration.Observe(d.Seconds())
}

// ServiceMetrics are the collectors every grid4 HTTP service has: its
// requests (RequestMetrics) and its refused authentications by reason,
// <namespace>_auth_failures_total.
type ServiceMetrics struct {
	*RequestMetrics
	// AuthFailures counts refused authentications by their "reason" label.
	AuthFailures *prometheus.CounterVec
}

// NewServiceMetrics makes and registers on reg the request metrics (as
// NewRequestMetrics) and the authentication failure counter, described by
// authHelp.
func NewServiceMetrics(reg prometheus.Registerer, namespace string, buckets []float64, authHelp string) (ServiceMetrics, error) {
	requests, err := NewRequestMetrics(reg, namespace, buckets)
	if err != nil {
		return ServiceMetrics{}, err
	}
	m := ServiceMetrics{
		RequestMetrics: requests,
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: namespace + "_auth_failures_total", Help: authHelp,
		}, []string{"reason"}),
	}
	if err := reg.Register(m.AuthFailures); err != nil {
		return ServiceMetrics{}, err
	}
	return m, nil
}

// Register registers every collector on reg, stopping at the first error
// (a name registered twice).
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// RPCMetricNames names a JSON-RPC server's metrics and says what each
// counts (the names are part of each server's documented interface).
type RPCMetricNames struct {
	Requests, RequestsHelp string // counter by method and result code
	Duration, DurationHelp string // histogram by method
	Refused, RefusedHelp   string // counter by HTTP status
}

// RPCMetrics are a JSON-RPC server's metrics: calls by method and result
// code (0 for success), their durations by method, and the requests
// refused before JSON-RPC by HTTP status.
type RPCMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	refused  *prometheus.CounterVec
}

// NewRPCMetrics registers the metrics named n on reg.
func NewRPCMetrics(reg prometheus.Registerer, n RPCMetricNames) (*RPCMetrics, error) {
	m := &RPCMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: n.Requests, Help: n.RequestsHelp}, []string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: n.Duration, Help: n.DurationHelp, Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"method"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: n.Refused, Help: n.RefusedHelp}, []string{"status"}),
	}
	return m, Register(reg, m.requests, m.duration, m.refused)
}

// Observe counts a call (jsonrpc.Server.Observe).
func (m *RPCMetrics) Observe(method string, code int, elapsed time.Duration) {
	m.requests.WithLabelValues(method, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(method).Observe(elapsed.Seconds())
}

// Refused counts a request refused before JSON-RPC with status.
func (m *RPCMetrics) Refused(status int) {
	m.refused.WithLabelValues(strconv.Itoa(status)).Inc()
}
