package hub

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/auth"
)

// metrics are the hub's collectors, registered on the registry given to
// New, never the global one (several hubs live in one test process).
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	authFailures  *prometheus.CounterVec
	blocksStored  prometheus.Counter
	blockBytesIn  prometheus.Counter
	blocksRefused prometheus.Counter
	blockBytesOut prometheus.Counter
	published     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hub_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hub_http_request_duration_seconds", Help: "HTTP request durations by route pattern and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "code"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hub_auth_failures_total", Help: "Refused publishing requests by reason.",
		}, []string{"reason"}),
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
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.authFailures, m.blocksStored, m.blockBytesIn, m.blocksRefused, m.blockBytesOut, m.published} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	c := strconv.Itoa(code)
	m.requests.WithLabelValues(route, c).Inc()
	m.duration.WithLabelValues(route, c).Observe(d.Seconds())
}

// authReason labels an authentication failure.
func authReason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{auth.ErrNoCredentials, "no_credentials"},
		{auth.ErrLegacyDisabled, "legacy_disabled"},
		{auth.ErrMalformed, "malformed"},
		{auth.ErrUnknownTwin, "unknown_publisher"},
		{auth.ErrBadSignature, "bad_signature"},
		{auth.ErrDigestMismatch, "digest_mismatch"},
		{auth.ErrExpired, "expired"},
		{auth.ErrNotYetValid, "not_yet_valid"},
		{auth.ErrReplay, "replay"},
		{auth.ErrBodyTooLarge, "body_too_large"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "other"
}
