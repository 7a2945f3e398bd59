package noderpc

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/internal/httpserve"
)

// newMetrics registers the server's Prometheus metrics.
func newMetrics(reg *prometheus.Registry) (*httpserve.RPCMetrics, error) {
	return httpserve.NewRPCMetrics(reg, httpserve.RPCMetricNames{
		Requests:     "noderpc_requests_total",
		RequestsHelp: "Node-to-node JSON-RPC calls served, by method and result code (0 for success).",
		Duration:     "noderpc_duration_seconds",
		DurationHelp: "Time to answer a node-to-node call.",
		Refused:      "noderpc_refused_total",
		RefusedHelp:  "Node-to-node requests refused before JSON-RPC, by HTTP status.",
	})
}
