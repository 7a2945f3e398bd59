package registrar

import (
	"context"
	"sync"
	"time"
)

// Uptime reporting schedule.
//
// The registrar tells every node when to report next (UptimeReply
// NextReportIn). Each node gets a fixed phase in the report interval,
// derived from its node id, so a fleet reports evenly spread over the
// interval instead of in bursts, and a mass reboot (every node reporting at
// once) is spread out again by the first reply. A small jitter keeps nodes
// with neighbouring phases from staying in lock-step. When the fleet is so
// large that the base interval would exceed the target report rate, the
// interval is stretched to nodes / rate.
//
// A node counts as online while its last report is younger than the online
// cutoff, which is a multiple of the effective interval and always longer
// than the longest next-report delay handed out plus a safety margin: a
// healthy node that follows the schedule is never shown offline just before
// its next report.

// Bounds of the schedule.
const (
	// minReportGapDivisor: a node is never asked to report again sooner
	// than interval/4, so a node whose phase slot is just ahead of now does
	// not report twice in a row.
	minReportGapDivisor = 4
	// maxJitterDivisor and maxJitterCap bound the jitter added to the
	// phase slot: min(interval/20, 2 minutes).
	maxJitterDivisor = 20
	maxJitterCap     = 2 * time.Minute
	// onlineSlack is the least margin between the longest delay handed
	// out and the online cutoff: network delay, retries, clock drift.
	onlineSlack = 5 * time.Minute
)

// reportSchedule computes report delays and the online cutoff.
type reportSchedule struct {
	// base is the report interval of a small fleet (40 minutes, what ZOS
	// uses when it gets no hint).
	base time.Duration
	// rate is the target number of reports per second over the fleet;
	// <= 0 never stretches the interval.
	rate float64
	// multiple times the interval is the online cutoff.
	multiple float64
}

// interval is the effective report interval for a fleet of nodes.
func (s reportSchedule) interval(nodes uint64) time.Duration {
	if s.rate <= 0 {
		return s.base
	}
	stretched := time.Duration(float64(nodes) / s.rate * float64(time.Second))
	if stretched > s.base {
		return stretched.Round(time.Second)
	}
	return s.base
}

// maxJitter is the bound of the jitter for an interval.
func maxJitter(interval time.Duration) time.Duration {
	return min(interval/maxJitterDivisor, maxJitterCap)
}

// maxNext is the longest delay next can return for an interval.
func maxNext(interval time.Duration) time.Duration {
	return interval + interval/minReportGapDivisor + maxJitter(interval)
}

// cutoff is how long after its last report a node still counts as online.
func (s reportSchedule) cutoff(interval time.Duration) time.Duration {
	c := time.Duration(s.multiple * float64(interval))
	// + 1 s: the delay is sent rounded up to whole seconds.
	return max(c, maxNext(interval)+time.Second+onlineSlack)
}

// next returns how long node nodeID should wait, from now, before its next
// report: the time to the node's next phase slot (at least interval/4
// away) plus a jitter below maxJitter(interval). It is deterministic in
// (nodeID, now), so tests can check it, yet varies from report to report.
func (s reportSchedule) next(nodeID uint64, now time.Time, interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = s.base
	}
	iv := uint64(interval)
	phase := mix64(nodeID) % iv
	pos := uint64(now.UnixNano()) % iv
	// Time from now to the next instant t with t ≡ phase (mod interval).
	wait := (phase + iv - pos) % iv
	if wait < iv/minReportGapDivisor {
		wait += iv
	}
	if j := uint64(maxJitter(interval)); j > 0 {
		wait += mix64(nodeID^uint64(now.UnixNano())*0x9e3779b97f4a7c15) % j
	}
	return time.Duration(wait)
}

// mix64 is the SplitMix64 finalizer: a cheap bijective hash that spreads
// sequential node ids evenly over the interval.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// nodeCounter caches the fleet size, which only sizes the report interval,
// so that reports do not count nodes every time. The count is refreshed
// when older than ttl, by one caller while the others use the old value.
type nodeCounter struct {
	count func(ctx context.Context) (uint64, error)
	now   func() time.Time
	ttl   time.Duration

	mu         sync.Mutex
	refreshing bool
	value      uint64
	at         time.Time
}

func newNodeCounter(count func(ctx context.Context) (uint64, error), now func() time.Time, ttl time.Duration) *nodeCounter {
	return &nodeCounter{count: count, now: now, ttl: ttl}
}

// get returns the cached count, refreshing it when stale. A failing
// refresh keeps the previous value: the count only tunes the schedule.
func (c *nodeCounter) get(ctx context.Context) uint64 {
	c.mu.Lock()
	now := c.now()
	fresh := !c.at.IsZero() && now.Sub(c.at) < c.ttl
	if fresh || c.refreshing {
		v := c.value
		c.mu.Unlock()
		return v
	}
	c.refreshing = true
	c.mu.Unlock()

	n, err := c.count(ctx)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.refreshing = false
	if err == nil {
		c.value, c.at = n, now
	}
	return c.value
}
