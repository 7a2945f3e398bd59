package registrar

import (
	"container/list"
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// rateLimiter is a set of token buckets keyed by client (an IP or a twin),
// in memory and private to this process: with several registrar processes
// each one enforces its own limits.
//
// Memory is bounded: at most maxKeys buckets are kept; when full, the least
// recently used bucket is dropped. A dropped client starts again with a
// full bucket, so eviction can only make the limiter more lenient, never
// refuse a client that is within its rate. The keys are spread over shards
// so concurrent requests rarely wait on the same lock.
type rateLimiter struct {
	rate   float64 // tokens per second
	burst  float64
	now    func() time.Time
	seed   maphash.Seed
	shards []limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	max     int
	buckets map[string]*list.Element
	lru     *list.List // front: most recently used
}

type bucket struct {
	key    string
	tokens float64
	at     time.Time
}

const limiterShards = 16

// newRateLimiter makes a limiter allowing rate requests per second with
// bursts of burst, keeping at most maxKeys clients. It returns nil (no
// limit) when rate <= 0.
func newRateLimiter(rate float64, burst int, maxKeys int, now func() time.Time) *rateLimiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = 1
	}
	perShard := max(maxKeys/limiterShards, 1)
	l := &rateLimiter{rate: rate, burst: float64(burst), now: now, seed: maphash.MakeSeed(), shards: make([]limiterShard, limiterShards)}
	for i := range l.shards {
		l.shards[i] = limiterShard{max: perShard, buckets: make(map[string]*list.Element), lru: list.New()}
	}
	return l
}

// allow takes one token for key. When none is left it returns false and
// how long until one is.
func (l *rateLimiter) allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	s := &l.shards[maphash.String(l.seed, key)%limiterShards]
	now := l.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var b *bucket
	if el, ok := s.buckets[key]; ok {
		s.lru.MoveToFront(el)
		b = el.Value.(*bucket)
		if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
			b.tokens = min(l.burst, b.tokens+elapsed*l.rate)
		}
		b.at = now
	} else {
		if s.lru.Len() >= s.max {
			oldest := s.lru.Back()
			s.lru.Remove(oldest)
			delete(s.buckets, oldest.Value.(*bucket).key)
		}
		b = &bucket{key: key, tokens: l.burst, at: now}
		s.buckets[key] = s.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// size is the number of buckets kept (for tests).
func (l *rateLimiter) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}

// ipKey is the rate-limit key of a client address: the address itself for
// IPv4, its /64 for IPv6 (one subscriber usually owns a whole /64, so per
// address limits would be trivial to dodge).
func ipKey(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}
