package registrar

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"
)

func TestRateLimiterBucket(t *testing.T) {
	clock := newFakeClock()
	l := newRateLimiter(2, 3, 1000, clock.Now)
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait <= 0 || wait > 500*time.Millisecond {
		t.Fatalf("over the burst: ok %v wait %s", ok, wait)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another key shares the bucket")
	}
	clock.Advance(500 * time.Millisecond) // one token at 2/s
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("token not refilled")
	}
	if ok, _ := l.allow("a"); ok {
		t.Fatal("refilled more than elapsed time allows")
	}
	clock.Advance(time.Hour)
	for i := range 3 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("refill beyond the burst: request %d refused", i)
		}
	}
	if ok, _ := l.allow("a"); ok {
		t.Fatal("bucket holds more than the burst")
	}
}

func TestRateLimiterBoundedMemory(t *testing.T) {
	clock := newFakeClock()
	const maxKeys = 160
	l := newRateLimiter(1, 1, maxKeys, clock.Now)
	for i := range 100_000 {
		l.allow(fmt.Sprint("ip", i))
	}
	if n := l.size(); n > maxKeys {
		t.Fatalf("%d buckets kept, bound %d", n, maxKeys)
	}
	// Eviction only forgets: an evicted client starts with a full bucket.
	if ok, _ := l.allow("ip0"); !ok {
		t.Fatal("an evicted client is refused")
	}
}

func TestRateLimiterDisabled(t *testing.T) {
	l := newRateLimiter(0, 10, 100, time.Now)
	for range 1000 {
		if ok, _ := l.allow("x"); !ok {
			t.Fatal("a disabled limiter refused")
		}
	}
}

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	} {
		if got := ipKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("ipKey(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestClientIPBehindTrustedProxy(t *testing.T) {
	cfg := testConfig()
	cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	s := &Server{cfg: cfg}
	for _, c := range []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:5000", "203.0.113.9", "192.0.2.1"},                          // untrusted peer: header ignored
		{"10.1.1.1:5000", "203.0.113.9", "203.0.113.9"},                         // trusted proxy
		{"10.1.1.1:5000", "198.51.100.1, 203.0.113.9, 10.2.2.2", "203.0.113.9"}, // right-most untrusted
		{"10.1.1.1:5000", "", "10.1.1.1"},
		{"10.1.1.1:5000", "garbage", "10.1.1.1"},
		{"[2001:db8::1]:443", "", "2001:db8::1"},
	} {
		r := newRequest("GET", "/")
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := s.clientIP(r).String(); got != c.want {
			t.Errorf("remote %s xff %q: %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func newRequest(method, target string) *http.Request {
	return httptest.NewRequest(method, target, nil)
}
