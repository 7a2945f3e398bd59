package registrarlight

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/supervisor"
	"github.com/grid4/grid4/node/powerd"
	"github.com/grid4/grid4/registrar/api"
)

// reportStatus collects the node's status and sends it to the registrar.
// What cannot be collected (a module that does not answer) is reported as
// a failing check, so that the report is sent all the same and names the
// trouble.
func (l *Light) reportStatus(ctx context.Context) error {
	rep := l.collectStatus(ctx)
	st, _ := l.State(ctx)
	err := l.call(ctx, func(ctx context.Context) error { return l.d.Registrar.ReportStatus(ctx, st.NodeID, rep) })
	if err != nil {
		err = fmt.Errorf("status report: %w", err)
		if ctx.Err() == nil {
			l.d.Logger.Warn("status report failed", "err", err)
		}
	}
	l.record(func(s *State) *Task { return &s.Status }, err)
	if err == nil {
		l.update(func(s *State) { s.Healthy, s.Reasons = rep.Healthy, statusReasons(rep) })
	}
	return err
}

// collectStatus builds the status report: the provisioning engine's
// capacity and statistics, powerd's checks, the supervisor's modules and
// the running version. The node is healthy when every check passes, every
// module runs and every part answered.
func (l *Light) collectStatus(ctx context.Context) api.NodeStatusReport {
	log := l.d.Logger.With("job", "status report")
	rep := api.NodeStatusReport{Version: l.version(ctx, log), Healthy: true}
	fail := func(name string, err error) {
		rep.Healthy = false
		rep.Checks = append(rep.Checks, api.HealthCheck{Name: name, Reason: trimReason("no answer: " + err.Error())})
	}
	var h powerd.Health
	if err := l.call(ctx, func(ctx context.Context) (err error) { h, err = l.d.Power.Health(ctx); return err }); err != nil {
		fail("powerd", err)
	} else {
		rep.Healthy = h.Healthy
		for _, c := range h.Checks {
			rep.Checks = append(rep.Checks, api.HealthCheck{Name: c.Name, OK: c.OK, Reason: trimReason(c.Reason)})
		}
	}
	if l.d.Modules != nil {
		var ms []supervisor.Status
		if err := l.call(ctx, func(ctx context.Context) (err error) { ms, err = l.d.Modules.Modules(ctx); return err }); err != nil {
			fail("supervisor", err)
			ms = nil
		}
		for _, m := range ms {
			rep.Modules = append(rep.Modules, api.ModuleState{Name: m.Name, State: string(m.State),
				Restarts: uint64(max(m.Restarts, 0)), LastExit: trimReason(m.LastExit)})
			rep.Healthy = rep.Healthy && m.State == supervisor.Running
		}
	}
	var c gridtypes.CapacityReport
	if err := l.call(ctx, func(ctx context.Context) (err error) { c, err = l.d.Provision.Capacity(ctx); return err }); err != nil {
		fail("provisiond", err)
		c = gridtypes.CapacityReport{}
	}
	rep.Total, rep.Used = capacity(c.Total), capacity(c.Used)
	var st gridtypes.Statistics
	if err := l.call(ctx, func(ctx context.Context) (err error) { st, err = l.d.Provision.Statistics(ctx); return err }); err != nil {
		fail("provisiond-statistics", err)
		st = gridtypes.Statistics{}
	}
	rep.Deployments = uint64(max(st.Deployments, 0))
	for _, byState := range st.Workloads {
		for state, n := range byState {
			if rep.Workloads == nil {
				rep.Workloads = map[string]uint64{}
			}
			rep.Workloads[string(state)] += uint64(max(n, 0))
		}
	}
	rep.Peers = l.probePeers(ctx, log)
	return trimReport(rep)
}

// probePeers is the probes' part of the report: nil when there is no
// prober, it probed no node, or it did not answer (the node's health does
// not depend on its peers; the supervisor reports a failing module).
func (l *Light) probePeers(ctx context.Context, log *slog.Logger) *api.PeerReachability {
	if l.d.Peers == nil {
		return nil
	}
	var p api.PeerReachability
	if err := l.call(ctx, func(ctx context.Context) (err error) { p, err = l.d.Peers.Probe(ctx); return err }); err != nil {
		log.Info("no peer probes", "err", err)
		return nil
	}
	if p.Probed == 0 {
		return nil
	}
	p.Probes = p.Probes[:min(len(p.Probes), api.MaxStatusItems)]
	for i := range p.Probes {
		p.Probes[i].Error = trimReason(p.Probes[i].Error)
	}
	return &p
}

// capacity converts the engine's figures to the registrar's.
func capacity(r gridtypes.Resources) api.Capacity {
	return api.Capacity{CRU: r.CRU, MRU: r.MRU, SRU: r.SRU, HRU: r.HRU, IPv4: r.IPv4}
}

// trimReason cuts s to the registrar's api.MaxStatusReason characters.
func trimReason(s string) string {
	if utf8.RuneCountInString(s) <= api.MaxStatusReason {
		return s
	}
	r := []rune(s)
	return string(r[:api.MaxStatusReason-1]) + "…"
}

// trimReport keeps rep within the registrar's limits on lists: the
// failing checks and the modules not running come first, so that what is
// cut is what is fine.
func trimReport(rep api.NodeStatusReport) api.NodeStatusReport {
	slices.SortStableFunc(rep.Checks, func(a, b api.HealthCheck) int { return boolOrder(a.OK, b.OK) })
	slices.SortStableFunc(rep.Modules, func(a, b api.ModuleState) int {
		return boolOrder(a.State == string(supervisor.Running), b.State == string(supervisor.Running))
	})
	rep.Checks = rep.Checks[:min(len(rep.Checks), api.MaxStatusItems)]
	rep.Modules = rep.Modules[:min(len(rep.Modules), api.MaxStatusItems)]
	if len(rep.Workloads) > api.MaxStatusItems {
		for _, k := range slices.Sorted(maps.Keys(rep.Workloads))[api.MaxStatusItems:] {
			delete(rep.Workloads, k)
		}
	}
	return rep
}

// boolOrder orders false before true.
func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// statusReasons names what is wrong in rep, as the registrar words it.
func statusReasons(rep api.NodeStatusReport) []string {
	var out []string
	for _, c := range rep.Checks {
		if !c.OK {
			out = append(out, "check "+c.Name+": "+c.Reason)
		}
	}
	for _, m := range rep.Modules {
		if m.State != string(supervisor.Running) {
			out = append(out, "module "+m.Name+": "+m.State)
		}
	}
	return out
}
