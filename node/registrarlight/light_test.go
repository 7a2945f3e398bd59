package registrarlight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/hostinfo"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/location"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/storaged/storagetest"
	"github.com/grid4/grid4/registrar/api"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// call is one call the fake registrar received, at fake time At.
type call struct {
	Method string
	At     time.Duration // since t0
	Req    api.RegisterNodeRequest
}

// fakeRegistrar is an in-memory registrar with programmable failures.
type fakeRegistrar struct {
	clock *clock.Fake

	mu       sync.Mutex
	calls    []call
	twin     uint64 // 0: no account yet
	nextTwin uint64
	node     *api.Node
	nextNode uint64
	// fail makes the named method fail while it returns an error.
	fail map[string]func() error
	// nextReportIn is the uptime reply's next_report_in.
	nextReportIn int64
	// statuses are the status reports received.
	statuses []api.NodeStatusReport
}

func newFakeRegistrar(c *clock.Fake) *fakeRegistrar {
	return &fakeRegistrar{clock: c, nextTwin: 7, nextNode: 3, fail: map[string]func() error{}}
}

func (r *fakeRegistrar) record(method string, req api.RegisterNodeRequest) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{Method: method, At: r.clock.Now().Sub(t0), Req: req})
	if f := r.fail[method]; f != nil {
		return f()
	}
	return nil
}

func (r *fakeRegistrar) setFail(method string, f func() error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[method] = f
}

func (r *fakeRegistrar) EnsureAccount(context.Context) (api.Account, error) {
	if err := r.record("EnsureAccount", api.RegisterNodeRequest{}); err != nil {
		return api.Account{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.twin == 0 {
		r.twin = r.nextTwin
		r.nextTwin++
	}
	return api.Account{TwinID: r.twin}, nil
}

func (r *fakeRegistrar) NodeByTwin(_ context.Context, twin uint64) (api.Node, error) {
	if err := r.record("NodeByTwin", api.RegisterNodeRequest{}); err != nil {
		return api.Node{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.node == nil || r.node.TwinID != twin {
		return api.Node{}, bus.Errorf(ErrNotFound, "node of twin %d: not found", twin)
	}
	return *r.node, nil
}

func (r *fakeRegistrar) RegisterNode(_ context.Context, req api.RegisterNodeRequest) (uint64, error) {
	if err := r.record("RegisterNode", req); err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.node != nil && r.node.TwinID == r.twin {
		return 0, bus.Errorf(ErrConflict, "twin has a node")
	}
	r.node = &api.Node{NodeID: r.nextNode, TwinID: r.twin, FarmID: req.FarmID, Interfaces: req.Interfaces}
	r.nextNode++
	return r.node.NodeID, nil
}

func (r *fakeRegistrar) UpdateNode(_ context.Context, id uint64, req api.RegisterNodeRequest) error {
	if err := r.record("UpdateNode", req); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.node == nil || r.node.NodeID != id {
		return bus.Errorf(ErrNotFound, "node %d", id)
	}
	r.node.FarmID, r.node.Interfaces = req.FarmID, req.Interfaces
	return nil
}

func (r *fakeRegistrar) ReportUptime(context.Context, uint64, time.Duration) (api.UptimeReply, error) {
	if err := r.record("ReportUptime", api.RegisterNodeRequest{}); err != nil {
		return api.UptimeReply{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return api.UptimeReply{NextReportIn: r.nextReportIn}, nil
}

func (r *fakeRegistrar) ReportStatus(_ context.Context, _ uint64, rep api.NodeStatusReport) error {
	if err := r.record("ReportStatus", api.RegisterNodeRequest{}); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, rep)
	return nil
}

// lastStatus returns the last status report received.
func (r *fakeRegistrar) lastStatus() api.NodeStatusReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.statuses) == 0 {
		return api.NodeStatusReport{}
	}
	return r.statuses[len(r.statuses)-1]
}

// forget makes the registrar lose the node (a restored old backup).
func (r *fakeRegistrar) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.node = nil
}

// times returns when method was called, as offsets from t0.
func (r *fakeRegistrar) times(method string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, c := range r.calls {
		if c.Method == method {
			out = append(out, c.At)
		}
	}
	return out
}

func (r *fakeRegistrar) lastReq(method string) api.RegisterNodeRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.calls) - 1; i >= 0; i-- {
		if r.calls[i].Method == method {
			return r.calls[i].Req
		}
	}
	return api.RegisterNodeRequest{}
}

// fakeNode provides facts, location, farm and power.
type fakeNode struct {
	mu      sync.Mutex
	ips     []string
	healthy bool
	reason  string
}

func (n *fakeNode) setIPs(ips ...string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ips = ips
}

func (n *fakeNode) setHealth(ok bool, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.healthy, n.reason = ok, reason
}

func (n *fakeNode) Facts(context.Context) (hostinfo.Facts, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var f hostinfo.Facts
	f.CPUs = hostinfo.Fact[uint64]{Value: 4, Known: true}
	f.Memory = hostinfo.Fact[uint64]{Value: 8 << 30, Known: true}
	f.Serial = hostinfo.Fact[string]{Reason: "no DMI"}
	f.Interface = hostinfo.Fact[api.Interface]{Known: true, Value: api.Interface{Name: "eth0", Mac: "02:00:00:00:00:01", IPs: slices.Clone(n.ips)}}
	return f, nil
}

func (n *fakeNode) Location(context.Context) (location.Result, error) {
	return location.Result{Location: api.Location{Country: "Belgium", City: "Ghent", Latitude: "51.05", Longitude: "3.72"}, Source: "geoip"}, nil
}

func (n *fakeNode) FarmID(context.Context) (uint64, error) { return 12, nil }

func (n *fakeNode) Uptime(context.Context) (time.Duration, error) { return time.Hour, nil }

func (n *fakeNode) Health(context.Context) (powerd.Health, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	h := powerd.Health{Healthy: n.healthy}
	if !n.healthy {
		h.Checks = []powerd.CheckResult{{Name: "maintenance", Reason: n.reason}}
	}
	return h, nil
}

// harness runs a Light on a fake clock.
type harness struct {
	t     *testing.T
	clock *clock.Fake
	reg   *fakeRegistrar
	node  *fakeNode
	light *Light
	addrs chan struct{}
	ctx   context.Context
}

// newHarness starts a Light; setup runs before it starts.
func newHarness(t *testing.T, cfg Config, setup ...func(h *harness)) *harness {
	t.Helper()
	return newHarnessWith(t, cfg, nil, setup...)
}

// newHarnessWith is newHarness with deps changing the dependencies.
func newHarnessWith(t *testing.T, cfg Config, deps func(*Deps), setup ...func(h *harness)) *harness {
	t.Helper()
	c := clock.NewFake(t0)
	h := &harness{
		t:     t,
		clock: c,
		reg:   newFakeRegistrar(c),
		node:  &fakeNode{ips: []string{"10.0.0.5"}, healthy: true},
		addrs: make(chan struct{}, 1),
	}
	d := Deps{
		Registrar: h.reg, Facts: h.node, Location: h.node, Farm: h.node, Power: h.node,
		Addresses: h.addrs,
		Clock:     c,
		Jitter:    func(d time.Duration) time.Duration { return d }, // deterministic
	}
	if deps != nil {
		deps(&d)
	}
	l, err := NewLight(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	h.light = l
	for _, f := range setup {
		f(h)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// settle waits until n timers are armed: the loop is idle again.
func (h *harness) settle(n int) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	if err := h.clock.WaitTimers(ctx, n); err != nil {
		h.t.Fatalf("waiting for %d timers (have %d): %v", n, h.clock.Pending(), err)
	}
}

// step fires the next timer(s) and waits for the loop to re-arm n timers.
func (h *harness) step(n int) time.Duration {
	h.t.Helper()
	now, ok := h.clock.AdvanceToNext()
	if !ok {
		h.t.Fatal("no timer pending")
	}
	h.settle(n)
	return now.Sub(t0)
}

// runUntil steps until the fake time reaches end.
func (h *harness) runUntil(end time.Duration, n int) {
	h.t.Helper()
	for {
		next, ok := h.clock.NextDeadline()
		if !ok || next.Sub(t0) > end {
			return
		}
		h.step(n)
	}
}

func (h *harness) state() State {
	s, _ := h.light.State(context.Background())
	return s
}

// eventually polls cond (for work that arms no timer, such as a
// re-registration after an address change).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func multiples(every, until time.Duration, from time.Duration) []time.Duration {
	var out []time.Duration
	for d := from; d <= until; d += every {
		out = append(out, d)
	}
	return out
}

// TestScheduleDefaults: with the seed's intervals, over two days, every
// job fires exactly on its schedule; in particular the 24-hour update
// fires although the 30-minute check fired 47 times before it.
func TestScheduleDefaults(t *testing.T) {
	h := newHarness(t, Config{})
	h.settle(3) // registered; account check, update and uptime armed
	if s := h.state(); s.Phase != Done || s.NodeID != 3 || s.TwinID != 7 || s.FarmID != 12 {
		t.Fatalf("after start: %+v", s)
	}
	h.runUntil(48*time.Hour, 3)

	if got, want := h.reg.times("RegisterNode"), []time.Duration{0}; !slices.Equal(got, want) {
		t.Errorf("RegisterNode at %v, want %v", got, want)
	}
	// EnsureAccount: at registration, at each account check (every 30
	// min) and at each update (every 24 h, after the check due then).
	want := append([]time.Duration{0, 24 * time.Hour, 48 * time.Hour}, multiples(30*time.Minute, 48*time.Hour, 30*time.Minute)...)
	slices.Sort(want)
	if got := h.reg.times("EnsureAccount"); !slices.Equal(got, want) {
		t.Errorf("EnsureAccount at %v,\nwant %v", got, want)
	}
	// The information update: exactly every 24 h.
	if got, want := h.reg.times("UpdateNode"), []time.Duration{24 * time.Hour, 48 * time.Hour}; !slices.Equal(got, want) {
		t.Errorf("UpdateNode at %v, want %v", got, want)
	}
	// Uptime: at once, then every 40 min (no next_report_in).
	if got, want := h.reg.times("ReportUptime"), multiples(40*time.Minute, 48*time.Hour, 0); !slices.Equal(got, want) {
		t.Errorf("ReportUptime at %v,\nwant %v", got, want)
	}
	s := h.state()
	if s.AccountCheck.Runs != 96 || s.Update.Runs != 2 || s.Uptime.Runs != 73 {
		t.Errorf("runs: account %d update %d uptime %d", s.AccountCheck.Runs, s.Update.Runs, s.Uptime.Runs)
	}
	if !s.Update.Next.Equal(t0.Add(72*time.Hour)) || !s.AccountCheck.Next.Equal(t0.Add(48*time.Hour+30*time.Minute)) {
		t.Errorf("next: update %v account %v", s.Update.Next, s.AccountCheck.Next)
	}
	if s.Interface == nil || !slices.Equal([]string(s.Interface.IPs), []string{"10.0.0.5"}) || s.Location == nil || s.Location.City != "Ghent" {
		t.Errorf("registered interface/location: %+v %+v", s.Interface, s.Location)
	}
	if req := h.reg.lastReq("UpdateNode"); req.SerialNumber != "" || req.FarmID != 12 || req.Resources.CRU != 4 {
		t.Errorf("update request: %+v", req)
	}
}

// TestCapacityOverride: the farmer's figures replace the measured ones
// field by field, in what is registered and in the state provisiond
// reads its capacity from.
func TestCapacityOverride(t *testing.T) {
	h := newHarness(t, Config{Capacity: api.Resources{MRU: 3 << 30, SRU: 100 << 30}})
	h.settle(3)
	got := h.reg.lastReq("RegisterNode").Resources
	f, _ := h.node.Facts(context.Background())
	measured := f.Resources()
	want := api.Resources{CRU: measured.CRU, MRU: 3 << 30, SRU: 100 << 30, HRU: measured.HRU}
	if got != want {
		t.Fatalf("registered %+v, want %+v (measured %+v)", got, want, measured)
	}
	if s := h.state(); s.Resources == nil || *s.Resources != want {
		t.Fatalf("state resources %+v, want %+v", s.Resources, want)
	}
}

// TestStorageCapacity: SRU and HRU come from storaged's pools (a real
// storaged over a directory), not from the disks noded measured, and the
// farmer's override still wins field by field.
func TestStorageCapacity(t *testing.T) {
	st, err := storaged.New(storaged.Config{Dir: t.TempDir(), Seeker: storagetest.FastDisk})
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := st.Capacity(context.Background())
	if pc.SRU+pc.HRU == 0 {
		t.Fatalf("storaged offers nothing: %+v", pc)
	}
	h := newHarnessWith(t, Config{Capacity: api.Resources{HRU: 7 << 30}}, func(d *Deps) { d.Storage = st })
	h.settle(3)
	got := h.reg.lastReq("RegisterNode").Resources
	f, _ := h.node.Facts(context.Background())
	want := api.Resources{CRU: f.Resources().CRU, MRU: f.Resources().MRU, SRU: pc.SRU, HRU: 7 << 30}
	if got != want {
		t.Fatalf("registered %+v, want %+v", got, want)
	}
}

// TestScheduleCustom: the intervals are configurable.
func TestScheduleCustom(t *testing.T) {
	h := newHarness(t, Config{AccountCheck: 7 * time.Second, Update: 60 * time.Second, Uptime: 11 * time.Second})
	h.settle(3)
	h.runUntil(2*time.Minute, 3)
	if got, want := h.reg.times("UpdateNode"), []time.Duration{time.Minute, 2 * time.Minute}; !slices.Equal(got, want) {
		t.Errorf("UpdateNode at %v, want %v", got, want)
	}
	if got, want := h.reg.times("ReportUptime"), multiples(11*time.Second, 2*time.Minute, 0); !slices.Equal(got, want) {
		t.Errorf("ReportUptime at %v, want %v", got, want)
	}
	if s := h.state(); s.AccountCheck.Runs != 17 || s.Update.Runs != 2 {
		t.Errorf("account checks %d, updates %d; want 17 and 2", s.AccountCheck.Runs, s.Update.Runs)
	}
}

// TestUptimeFollowsNextReportIn: the registrar's next_report_in sets the
// next report, within [UptimeMin, UptimeMax].
func TestUptimeFollowsNextReportIn(t *testing.T) {
	for _, tc := range []struct {
		name string
		next int64
		want time.Duration
	}{
		{"hint", 600, 10 * time.Minute},
		{"none", 0, 40 * time.Minute},
		{"too soon", 5, time.Minute},
		{"too late", 24 * 3600, 160 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{AccountCheck: 1000 * time.Hour, Update: 1000 * time.Hour}, func(h *harness) {
				h.reg.nextReportIn = tc.next
			})
			h.settle(3)
			h.runUntil(3*tc.want, 3)
			if got, want := h.reg.times("ReportUptime"), multiples(tc.want, 3*tc.want, 0); !slices.Equal(got, want) {
				t.Errorf("ReportUptime at %v, want %v", got, want)
			}
			if s := h.state(); s.NextReportIn != tc.next {
				t.Errorf("state next_report_in %d", s.NextReportIn)
			}
		})
	}
}

// TestRegistrationRetriesForever: while the registrar is unreachable the
// node retries with exponential backoff capped at RetryMax, says why in
// its state, and registers once the registrar is back.
func TestRegistrationRetriesForever(t *testing.T) {
	var down = true
	var mu sync.Mutex
	h := newHarness(t, Config{RetryMin: time.Second, RetryMax: 30 * time.Second}, func(h *harness) {
		h.reg.setFail("EnsureAccount", func() error {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return &bus.Error{Code: ErrUnreachable, Message: "cannot reach registrar at http://r: connection refused"}
			}
			return nil
		})
	})
	h.settle(1) // the retry timer
	for range 9 {
		h.step(1)
	}
	want := []time.Duration{0, 1, 3, 7, 15, 31, 61, 91, 121, 151}
	for i := range want {
		want[i] *= time.Second
	}
	if got := h.reg.times("EnsureAccount"); !slices.Equal(got, want) {
		t.Errorf("attempts at %v, want %v", got, want)
	}
	s := h.state()
	if s.Phase != Failed || !strings.Contains(s.Reason, "connection refused") || s.Attempts != 10 || !s.Register.Next.Equal(t0.Add(181*time.Second)) {
		t.Errorf("state while failing: %+v", s)
	}
	if _, err := h.light.NodeID(context.Background()); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("NodeID before registration: %v", err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	h.step(3)
	s = h.state()
	if s.Phase != Done || s.NodeID != 3 || s.Reason != "" || s.Attempts != 0 || !s.Register.Next.IsZero() {
		t.Errorf("state after recovery: %+v", s)
	}
	if id, err := h.light.NodeID(context.Background()); id != 3 || err != nil {
		t.Errorf("NodeID: %d, %v", id, err)
	}
}

// TestAddressChangeReregisters: a changed management address re-registers
// the node at once, without waiting for any timer; an event that changes
// nothing does not.
func TestAddressChangeReregisters(t *testing.T) {
	h := newHarness(t, Config{})
	h.settle(3)
	h.addrs <- struct{}{} // same addresses: nothing to do
	h.node.setIPs("10.0.0.5", "198.18.0.9")
	h.addrs <- struct{}{}
	eventually(t, "re-registration", func() bool { return len(h.reg.times("UpdateNode")) == 1 })
	if got := h.reg.lastReq("UpdateNode").Interfaces[0].IPs; !slices.Equal([]string(got), []string{"10.0.0.5", "198.18.0.9"}) {
		t.Errorf("re-registered with %v", got)
	}
	if at := h.reg.times("UpdateNode")[0]; at != 0 {
		t.Errorf("re-registered at %v, want at once", at)
	}
	eventually(t, "state", func() bool { s := h.state(); return s.Interface != nil && len(s.Interface.IPs) == 2 })
	if h.clock.Pending() != 3 {
		t.Errorf("%d timers pending", h.clock.Pending())
	}
}

// TestAddressChangeRetried: a re-registration that fails is retried with
// backoff.
func TestAddressChangeRetried(t *testing.T) {
	h := newHarness(t, Config{RetryMin: 2 * time.Second})
	h.settle(3)
	h.reg.setFail("UpdateNode", func() error { return &bus.Error{Code: ErrUnreachable, Message: "down"} })
	h.node.setIPs("10.0.0.6")
	h.addrs <- struct{}{}
	h.settle(4) // the retry timer joins the three jobs
	h.reg.setFail("UpdateNode", nil)
	// The retry timer is not re-armed on success, so the loop being idle
	// again cannot be seen from the timers: wait for the call.
	h.clock.AdvanceToNext()
	eventually(t, "retry", func() bool { return h.state().Register.OK })
	if got := h.reg.times("UpdateNode"); !slices.Equal(got, []time.Duration{0, 2 * time.Second}) {
		t.Errorf("UpdateNode at %v", got)
	}
	if s := h.state(); s.Phase != Done || !s.Register.OK || s.Interface.IPs[0] != "10.0.0.6" {
		t.Errorf("state: %+v", s)
	}
}

// TestUnhealthySkipsUptime: an unhealthy node does not report uptime and
// says why; it reports again once healthy.
func TestUnhealthySkipsUptime(t *testing.T) {
	h := newHarness(t, Config{AccountCheck: 1000 * time.Hour, Update: 1000 * time.Hour}, func(h *harness) {
		h.node.setHealth(false, "disk full")
	})
	h.settle(3)
	if n := len(h.reg.times("ReportUptime")); n != 0 {
		t.Fatalf("%d reports while unhealthy", n)
	}
	s := h.state()
	if s.Uptime.OK || !strings.Contains(s.Uptime.Error, "skipped: node unhealthy: maintenance: disk full") || s.Uptime.Runs != 1 {
		t.Errorf("uptime task: %+v", s.Uptime)
	}
	h.node.setHealth(true, "")
	if at := h.step(3); at != 40*time.Minute {
		t.Errorf("next attempt at %v", at)
	}
	if got := h.reg.times("ReportUptime"); !slices.Equal(got, []time.Duration{40 * time.Minute}) {
		t.Errorf("reports at %v", got)
	}
	if s := h.state(); !s.Uptime.OK || s.Uptime.Error != "" {
		t.Errorf("uptime task: %+v", s.Uptime)
	}
}

// TestUptimeFailureBackoff: a failed report is retried with backoff, not
// after a whole interval.
func TestUptimeFailureBackoff(t *testing.T) {
	h := newHarness(t, Config{AccountCheck: 1000 * time.Hour, Update: 1000 * time.Hour, RetryMin: time.Second}, func(h *harness) {
		h.reg.setFail("ReportUptime", func() error { return &bus.Error{Code: ErrUnreachable, Message: "down"} })
	})
	h.settle(3)
	h.step(3)
	h.step(3)
	h.reg.setFail("ReportUptime", nil)
	h.step(3)
	h.step(3)
	want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 7*time.Second + 40*time.Minute}
	if got := h.reg.times("ReportUptime"); !slices.Equal(got, want) {
		t.Errorf("reports at %v, want %v", got, want)
	}
}

// TestAccountCheckReregisters: when the registrar has lost the node, the
// account check registers it again.
func TestAccountCheckReregisters(t *testing.T) {
	h := newHarness(t, Config{Update: 1000 * time.Hour, Uptime: 1000 * time.Hour})
	h.settle(3)
	h.reg.forget()
	if at := h.step(3); at != 30*time.Minute {
		t.Fatalf("check at %v", at)
	}
	if got := h.reg.times("RegisterNode"); !slices.Equal(got, []time.Duration{0, 30 * time.Minute}) {
		t.Errorf("RegisterNode at %v", got)
	}
	if s := h.state(); s.Phase != Done || s.NodeID != 4 {
		t.Errorf("state: %+v", s)
	}
}

// TestAccountCheckFailureBackoff: a failed check is retried with backoff
// (capped by the interval) and does not touch the registration.
func TestAccountCheckFailureBackoff(t *testing.T) {
	h := newHarness(t, Config{Update: 1000 * time.Hour, Uptime: 1000 * time.Hour, RetryMin: time.Minute})
	h.settle(3)
	h.reg.setFail("EnsureAccount", func() error { return fmt.Errorf("boom: %w", bus.Code("unreachable")) })
	h.step(3)
	h.step(3)
	if got, want := h.reg.times("EnsureAccount"), []time.Duration{0, 30 * time.Minute, 31 * time.Minute}; !slices.Equal(got, want) {
		t.Errorf("EnsureAccount at %v, want %v", got, want)
	}
	if s := h.state(); s.Phase != Done || s.AccountCheck.OK || !strings.Contains(s.AccountCheck.Error, "boom") {
		t.Errorf("state: %+v", s)
	}
}

// TestBuildRequest: unknown facts are sent as zero values; an unknown
// interface is an error.
func TestBuildRequest(t *testing.T) {
	var f hostinfo.Facts
	if _, err := BuildRequest(f, api.Location{}, 1, ""); err == nil || !strings.Contains(err.Error(), "management interface is unknown") {
		t.Errorf("no interface: %v", err)
	}
	f.Interface = hostinfo.Fact[api.Interface]{Known: true, Value: api.Interface{Name: "eth0", Mac: "02:00:00:00:00:01"}}
	f.Serial = hostinfo.Fact[string]{Known: true, Value: "ABC123"}
	f.SecureBoot = hostinfo.Fact[bool]{Known: true, Value: true}
	f.Virtualization = hostinfo.Fact[hostinfo.Virtualization]{Known: true, Value: hostinfo.Virtualization{Virtualized: true}}
	req, err := BuildRequest(f, api.Location{City: "Ghent"}, 9, "v4.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if req.SerialNumber != "ABC123" || !req.SecureBoot || !req.Virtualized || req.FarmID != 9 || req.ZosVersion != "v4.1.0" ||
		req.Interfaces[0].IPs == nil || req.Location.City != "Ghent" {
		t.Errorf("request: %+v", req)
	}
}

// versionSource is what the upgrader says the node runs.
type versionSource struct {
	mu  sync.Mutex
	v   string
	err error
}

func (s *versionSource) set(v string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.v, s.err = v, err
}

func (s *versionSource) RunningVersion(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v, s.err
}

// TestReportedVersion: the version sent is the running one, read at each
// registration and update; the configured one when it cannot be read.
func TestReportedVersion(t *testing.T) {
	src := &versionSource{v: "v4.1.1"}
	h := newHarness(t, Config{ZosVersion: "v4.1.0", AccountCheck: 1000 * time.Hour, Uptime: 1000 * time.Hour}, func(h *harness) {
		h.light.d.Version = src
	})
	h.settle(3)
	if got := h.reg.lastReq("RegisterNode").ZosVersion; got != "v4.1.1" {
		t.Errorf("registered with version %q", got)
	}
	src.set("v4.1.2", nil)
	h.runUntil(24*time.Hour, 3)
	if got := h.reg.lastReq("UpdateNode").ZosVersion; got != "v4.1.2" {
		t.Errorf("updated with version %q", got)
	}
	src.set("", errors.New("upgrade directory damaged"))
	h.runUntil(48*time.Hour, 3)
	if got := h.reg.lastReq("UpdateNode").ZosVersion; got != "v4.1.0" {
		t.Errorf("updated with version %q, want the configured one", got)
	}
}

// TestEndpointsPublished: the node sends its zos-api-light endpoints with
// its registration and its daily update, and at once, newly derived, when
// its address changes.
func TestEndpointsPublished(t *testing.T) {
	h := newHarness(t, Config{APIListen: ":2021"})
	h.settle(3)
	want := []string{"http://10.0.0.5:2021/api/v1/rpc"}
	if got := h.reg.lastReq("RegisterNode").APIEndpoints; !slices.Equal(got, want) {
		t.Fatalf("registered endpoints %q, want %q", got, want)
	}
	if s := h.state(); !slices.Equal(s.APIEndpoints, want) {
		t.Errorf("state endpoints %q", s.APIEndpoints)
	}
	h.node.setIPs("10.0.0.6/24", "fe80::6/64")
	h.addrs <- struct{}{}
	eventually(t, "re-registration", func() bool { return len(h.reg.times("UpdateNode")) == 1 })
	want = []string{"http://10.0.0.6:2021/api/v1/rpc"}
	if got := h.reg.lastReq("UpdateNode").APIEndpoints; !slices.Equal(got, want) {
		t.Fatalf("after the address change %q, want %q", got, want)
	}
	h.runUntil(DefaultUpdate, 3)
	if n := len(h.reg.times("UpdateNode")); n != 2 {
		t.Fatalf("%d updates by the daily one", n)
	}
	if got := h.reg.lastReq("UpdateNode").APIEndpoints; !slices.Equal(got, want) {
		t.Fatalf("daily update sent %q, want %q", got, want)
	}
}

// TestEndpointOverride: the farmer's public URL is published as is,
// whatever the addresses.
func TestEndpointOverride(t *testing.T) {
	h := newHarness(t, Config{APIListen: ":2021", APIURL: "https://node.example.org/api/v1/rpc"})
	h.settle(3)
	if got := h.reg.lastReq("RegisterNode").APIEndpoints; !slices.Equal(got, []string{"https://node.example.org/api/v1/rpc"}) {
		t.Fatalf("registered endpoints %q", got)
	}
}
