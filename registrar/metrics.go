package registrar

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/httpserve"
)

// metrics are the registrar's Prometheus collectors, registered on the
// registry given to New (never the global default one, so several servers
// can live in one process, as they do in tests).
type metrics struct {
	httpserve.ServiceMetrics
	rateLimited *prometheus.CounterVec
	uptime      prometheus.Counter
	restarts    prometheus.Counter
	status      *prometheus.CounterVec
	pruned      *prometheus.CounterVec
	interval    prometheus.Gauge

	billed          prometheus.Counter
	billedAmount    prometheus.Counter
	graced          prometheus.Counter
	expired         prometheus.Counter
	billingFailures prometheus.Counter
	billingSeconds  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	service, err := httpserve.NewServiceMetrics(reg, "registrar", []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		"Refused authentications by reason.")
	if err != nil {
		return nil, err
	}
	m := &metrics{
		ServiceMetrics: service,
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registrar_rate_limited_total",
			Help: "Requests refused with 429, by limiter (ip or twin).",
		}, []string{"by"}),
		uptime: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_uptime_reports_total",
			Help: "Uptime reports accepted.",
		}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_node_restarts_total",
			Help: "Node restarts detected from uptime reports (uptime went down).",
		}),
		status: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registrar_status_reports_total",
			Help: "Node status reports accepted, by the node's verdict (healthy true or false).",
		}, []string{"healthy"}),
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "registrar_pruned_rows_total",
			Help: "Rows deleted by the retention loops (uptime sessions, usage reports, nonces).",
		}, []string{"table"}),
		interval: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "registrar_report_interval_seconds",
			Help: "Effective uptime report interval handed to nodes.",
		}),
		billed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_billed_periods_total",
			Help: "Contract periods billed by this process (zero amounts included).",
		}),
		billedAmount: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_billed_utft_total",
			Help: "µTFT billed by this process, after SLA discounts.",
		}),
		graced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_contracts_grace_total",
			Help: "Contracts this process moved to grace (balance below zero).",
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_contracts_grace_expired_total",
			Help: "Contracts this process deleted at the end of their grace period.",
		}),
		billingFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "registrar_billing_failures_total",
			Help: "Billing runs that failed (retried at the next check).",
		}),
		billingSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "registrar_billing_duration_seconds",
			Help: "Duration of this process's last billing run.",
		}),
	}
	if err := httpserve.Register(reg, m.rateLimited, m.uptime, m.restarts, m.status, m.pruned, m.interval,
		m.billed, m.billedAmount, m.graced, m.expired, m.billingFailures, m.billingSeconds); err != nil {
		return nil, err
	}
	return m, nil
}

// authReason labels an authentication failure for the metrics: auth's
// reason, "error" for anything else.
func authReason(err error) string {
	if r := auth.Reason(err); r != "" {
		return r
	}
	return "error"
}
