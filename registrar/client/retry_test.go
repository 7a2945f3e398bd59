package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/registrar/api"
)

// fakeTime is a clock that the recorded sleeps advance.
type fakeTime struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeTime() *fakeTime { return &fakeTime{now: time.Now().Truncate(time.Second)} }

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return ctx.Err()
}

func (f *fakeTime) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// failing answers the first n requests with status (and Retry-After when
// retryAfter is not empty), then calls ok.
func failing(n int, status int, retryAfter string, ok func(w http.ResponseWriter, r *http.Request, s seen)) (func(w http.ResponseWriter, r *http.Request, s seen), *atomic.Int32) {
	var calls atomic.Int32
	return func(w http.ResponseWriter, r *http.Request, s seen) {
		if int(calls.Add(1)) <= n {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			replyError(w, status, "try later")
			return
		}
		ok(w, r, s)
	}, &calls
}

func identity(l time.Duration) time.Duration { return l }

func TestRetryThenSuccessResignsEachAttempt(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(1, kp)
	h, calls := failing(2, http.StatusServiceUnavailable, "", func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusCreated, api.FarmID{FarmID: 9})
	})
	f.handle("POST /api/v1/farms", true, h)
	ft := newFakeTime()
	c := f.client(WithIdentity(kp, 1), WithSleep(ft.Sleep), WithJitter(identity))
	id, err := c.CreateFarm(context.Background(), NewFarm{Name: "x"})
	if err != nil || id != 9 {
		t.Fatalf("CreateFarm = %d, %v", id, err)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d attempts, want 3", calls.Load())
	}
	if got, want := ft.Sleeps(), []time.Duration{250 * time.Millisecond, 500 * time.Millisecond}; !equalDurations(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	// Every attempt verified (the verifier refuses a reused nonce) and
	// carried its own signature over the same body.
	reqs := f.requests()
	sigs := map[string]bool{}
	for _, s := range reqs {
		if s.Caller.TwinID != 1 {
			t.Errorf("attempt not verified: %+v", s.Caller)
		}
		sigs[s.Header.Get(auth.HeaderSignature)] = true
		if string(s.Body) != string(reqs[0].Body) {
			t.Errorf("body changed: %s vs %s", s.Body, reqs[0].Body)
		}
	}
	if len(sigs) != 3 {
		t.Errorf("%d distinct signatures over 3 attempts", len(sigs))
	}
}

func TestRetryExhausted(t *testing.T) {
	f := newFake(t)
	h, calls := failing(100, http.StatusInternalServerError, "", nil)
	f.handle("GET /api/v1/farms/{id}", false, h)
	ft := newFakeTime()
	c := f.client(WithSleep(ft.Sleep), WithRetry(RetryPolicy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: 1500 * time.Millisecond}), WithJitter(identity))
	_, err := c.Farm(context.Background(), 1)
	var ae *APIError
	if !errors.Is(err, ErrServer) || !errors.As(err, &ae) || ae.Status != 500 {
		t.Fatalf("err = %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d attempts, want 3", calls.Load())
	}
	if got, want := ft.Sleeps(), []time.Duration{time.Second, 1500 * time.Millisecond}; !equalDurations(got, want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
}

func TestNoRetryOn4xx(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 409, 422} {
		f := newFake(t)
		h, calls := failing(100, status, "1", nil)
		f.handle("GET /api/v1/nodes/{id}", false, h)
		ft := newFakeTime()
		if _, err := f.client(WithSleep(ft.Sleep)).Node(context.Background(), 1); err == nil {
			t.Fatalf("%d: no error", status)
		}
		if calls.Load() != 1 || len(ft.Sleeps()) != 0 {
			t.Errorf("%d: %d attempts, sleeps %v", status, calls.Load(), ft.Sleeps())
		}
	}
}

func TestRetryAfter(t *testing.T) {
	ft := newFakeTime()
	for _, tc := range []struct {
		name, header string
		status       int
		want         time.Duration
	}{
		{"seconds", "3", http.StatusTooManyRequests, 3 * time.Second},
		{"zero", "0", http.StatusTooManyRequests, 0},
		{"date", ft.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat), http.StatusServiceUnavailable, 5 * time.Second},
		{"past date", ft.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), http.StatusServiceUnavailable, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			h, calls := failing(1, tc.status, tc.header, func(w http.ResponseWriter, r *http.Request, s seen) {
				reply(w, http.StatusOK, api.Farm{FarmID: 1})
			})
			f.handle("GET /api/v1/farms/{id}", false, h)
			ft := &fakeTime{now: ft.Now()}
			// The jitter would give a different wait: Retry-After wins.
			c := f.client(WithSleep(ft.Sleep), WithClock(ft.Now), WithJitter(func(time.Duration) time.Duration { return 42 * time.Millisecond }))
			if _, err := c.Farm(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			if calls.Load() != 2 || !equalDurations(ft.Sleeps(), []time.Duration{tc.want}) {
				t.Errorf("%d attempts, sleeps %v, want [%v]", calls.Load(), ft.Sleeps(), tc.want)
			}
		})
	}
}

func TestRetryAfterTooLong(t *testing.T) {
	f := newFake(t)
	h, calls := failing(100, http.StatusTooManyRequests, "3600", nil)
	f.handle("GET /api/v1/farms", false, h)
	ft := newFakeTime()
	_, err := f.client(WithSleep(ft.Sleep)).ListFarms(context.Background(), FarmFilter{}, Page{})
	var ae *APIError
	if !errors.Is(err, ErrRateLimited) || !errors.As(err, &ae) || ae.RetryAfter != time.Hour {
		t.Fatalf("err = %v (%#v)", err, ae)
	}
	if calls.Load() != 1 || len(ft.Sleeps()) != 0 {
		t.Errorf("%d attempts, sleeps %v", calls.Load(), ft.Sleeps())
	}
}

// countingTransport counts round trips.
type countingTransport struct {
	n  atomic.Int32
	rt http.RoundTripper
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func TestRetryNetworkError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	ct := &countingTransport{rt: http.DefaultTransport}
	ft := newFakeTime()
	c, err := New("http://"+addr, WithTransport(ct), WithSleep(ft.Sleep))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Farm(context.Background(), 1)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "connection refused") || !strings.Contains(err.Error(), "http://"+addr) {
		t.Errorf("message %q", err)
	}
	if ct.n.Load() != DefaultMaxAttempts || len(ft.Sleeps()) != DefaultMaxAttempts-1 {
		t.Errorf("%d attempts, sleeps %v", ct.n.Load(), ft.Sleeps())
	}
	for i, d := range ft.Sleeps() {
		if limit := (RetryPolicy{}).withDefaults().backoffCap(i + 1); d < 0 || d >= limit {
			t.Errorf("sleep %d = %v, want in [0, %v)", i, d, limit)
		}
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	f := newFake(t)
	h, calls := failing(100, http.StatusServiceUnavailable, "60", nil)
	f.handle("GET /api/v1/farms/{id}", false, h)
	c, err := New(f.srv.URL) // the real, timer-based sleep
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Farm(ctx, 1)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "try later") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
	if calls.Load() != 1 {
		t.Errorf("%d attempts", calls.Load())
	}
}

func TestLegacyRetryWaitsForANewSecond(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(2, kp)
	h, calls := failing(1, http.StatusBadGateway, "", func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusOK, api.Message{Message: "ok"})
	})
	f.handle("PATCH /api/v1/farms/{id}", true, h)
	ft := newFakeTime()
	c := f.client(WithIdentity(kp, 2), WithAuthScheme(AuthLegacy), WithSleep(ft.Sleep), WithClock(ft.Now),
		WithJitter(func(time.Duration) time.Duration { return 0 }))
	name := "n"
	// The fake registrar's replay guard would refuse a second identical
	// X-Auth: the retry must be signed in a later second.
	if err := c.UpdateFarm(context.Background(), 1, api.UpdateFarmRequest{FarmName: &name}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 || !equalDurations(ft.Sleeps(), []time.Duration{time.Second}) {
		t.Errorf("%d attempts, sleeps %v", calls.Load(), ft.Sleeps())
	}
}

func TestTimestampedBodiesRebuiltPerAttempt(t *testing.T) {
	f := newFake(t)
	kp := mustKey(t, keys.Ed25519)
	f.addTwin(3, kp)
	var upBodies []api.UptimeReport
	var accTS []int64
	acc, _ := failing(1, http.StatusServiceUnavailable, "", func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusCreated, api.Account{TwinID: 3})
	})
	f.handle("POST /api/v1/accounts", false, func(w http.ResponseWriter, r *http.Request, s seen) {
		var req api.CreateAccountRequest
		decode(t, s.Body, &req)
		accTS = append(accTS, req.Timestamp)
		acc(w, r, s)
	})
	up, _ := failing(1, http.StatusServiceUnavailable, "", func(w http.ResponseWriter, r *http.Request, s seen) {
		reply(w, http.StatusCreated, api.UptimeReply{Message: "ok"})
	})
	f.handle("POST /api/v1/nodes/{id}/uptime", true, func(w http.ResponseWriter, r *http.Request, s seen) {
		var rep api.UptimeReport
		decode(t, s.Body, &rep)
		upBodies = append(upBodies, rep)
		up(w, r, s)
	})
	ft := newFakeTime()
	c := f.client(WithIdentity(kp, 0), WithSleep(ft.Sleep), WithClock(ft.Now), WithJitter(func(time.Duration) time.Duration { return 2 * time.Second }),
		WithRetry(RetryPolicy{BaseDelay: 2 * time.Second}))
	if _, err := c.CreateAccount(context.Background(), AccountOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(accTS) != 2 || accTS[1] != accTS[0]+2 {
		t.Errorf("account timestamps %v", accTS)
	}
	if _, err := c.ReportUptime(context.Background(), 1, time.Hour); err != nil {
		t.Fatal(err)
	}
	if len(upBodies) != 2 || upBodies[1].Timestamp != upBodies[0].Timestamp+2 || upBodies[1].Uptime != 3600 {
		t.Errorf("uptime bodies %v", upBodies)
	}
}

func TestBackoffCap(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := p.backoffCap(i + 1); got != w {
			t.Errorf("backoffCap(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := p.backoffCap(1000); got != p.MaxDelay {
		t.Errorf("backoffCap(1000) = %v", got)
	}
	for range 1000 {
		if d := fullJitter(time.Second); d < 0 || d >= time.Second {
			t.Fatalf("fullJitter = %v", d)
		}
	}
	if fullJitter(0) != 0 {
		t.Error("fullJitter(0) != 0")
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"soon", 0, false},
		{"-1", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999999999", time.Duration(1<<63-1) / time.Second * time.Second, true},
		{"Sat, 01 Mar 2025 10:00:30 GMT", 30 * time.Second, true},
		{"Sat, 01 Mar 2025 09:00:00 GMT", 0, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
