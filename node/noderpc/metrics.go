package noderpc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/internal/httpserve"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
}

func (m *metrics) register(reg *prometheus.Registry) error {
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "noderpc_requests_total",
		Help: "Node-to-node JSON-RPC calls served, by method and result code (0 for success).",
	}, []string{"method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "noderpc_duration_seconds",
		Help:    "Time to answer a node-to-node call.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
	}, []string{"method"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "noderpc_refused_total",
		Help: "Node-to-node requests refused before JSON-RPC, by HTTP status.",
	}, []string{"status"})
	return httpserve.Register(reg, m.requests, m.duration, m.authFailures)
}
