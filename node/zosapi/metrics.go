package zosapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
}

func (m *metrics) register(reg *prometheus.Registry, e Engine) error {
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zosapi_rpc_requests_total",
		Help: "JSON-RPC calls by method and result code (0 for success).",
	}, []string{"method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "zosapi_rpc_duration_seconds",
		Help:    "Time to answer a JSON-RPC call.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
	}, []string{"method"})
	m.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "zosapi_auth_failures_total",
		Help: "Requests refused before JSON-RPC, by HTTP status.",
	}, []string{"status"})
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.authFailures, newEngineCollector(e)} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// engineCollector reports the engine's statistics at scrape time.
type engineCollector struct {
	e                                    Engine
	queued, deployments, workloads, used *prometheus.Desc
}

func newEngineCollector(e Engine) engineCollector {
	return engineCollector{
		e:           e,
		queued:      prometheus.NewDesc("zosapi_queued_jobs", "Operations queued in the provisioning engine.", nil, nil),
		deployments: prometheus.NewDesc("zosapi_deployments", "Deployments on the node, by whether they are deleted.", []string{"deleted"}, nil),
		workloads:   prometheus.NewDesc("zosapi_workloads", "Workloads on the node by type and state.", []string{"type", "state"}, nil),
		used:        prometheus.NewDesc("zosapi_capacity_used", "Capacity used by workloads, by resource (cru, mru, sru, hru, ipv4).", []string{"resource"}, nil),
	}
}

// Describe sends the metrics' descriptions.
func (c engineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queued
	ch <- c.deployments
	ch <- c.workloads
	ch <- c.used
}

// Collect reads the engine now.
func (c engineCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if st, err := c.e.Statistics(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Queued))
		ch <- prometheus.MustNewConstMetric(c.deployments, prometheus.GaugeValue, float64(st.Deployments), "false")
		ch <- prometheus.MustNewConstMetric(c.deployments, prometheus.GaugeValue, float64(st.Deleted), "true")
		for t, states := range st.Workloads {
			for s, n := range states {
				ch <- prometheus.MustNewConstMetric(c.workloads, prometheus.GaugeValue, float64(n), string(t), string(s))
			}
		}
	}
	if cr, err := c.e.Capacity(ctx); err == nil {
		for _, r := range []struct {
			name string
			v    uint64
		}{{"cru", cr.Used.CRU}, {"mru", cr.Used.MRU}, {"sru", cr.Used.SRU}, {"hru", cr.Used.HRU}, {"ipv4", cr.Used.IPv4}} {
			ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(r.v), r.name)
		}
	}
}
