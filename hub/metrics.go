package hub

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/httpserve"
)

// metrics are the hub's collectors, registered on the registry given to
// New, never the global one (several hubs live in one test process).
type metrics struct {
	httpserve.ServiceMetrics
	blocksStored  prometheus.Counter
	blockBytesIn  prometheus.Counter
	blocksRefused prometheus.Counter
	blockBytesOut prometheus.Counter
	published     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	service, err := httpserve.NewServiceMetrics(reg, "hub", []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		"Refused publishing requests by reason.")
	if err != nil {
		return nil, err
	}
	m := &metrics{
		ServiceMetrics: service,
		blocksStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_blocks_stored_total", Help: "Blocks uploaded and stored (not counting blocks already present).",
		}),
		blockBytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_block_upload_bytes_total", Help: "Stored bytes of the blocks uploaded and stored.",
		}),
		blocksRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_blocks_refused_total", Help: "Uploaded blocks refused because their content does not match their id.",
		}),
		blockBytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hub_block_download_bytes_total", Help: "Bytes of block downloads sent (ranges included).",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hub_published_total", Help: "Successful publications by kind (flist, tag, link).",
		}, []string{"kind"}),
	}
	if err := httpserve.Register(reg, m.blocksStored, m.blockBytesIn, m.blocksRefused, m.blockBytesOut, m.published); err != nil {
		return nil, err
	}
	return m, nil
}

// authReason labels an authentication failure: auth's reason, with the
// hub's own words for an unknown key ("unknown_publisher") and "other" for
// the failures its metrics have never told apart.
func authReason(err error) string {
	switch r := auth.Reason(err); r {
	case "unknown_twin":
		return "unknown_publisher"
	case "", "unsupported_algorithm", "insufficient_coverage", "validity_too_long", "nonce_store_full":
		return "other"
	default:
		return r
	}
}
