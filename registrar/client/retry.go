package client

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds the retries of one call. A call is retried only when
// no HTTP answer came back (a network error) or the registrar answered 5xx
// or 429; never after another 4xx. Each retry waits a random time between
// zero and min(MaxDelay, BaseDelay·2^(retry-1)) ("full jitter"), or the
// time the server asked for with Retry-After when it did.
//
// Retrying a POST after a network error can repeat a change the registrar
// already made (the answer was lost): the retry then fails with
// ErrConflict.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts, the first included: 1 means
	// no retries. Zero or less means DefaultMaxAttempts.
	MaxAttempts int
	// BaseDelay is the cap of the first retry's wait. Zero or less means
	// DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay caps every backoff wait. Zero or less means
	// DefaultMaxDelay.
	MaxDelay time.Duration
	// MaxRetryAfter is the longest Retry-After the client waits for; when
	// the server asks for more, the call fails at once with the server's
	// error (ErrRateLimited for a 429). Zero or less means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
}

// Defaults of the RetryPolicy fields left zero: four attempts, waits capped
// at 250ms, 500ms, 1s (never above 10s), Retry-After honoured up to two
// minutes.
const (
	DefaultMaxAttempts   = 4
	DefaultBaseDelay     = 250 * time.Millisecond
	DefaultMaxDelay      = 10 * time.Second
	DefaultMaxRetryAfter = 2 * time.Minute
)

// withDefaults fills zero fields with the defaults.
func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	return p
}

// backoffCap returns the upper bound of the wait before retry number
// retry (1 for the first retry).
func (p RetryPolicy) backoffCap(retry int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < retry && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// fullJitter returns a uniformly random duration in [0, limit).
func fullJitter(limit time.Duration) time.Duration {
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (relative to now). It returns false when the value is absent or
// unusable; a date in the past gives zero.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		const maxSecs = int64(1<<63-1) / int64(time.Second)
		return time.Duration(min(secs, maxSecs)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// retryableStatus tells whether an answer with this status is retried.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}
