package registrar

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// Limits of a status report beyond those of api (MaxStatusItems, ...).
const (
	// maxIPv4 bounds a count of public IPv4 addresses: all of them.
	maxIPv4 = 1 << 32
	// maxCount bounds the deployment and workload counts.
	maxCount = 1 << 32
)

// reportStatus is POST /nodes/{node_id}/status: the node's twin sends
// what the node has in use and whether it is healthy. The registrar keeps
// it as the node's latest status and in its recent history.
func (s *Server) reportStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	if err := s.ownNode(r, id); err != nil {
		return err
	}
	var rep api.NodeStatusReport
	if err := decodeBody(r, &rep); err != nil {
		return err
	}
	now := s.now()
	if rep.Timestamp == 0 {
		return invalid("timestamp", "required: the node's unix time in seconds")
	}
	if d := now.Sub(time.Unix(rep.Timestamp, 0)); d > s.cfg.UptimeWindow || -d > s.cfg.UptimeWindow {
		return invalid("timestamp", "must be within ±%d seconds of the current time (%s)",
			int64(s.cfg.UptimeWindow.Seconds()), now.UTC().Format(time.RFC3339))
	}
	if err := validateStatusReport(rep); err != nil {
		return err
	}
	err = s.store.RecordNodeStatus(r.Context(), id, now, statusFromReport(rep))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("node %d not found", id)
	}
	if err != nil {
		return err
	}
	s.metrics.status.WithLabelValues(strconv.FormatBool(rep.Healthy)).Inc()
	writeJSON(w, http.StatusCreated, api.Message{Message: "status reported successfully"})
	return nil
}

// validateStatusReport checks a status report's fields (the timestamp is
// checked by the handler).
func validateStatusReport(rep api.NodeStatusReport) error {
	if err := validateVersion("version", rep.Version, false); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		c    api.Capacity
	}{{"total", rep.Total}, {"used", rep.Used}} {
		if err := validateCapacity(c.name, c.c); err != nil {
			return err
		}
	}
	if rep.Deployments > maxCount {
		return invalid("deployments", "%d is above the limit %d", rep.Deployments, uint64(maxCount))
	}
	if len(rep.Checks) > api.MaxStatusItems {
		return invalid("checks", "%d checks, at most %d allowed", len(rep.Checks), api.MaxStatusItems)
	}
	for i, c := range rep.Checks {
		field := fmt.Sprintf("checks[%d]", i)
		if err := validateStatusName(field+".name", c.Name); err != nil {
			return err
		}
		if err := validateText(field+".reason", c.Reason, api.MaxStatusReason, false); err != nil {
			return err
		}
	}
	if len(rep.Modules) > api.MaxStatusItems {
		return invalid("modules", "%d modules, at most %d allowed", len(rep.Modules), api.MaxStatusItems)
	}
	for i, m := range rep.Modules {
		field := fmt.Sprintf("modules[%d]", i)
		if err := validateStatusName(field+".name", m.Name); err != nil {
			return err
		}
		if err := validateStatusName(field+".state", m.State); err != nil {
			return err
		}
		if m.Restarts > maxCount {
			return invalid(field+".restarts", "%d is above the limit %d", m.Restarts, uint64(maxCount))
		}
		if err := validateText(field+".last_exit", m.LastExit, api.MaxStatusReason, false); err != nil {
			return err
		}
	}
	if err := validatePeers(rep.Peers); err != nil {
		return err
	}
	if len(rep.Workloads) > api.MaxStatusItems {
		return invalid("workloads", "%d states, at most %d allowed", len(rep.Workloads), api.MaxStatusItems)
	}
	for state, n := range rep.Workloads {
		if err := validateStatusName("workloads", state); err != nil {
			return err
		}
		if n > maxCount {
			return invalid("workloads."+state, "%d is above the limit %d", n, uint64(maxCount))
		}
	}
	return nil
}

// validateCapacity checks a capacity against the limits of a node's
// resources.
func validateCapacity(field string, c api.Capacity) error {
	for _, f := range []struct {
		name       string
		value, max uint64
	}{{"cru", c.CRU, maxCRU}, {"mru", c.MRU, maxMRU}, {"sru", c.SRU, maxSRU}, {"hru", c.HRU, maxHRU}, {"ipv4", c.IPv4, maxIPv4}} {
		if f.value > f.max {
			return invalid(field+"."+f.name, "%d is above the limit %d", f.value, f.max)
		}
	}
	return nil
}

// validateStatusName checks a check's or module's name, a module's state
// or a workload state: 1 to api.MaxStatusName printable ASCII characters
// without spaces.
func validateStatusName(field, s string) error {
	if s == "" || len(s) > api.MaxStatusName {
		return invalid(field, "must be 1 to %d characters", api.MaxStatusName)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return invalid(field, "%q: only printable ASCII without spaces", s)
		}
	}
	return nil
}

// validatePeers checks a report's probes of other nodes.
func validatePeers(p *api.PeerReachability) error {
	if p == nil {
		return nil
	}
	switch {
	case p.Probed > api.MaxStatusItems:
		return invalid("peers.probed", "%d is above the limit %d", p.Probed, api.MaxStatusItems)
	case p.Reached > p.Probed:
		return invalid("peers.reached", "%d reached of %d probed", p.Reached, p.Probed)
	case len(p.Probes) > api.MaxStatusItems:
		return invalid("peers.probes", "%d probes, at most %d allowed", len(p.Probes), api.MaxStatusItems)
	}
	for i, pr := range p.Probes {
		field := fmt.Sprintf("peers.probes[%d]", i)
		if pr.NodeID == 0 {
			return invalid(field+".node_id", "required")
		}
		if err := validateText(field+".error", pr.Error, api.MaxStatusReason, false); err != nil {
			return err
		}
	}
	return nil
}

// statusFromReport is what the store keeps of a report: its figures, the
// free capacity, and the reasons the node is unhealthy (failing checks,
// modules not running), named.
func statusFromReport(rep api.NodeStatusReport) api.NodeStatus {
	st := api.NodeStatus{
		Healthy: rep.Healthy, Version: rep.Version,
		Total: rep.Total, Used: rep.Used, Free: rep.Total.Sub(rep.Used),
		Deployments: rep.Deployments, Workloads: rep.Workloads,
		Checks: rep.Checks, Modules: rep.Modules, Peers: rep.Peers,
	}
	for _, c := range rep.Checks {
		if !c.OK {
			st.Reasons = append(st.Reasons, "check "+c.Name+": "+c.Reason)
		}
	}
	for _, m := range rep.Modules {
		if m.State != "running" {
			why := "module " + m.Name + ": " + m.State
			if m.LastExit != "" {
				why += " (" + m.LastExit + ")"
			}
			st.Reasons = append(st.Reasons, why)
		}
	}
	if !rep.Healthy && len(st.Reasons) == 0 {
		st.Reasons = []string{"the node reports itself unhealthy"}
	}
	return st
}

// statusFresh reports whether a status received at at still counts: it
// is younger than the online cutoff, so a node whose reports stop turns
// unhealthy when it would turn offline.
func statusFresh(at, now time.Time, cutoff time.Duration) bool {
	return now.Sub(at) < cutoff
}

// staleReason says why a status no longer counts.
func staleReason(at time.Time, cutoff time.Duration) string {
	return fmt.Sprintf("no status report since %s (reports count for %s)",
		at.UTC().Format(time.RFC3339), flagvalue.FormatDuration(cutoff))
}

// setHealth makes Healthy true only when the node's latest status said so
// and still counts (see statusFresh).
func setHealth(n *api.Node, now time.Time, cutoff time.Duration) {
	n.Healthy = n.Healthy && n.StatusAt != nil && statusFresh(*n.StatusAt, now, cutoff)
}

// nodeStatus is GET /nodes/{node_id}/status: the latest status report in
// full and the recent ones (size of them, default and most
// store.StatusHistoryLen), newest first.
func (s *Server) nodeStatus(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	limit := store.StatusHistoryLen
	if v := r.URL.Query().Get("size"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 || n > store.StatusHistoryLen {
			return invalid("size", "%q: want 1 to %d", truncate(v, 40), store.StatusHistoryLen)
		}
		limit = int(n)
	}
	latest, history, err := s.store.NodeStatus(r.Context(), id, limit)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("node %d not found", id)
	}
	if err != nil {
		return err
	}
	if latest != nil {
		if cutoff := s.onlineCutoff(r.Context()); !statusFresh(latest.ReportedAt, s.now(), cutoff) {
			latest.Healthy = false
			latest.Reasons = append(latest.Reasons, staleReason(latest.ReportedAt, cutoff))
		}
	}
	writeJSON(w, http.StatusOK, api.NodeStatusHistory{NodeID: id, Latest: latest, History: history})
	return nil
}

// freeFilters are the free-capacity filters of GET /nodes: each takes a
// minimum, bytes with an optional unit for the sizes (8GiB), a count for
// the others. The spelling free_mru>=8GiB reads as the parameter
// "free_mru>" and is taken as the same filter.
var freeFilters = []struct {
	name string
	size bool
	set  func(c *api.Capacity, v uint64)
}{
	{"free_cru", false, func(c *api.Capacity, v uint64) { c.CRU = v }},
	{"free_mru", true, func(c *api.Capacity, v uint64) { c.MRU = v }},
	{"free_sru", true, func(c *api.Capacity, v uint64) { c.SRU = v }},
	{"free_hru", true, func(c *api.Capacity, v uint64) { c.HRU = v }},
	{"free_ips", false, func(c *api.Capacity, v uint64) { c.IPv4 = v }},
}

// statusFilters reads the status filters of GET /nodes into f: the
// free_* minimums, healthy=true (healthy=false, which the public
// registrar's client always sends, does not filter, as there), and the
// public status: up and down (online or not), healthy and unhealthy.
func statusFilters(q url.Values, f *store.NodeFilter, now time.Time, cutoff time.Duration) error {
	for _, ff := range freeFilters {
		for _, name := range []string{ff.name, ff.name + ">"} {
			v := q.Get(name)
			if v == "" {
				continue
			}
			var (
				n   uint64
				err error
			)
			if ff.size {
				n, err = flagvalue.ParseSize(v)
			} else {
				n, err = strconv.ParseUint(v, 10, 64)
				if err != nil {
					err = errors.New("want a count such as 4")
				}
			}
			if err == nil && n > maxInteger {
				err = fmt.Errorf("at most %d", uint64(maxInteger))
			}
			if err != nil {
				return invalid(ff.name, "%q: %v", truncate(v, 40), err)
			}
			ff.set(&f.FreeAtLeast, max(n, capacityField(f.FreeAtLeast, ff.name)))
		}
	}
	since := now.Add(-cutoff)
	if v := q.Get("healthy"); v != "" {
		h, err := strconv.ParseBool(v)
		if err != nil {
			return invalid("healthy", "%q: want true or false", truncate(v, 40))
		}
		if h {
			f.Health, f.StatusSince = store.HealthHealthy, since
		}
	}
	switch v := q.Get("status"); v {
	case "":
	case "up":
		f.SeenSince = later(f.SeenSince, since)
	case "down":
		f.NotSeenSince = &since
	case "healthy", "unhealthy":
		want := store.HealthHealthy
		if v == "unhealthy" {
			want = store.HealthUnhealthy
		}
		if f.Health != store.HealthAny && f.Health != want {
			return invalid("status", "%q contradicts healthy=true", v)
		}
		f.Health, f.StatusSince = want, since
	default:
		return invalid("status", "%q: want up, down, healthy or unhealthy", truncate(v, 40))
	}
	return nil
}

// capacityField returns the field of c a free filter sets.
func capacityField(c api.Capacity, name string) uint64 {
	switch name {
	case "free_cru":
		return c.CRU
	case "free_mru":
		return c.MRU
	case "free_sru":
		return c.SRU
	case "free_hru":
		return c.HRU
	}
	return c.IPv4
}

// later returns the later of *cur (nil: none) and t.
func later(cur *time.Time, t time.Time) *time.Time {
	if cur == nil || t.After(*cur) {
		return &t
	}
	return cur
}
