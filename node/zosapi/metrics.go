package zosapi

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/internal/httpserve"
)

// newMetrics registers the server's Prometheus metrics and the engine's
// statistics.
func newMetrics(reg *prometheus.Registry, e Engine) (*httpserve.RPCMetrics, error) {
	m, err := httpserve.NewRPCMetrics(reg, httpserve.RPCMetricNames{
		Requests:     "zosapi_rpc_requests_total",
		RequestsHelp: "JSON-RPC calls by method and result code (0 for success).",
		Duration:     "zosapi_rpc_duration_seconds",
		DurationHelp: "Time to answer a JSON-RPC call.",
		Refused:      "zosapi_auth_failures_total",
		RefusedHelp:  "Requests refused before JSON-RPC, by HTTP status.",
	})
	if err != nil {
		return nil, err
	}
	return m, reg.Register(newEngineCollector(e))
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
