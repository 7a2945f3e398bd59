package registrar

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/grid4/grid4/auth"
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
	data, err := readBody(r)
	if err != nil {
		return err
	}
	rep, ok := parseUptimeReport(data)
	if !ok {
		rep = api.UptimeReport{}
		if err := decodeJSON(data, &rep); err != nil {
			return err
		}
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
	var res store.UptimeResult
	c, _ := auth.CallerFrom(r.Context())
	if n := c.Nonce; n != nil {
		// Kept with the report in one round trip (route.deferNonce).
		res, err = s.store.RecordUptimeOnce(r.Context(), id, now, rep.Uptime, store.Nonce{KeyID: n.KeyID, Value: n.Value, Expires: n.Expires})
		if errors.Is(err, store.ErrConflict) {
			return n.Replay()
		}
	} else {
		res, err = s.store.RecordUptime(r.Context(), id, now, rep.Uptime)
	}
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

// parseUptimeReport reads the body every node sends,
// {"uptime":N,"timestamp":N} (the members in either order, white space
// wherever JSON allows it, both integers from 0 to maxInteger), without
// the general decoder, whose two passes cost more than the rest of the
// handler's own work. Any other text, valid or not, it leaves to
// decodeJSON (false), which takes the same values from this one and
// words the refusals.
func parseUptimeReport(data []byte) (api.UptimeReport, bool) {
	var (
		rep            api.UptimeReport
		sawUp, sawTime bool
	)
	p := jsonScan{data: data}
	if !p.byte('{') {
		return rep, false
	}
	for i := range 2 {
		if i == 1 && !p.byte(',') {
			return rep, false
		}
		name, ok := p.name()
		if !ok || !p.byte(':') {
			return rep, false
		}
		n, ok := p.integer()
		if !ok {
			return rep, false
		}
		switch {
		case string(name) == "uptime" && !sawUp:
			rep.Uptime, sawUp = n, true
		case string(name) == "timestamp" && !sawTime:
			rep.Timestamp, sawTime = int64(n), true
		default:
			return rep, false
		}
	}
	if !p.byte('}') {
		return rep, false
	}
	p.space()
	return rep, p.i == len(p.data)
}

// jsonScan reads the few JSON shapes parseUptimeReport takes.
type jsonScan struct {
	data []byte
	i    int
}

// space skips JSON white space.
func (p *jsonScan) space() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte reads c after white space.
func (p *jsonScan) byte(c byte) bool {
	p.space()
	if p.i < len(p.data) && p.data[p.i] == c {
		p.i++
		return true
	}
	return false
}

// name reads a member name of lower-case letters without escapes.
func (p *jsonScan) name() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.data) && p.data[p.i] >= 'a' && p.data[p.i] <= 'z' {
		p.i++
	}
	if p.i == len(p.data) || p.data[p.i] != '"' {
		return nil, false
	}
	p.i++
	return p.data[start : p.i-1], true
}

// integer reads 0 or digits without a leading zero, up to maxInteger, not
// followed by a fraction or an exponent.
func (p *jsonScan) integer() (uint64, bool) {
	p.space()
	start := p.i
	var n uint64
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		d := uint64(p.data[p.i] - '0')
		if n > (maxInteger-d)/10 {
			return 0, false
		}
		n = n*10 + d
		p.i++
	}
	digits := p.i - start
	if digits == 0 || (digits > 1 && p.data[start] == '0') {
		return 0, false
	}
	if p.i < len(p.data) && (p.data[p.i] == '.' || p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		return 0, false
	}
	return n, true
}
