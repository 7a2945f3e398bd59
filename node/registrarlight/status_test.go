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
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/registrar/api"
)

// hosted is what the status report reads of provisiond and the
// supervisor, set by each test.
type hosted struct {
	mu      sync.Mutex
	cap     gridtypes.CapacityReport
	stats   gridtypes.Statistics
	modules []supervisor.Status
	// capErr and modErr make Capacity and Modules fail.
	capErr, modErr error
}

func (p *hosted) Capacity(context.Context) (gridtypes.CapacityReport, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cap, p.capErr
}

func (p *hosted) Statistics(context.Context) (gridtypes.Statistics, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats, p.capErr
}

func (p *hosted) Modules(context.Context) ([]supervisor.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.modules), p.modErr
}

func (p *hosted) set(f func(p *hosted)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

// newHosted is a node with one deployment of two workloads, 2 CPUs and
// 4 GiB in use, and every module running.
func newHosted() *hosted {
	total := gridtypes.Resources{CRU: 8, MRU: 16 << 30, SRU: 100 << 30, IPv4: 2}
	used := gridtypes.Resources{CRU: 2, MRU: 4 << 30, SRU: 10 << 30, IPv4: 1}
	return &hosted{
		cap: gridtypes.CapacityReport{Total: total, Used: used, Free: total.Sub(used)},
		stats: gridtypes.Statistics{Deployments: 1, Workloads: map[gridtypes.WorkloadType]map[gridtypes.State]int{
			"zmount": {"ok": 1}, "zmachine": {"ok": 1, "error": 1},
		}},
		modules: []supervisor.Status{{Name: "provisiond", State: supervisor.Running}, {Name: "powerd", State: supervisor.Running}},
	}
}

func statusHarness(t *testing.T, p *hosted, setup ...func(h *harness)) *harness {
	return newHarnessWith(t, Config{AccountCheck: 1000 * time.Hour, Update: 1000 * time.Hour, ZosVersion: "v4.2.0"},
		func(d *Deps) { d.Provision, d.Modules = p, p }, setup...)
}

// TestStatusReportedWithUptime: the status goes with every uptime report,
// on the same schedule, with the engine's figures, the modules and the
// version.
func TestStatusReportedWithUptime(t *testing.T) {
	p := newHosted()
	h := statusHarness(t, p)
	h.settle(3)
	h.step(3)
	if got, want := h.reg.times("ReportStatus"), h.reg.times("ReportUptime"); !slices.Equal(got, want) || !slices.Equal(got, []time.Duration{0, 40 * time.Minute}) {
		t.Fatalf("status at %v, uptime at %v", got, want)
	}
	rep := h.reg.lastStatus()
	if !rep.Healthy || rep.Version != "v4.2.0" || rep.Deployments != 1 ||
		rep.Total != (api.Capacity{CRU: 8, MRU: 16 << 30, SRU: 100 << 30, IPv4: 2}) ||
		rep.Used != (api.Capacity{CRU: 2, MRU: 4 << 30, SRU: 10 << 30, IPv4: 1}) ||
		rep.Workloads["ok"] != 2 || rep.Workloads["error"] != 1 || len(rep.Modules) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if s := h.state(); !s.Status.OK || s.Status.Runs != 2 || !s.Healthy || s.Reasons != nil {
		t.Errorf("status task %+v healthy %v reasons %v", s.Status, s.Healthy, s.Reasons)
	}
}

// TestStatusNamesFailingModule: a module that keeps failing makes the
// next report unhealthy, naming it; the uptime report still goes.
func TestStatusNamesFailingModule(t *testing.T) {
	p := newHosted()
	h := statusHarness(t, p)
	h.settle(3)
	p.set(func(p *hosted) {
		p.modules[0] = supervisor.Status{Name: "provisiond", State: supervisor.Restarting, Restarts: 9, LastExit: "exit status 1"}
	})
	h.step(3)
	rep := h.reg.lastStatus()
	if rep.Healthy || rep.Modules[0].Name != "provisiond" || rep.Modules[0].State != "restarting" || rep.Modules[0].Restarts != 9 {
		t.Fatalf("report %+v", rep)
	}
	if s := h.state(); s.Healthy || !slices.Equal(s.Reasons, []string{"module provisiond: restarting"}) {
		t.Errorf("state healthy %v reasons %q", s.Healthy, s.Reasons)
	}
	if n := len(h.reg.times("ReportUptime")); n != 2 {
		t.Errorf("%d uptime reports", n)
	}
}

// TestStatusWhileUnhealthy: powerd's failing check skips the uptime
// report, as before, but the status report goes, with the check named.
func TestStatusWhileUnhealthy(t *testing.T) {
	h := statusHarness(t, newHosted(), func(h *harness) { h.node.setHealth(false, "disk full") })
	h.settle(3)
	if n := len(h.reg.times("ReportUptime")); n != 0 {
		t.Fatalf("%d uptime reports while unhealthy", n)
	}
	rep := h.reg.lastStatus()
	if rep.Healthy || len(rep.Checks) != 1 || rep.Checks[0] != (api.HealthCheck{Name: "maintenance", Reason: "disk full"}) {
		t.Fatalf("report %+v", rep)
	}
}

// TestStatusCollectFailures: parts that do not answer are failing checks
// of a report sent all the same; a refused report is recorded without
// holding up the uptime report.
func TestStatusCollectFailures(t *testing.T) {
	p := newHosted()
	p.capErr = errors.New("provisiond is down")
	p.modErr = errors.New("supervisor is down")
	h := statusHarness(t, p, func(h *harness) {
		h.reg.setFail("ReportStatus", func() error { return &bus.Error{Code: ErrInvalid, Message: "invalid version"} })
	})
	h.settle(3)
	if s := h.state(); s.Status.OK || !strings.Contains(s.Status.Error, "status report: invalid version") || !s.Uptime.OK {
		t.Fatalf("status task %+v, uptime task %+v", s.Status, s.Uptime)
	}
	h.reg.setFail("ReportStatus", nil)
	h.step(3)
	rep := h.reg.lastStatus()
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		if c.OK || !strings.HasPrefix(c.Reason, "no answer: ") {
			t.Errorf("check %+v", c)
		}
	}
	if rep.Healthy || !slices.Equal(names, []string{"supervisor", "provisiond", "provisiond-statistics"}) || rep.Total != (api.Capacity{}) ||
		rep.Modules != nil || rep.Workloads != nil || rep.Deployments != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// TestTrimReport: a report is cut to the registrar's limits, keeping what
// fails.
func TestTrimReport(t *testing.T) {
	var rep api.NodeStatusReport
	for i := range api.MaxStatusItems + 10 {
		rep.Checks = append(rep.Checks, api.HealthCheck{Name: fmt.Sprint("c", i), OK: i != api.MaxStatusItems+5})
		rep.Modules = append(rep.Modules, api.ModuleState{Name: fmt.Sprint("m", i), State: map[bool]string{true: "running", false: "failed"}[i != api.MaxStatusItems+7]})
	}
	rep.Workloads = map[string]uint64{}
	for i := range api.MaxStatusItems + 3 {
		rep.Workloads[fmt.Sprint("s", i)] = 1
	}
	got := trimReport(rep)
	if len(got.Checks) != api.MaxStatusItems || got.Checks[0].OK || len(got.Modules) != api.MaxStatusItems ||
		got.Modules[0].State != "failed" || len(got.Workloads) != api.MaxStatusItems {
		t.Fatalf("trimmed: %d checks (first %+v), %d modules (first %+v), %d states",
			len(got.Checks), got.Checks[0], len(got.Modules), got.Modules[0], len(got.Workloads))
	}
	long := strings.Repeat("é", api.MaxStatusReason+1)
	if r := []rune(trimReason(long)); len(r) != api.MaxStatusReason || r[len(r)-1] != '…' {
		t.Errorf("trimReason: %d runes", len(r))
	}
	if trimReason("short") != "short" {
		t.Error("trimReason changed a short reason")
	}
}

// probes is a PeerSource answering rounds in turn.
type probes struct {
	mu     sync.Mutex
	rounds []api.PeerReachability
	err    error
}

func (p *probes) Probe(context.Context) (api.PeerReachability, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil || len(p.rounds) == 0 {
		return api.PeerReachability{}, p.err
	}
	r := p.rounds[0]
	p.rounds = p.rounds[1:]
	return r, nil
}

// TestStatusCarriesPeerProbes: each report carries that round's probes
// of other nodes, a too-long error trimmed; a round that probed nothing
// or failed sends none, and unreachable peers do not make the node
// unhealthy.
func TestStatusCarriesPeerProbes(t *testing.T) {
	p := newHosted()
	pr := &probes{rounds: []api.PeerReachability{
		{Probed: 2, Reached: 1, Probes: []api.PeerProbe{{NodeID: 4, Reached: true}, {NodeID: 5, Error: strings.Repeat("x", 300)}}},
		{},
	}}
	h := newHarnessWith(t, Config{AccountCheck: 1000 * time.Hour, Update: 1000 * time.Hour, ZosVersion: "v4.2.0"},
		func(d *Deps) { d.Provision, d.Modules, d.Peers = p, p, pr })
	h.settle(3)
	rep := h.reg.lastStatus()
	if rep.Peers == nil || rep.Peers.Probed != 2 || rep.Peers.Reached != 1 || !rep.Healthy ||
		len([]rune(rep.Peers.Probes[1].Error)) != api.MaxStatusReason {
		t.Fatalf("first report: %+v peers %+v", rep, rep.Peers)
	}
	h.step(3)
	if rep := h.reg.lastStatus(); rep.Peers != nil {
		t.Fatalf("a round of no probes sent %+v", rep.Peers)
	}
	pr.mu.Lock()
	pr.err = errors.New("noderpc is restarting")
	pr.mu.Unlock()
	h.step(3)
	if rep := h.reg.lastStatus(); rep.Peers != nil || !rep.Healthy {
		t.Fatalf("a failed round: %+v", rep)
	}
}
