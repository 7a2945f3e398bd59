package registrar

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/store"
)

// maxUptime bounds a reported uptime: 20 years of seconds.
const maxUptime = 20 * 366 * 24 * 3600

// reportUptime is POST /nodes/{node_id}/uptime, the hot path of the
// registrar: authentication (done before), an ownership check from the
// owner cache, and one store write. The reply tells the node when to
// report next.
func (s *Server) reportUptime(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	if err := s.ownNode(r, id); err != nil {
		return err
	}
	var rep api.UptimeReport
	if err := decodeBody(r, &rep); err != nil {
		return err
	}
	now := s.now()
	switch {
	case rep.Uptime == 0:
		return invalid("uptime", "required: seconds since boot, > 0")
	case rep.Uptime > maxUptime:
		return invalid("uptime", "%d seconds is more than 20 years", rep.Uptime)
	case rep.Timestamp == 0:
		return invalid("timestamp", "required: the node's unix time in seconds")
	}
	if d := now.Sub(time.Unix(rep.Timestamp, 0)); d > s.cfg.UptimeWindow || -d > s.cfg.UptimeWindow {
		return badRequest(fmt.Sprintf("invalid timestamp hint: must be within ±%d seconds of the current time (%s)",
			int64(s.cfg.UptimeWindow.Seconds()), now.UTC().Format(time.RFC3339)))
	}
	res, err := s.store.RecordUptime(r.Context(), id, now, rep.Uptime)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("node %d not found", id)
	}
	if err != nil {
		return err
	}
	s.metrics.uptime.Inc()
	if res.Restarted {
		s.metrics.restarts.Inc()
	}
	interval := s.sched.interval(s.nodes.get(r.Context()))
	next := s.sched.next(id, now, interval)
	writeJSON(w, http.StatusCreated, api.UptimeReply{
		Message:      "uptime reported successfully",
		NextReportIn: int64((next + time.Second - 1) / time.Second),
		Restarted:    res.Restarted,
	})
	return nil
}

// uptimeHistory is GET /nodes/{node_id}/uptime: the node's boot sessions,
// newest first, between since and until (RFC 3339 or unix seconds;
// default: the retention period up to now), at most size (default 50, max
// 100) of them.
func (s *Server) uptimeHistory(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID("node_id", r.PathValue("node_id"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	now := s.now()
	since, err := parseTimeParam(q, "since", now.Add(-s.cfg.UptimeRetention))
	if err != nil {
		return err
	}
	until, err := parseTimeParam(q, "until", now)
	if err != nil {
		return err
	}
	if until.Before(since) {
		return badRequest("invalid until: before since")
	}
	page, err := parsePage(q)
	if err != nil {
		return err
	}
	if q.Get("page") != "" && page.Number != 1 {
		return invalid("page", "uptime history is not paged; narrow since/until instead")
	}
	if _, err := s.loadNode(r.Context(), id); err != nil {
		return err
	}
	sessions, err := s.store.UptimeSessions(r.Context(), id, since, until, int(page.Size))
	if err != nil {
		return err
	}
	if sessions == nil {
		sessions = []api.UptimeSession{}
	}
	writeJSON(w, http.StatusOK, sessions)
	return nil
}

// parseTimeParam reads a time from RFC 3339 or unix seconds.
func parseTimeParam(q url.Values, name string, def time.Time) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 || secs > 1<<40 {
			return time.Time{}, invalid(name, "%q is out of range", v)
		}
		return time.Unix(secs, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, invalid(name, "%q: want RFC 3339 (2025-01-02T15:04:05Z) or unix seconds", v)
	}
	return t, nil
}
