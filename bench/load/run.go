package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
)

// Scenarios.
const (
	// ScenarioUptime sends signed uptime reports, POST
	// /api/v1/nodes/{id}/uptime, each from the node's own twin, visiting
	// the fleet in a random order (every node once before any node
	// twice).
	ScenarioUptime = "uptime"
	// ScenarioList sends GET /api/v1/nodes?farm_id=F&size=S for random
	// farms F of the fleet (with RunConfig.ListQuery, RunConfig.ListFleet).
	ScenarioList = "list"
	// ScenarioStatus sends signed status reports, POST
	// /api/v1/nodes/{id}/status (StatusReport), as ScenarioUptime sends
	// uptime reports.
	ScenarioStatus = "status"
)

// Authentication schemes of the uptime scenario.
const (
	// AuthV2 signs with signed requests v2 (RFC 9421), a fresh nonce each.
	AuthV2 = "v2"
	// AuthLegacy signs with the legacy X-Auth header.
	AuthLegacy = "legacy"
)

// Stop reasons of a Result.
const (
	StopCount    = "count"            // every request was sent
	StopDuration = "duration"         // RunConfig.Duration passed
	StopWindow   = "signature window" // presigned requests would be refused from now on
	StopCanceled = "canceled"         // the context ended
)

// Defaults of RunConfig.
const (
	DefaultConcurrency = 32
	DefaultRequests    = 100_000
	DefaultDuration    = 30 * time.Second
	DefaultPageSize    = 50
	DefaultSignWindow  = 60 * time.Second
)

// RunConfig describes one run of a scenario. Zero fields take the defaults.
type RunConfig struct {
	// BaseURL is the registrar, http://127.0.0.1:PORT (loopback only).
	BaseURL string
	// Scenario is ScenarioUptime, ScenarioStatus or ScenarioList.
	Scenario string
	// Auth is AuthV2 or AuthLegacy (uptime and status only; default
	// AuthV2).
	Auth string
	// Concurrency is the number of requests in flight (connections).
	Concurrency int
	// Requests bounds the measured requests.
	Requests int
	// Duration bounds the measured phase.
	Duration time.Duration
	// Warmup requests are sent before the measured phase and not counted.
	Warmup int
	// Presign signs every uptime report (warm-up and measured) before
	// anything is sent, on every CPU, so that signing does not take CPU
	// from the registrar during the measured phase. Presigned reports
	// carry the time signing began, so the measured phase is cut short
	// when they would fall outside SignWindow.
	Presign bool
	// SignWindow is how long after signing a report is accepted: the
	// smaller of the registrar's --uptime-window and, for legacy,
	// --legacy-window (default 60 s, both defaults).
	SignWindow time.Duration
	// Rate paces the measured phase at this many requests per second (0:
	// as fast as the registrar answers). When paced, latency is measured
	// from when a request was due, so a registrar falling behind shows in
	// the percentiles.
	Rate float64
	// PageSize is the list scenario's size parameter.
	PageSize int
	// ListQuery is added to the list scenario's query (the status
	// filters: "healthy=true&free_mru=8GiB").
	ListQuery string
	// ListFleet lists the whole fleet instead of a random farm (no
	// farm_id).
	ListFleet bool
	// Seed chooses the order of the nodes and the farms listed.
	Seed uint64
	// Client sends the requests with net/http (nil: the load generator's
	// own minimal HTTP/1.1 client, one keep-alive connection per worker,
	// see wire.go).
	Client *http.Client
	// Logger receives a record when each phase starts (nil: none).
	Logger *slog.Logger
}

// Result is what one run measured. Requests = sum(Status) +
// TransportErrors; OK counts the answers with the expected status and body.
type Result struct {
	Name        string  `json:"name"`
	Scenario    string  `json:"scenario"`
	Auth        string  `json:"auth,omitempty"`
	Nodes       int     `json:"nodes"`
	Farms       int     `json:"farms"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	Presigned   bool    `json:"presigned"`
	// PresignSeconds is how long signing took, before the measured phase.
	PresignSeconds float64 `json:"presign_seconds,omitempty"`
	Warmup         int     `json:"warmup"`

	Requests        int         `json:"requests"`
	OK              int         `json:"ok"`
	ElapsedSeconds  float64     `json:"elapsed_seconds"`
	Throughput      float64     `json:"throughput"`
	Latency         Latency     `json:"latency"`
	Histogram       []Bucket    `json:"histogram"`
	Status          map[int]int `json:"status"`
	TransportErrors int         `json:"transport_errors"`
	// BadBodies counts answers with the expected status whose body is not
	// what the scenario expects (a list page without nodes, ...).
	BadBodies int `json:"bad_bodies"`
	// Restarts counts uptime replies saying the node restarted (expected:
	// 0; a restart takes the registrar's slower path).
	Restarts   int    `json:"restarts"`
	FirstError string `json:"first_error,omitempty"`
	Stop       string `json:"stop"`

	// Memory of the registrar after the run, when known.
	Memory *Memory `json:"memory,omitempty"`
	// PeakRSS is the registrar's highest sampled RSS during the run.
	PeakRSS uint64 `json:"peak_rss_bytes,omitempty"`
	// ServerCPUSeconds is the CPU time the registrar used during the run
	// (warm-up included), when known.
	ServerCPUSeconds float64 `json:"server_cpu_seconds,omitempty"`
	// DBCPUSeconds is the CPU time PostgreSQL backends of the database
	// used during the run (warm-up included), when known.
	DBCPUSeconds float64 `json:"db_cpu_seconds,omitempty"`
	// ClientCPUSeconds is the CPU time the load generator's process used
	// during the measured phase (sending, reading, checking; in a test,
	// whatever else runs in the process too).
	ClientCPUSeconds float64 `json:"client_cpu_seconds,omitempty"`
}

// ClientCPUPerRequest returns the load generator's CPU time per measured
// request, in microseconds; 0 when unknown.
func (r Result) ClientCPUPerRequest() float64 {
	if r.Requests == 0 {
		return 0
	}
	return r.ClientCPUSeconds / float64(r.Requests) * 1e6
}

// CPUPerRequest returns the registrar's and the database's CPU time per
// request (warm-up included), in microseconds; 0 when unknown.
func (r Result) CPUPerRequest() (server, db float64) {
	n := float64(r.Requests + r.Warmup)
	if n == 0 {
		return 0, 0
	}
	return r.ServerCPUSeconds / n * 1e6, r.DBCPUSeconds / n * 1e6
}

// Name returns the name of a scenario run: "uptime-v2", "uptime-legacy",
// "status-v2", "list".
func Name(scenario, scheme string) string {
	if signed(scenario) {
		return scenario + "-" + scheme
	}
	return scenario
}

// Run runs one scenario against the registrar at cfg.BaseURL with fleet f
// and returns what it measured. It records on f the uptime it reached, so
// that a later run on f reports more. It stops by itself after cfg.Requests
// requests or cfg.Duration, whichever comes first. Answers other than
// success are counted, not errors; Run fails only when it cannot run.
func Run(ctx context.Context, f *Fleet, cfg RunConfig) (Result, error) {
	if err := cfg.fill(f); err != nil {
		return Result{}, err
	}
	r := &runner{cfg: cfg, fleet: f, client: cfg.Client}
	if r.client == nil {
		ep, err := parseEndpoint(cfg.BaseURL)
		if err != nil {
			return Result{}, err
		}
		r.ep, r.wire = ep, r.wireRequest
	}
	res := Result{
		Name: Name(cfg.Scenario, cfg.Auth), Scenario: cfg.Scenario, Nodes: len(f.Nodes), Farms: len(f.Farms),
		Concurrency: cfg.Concurrency, Rate: cfg.Rate, Warmup: cfg.Warmup,
	}
	total := cfg.Warmup + cfg.Requests
	deadline := time.Time{} // none beyond Duration
	switch cfg.Scenario {
	case ScenarioUptime, ScenarioStatus:
		res.Auth = cfg.Auth
		r.order = rand.New(rand.NewPCG(cfg.Seed, 1)).Perm(len(f.Nodes))
		r.shift = max(0, f.uptimeNext-time.Now().Unix())
		defer func() {
			f.uptimeNext = time.Now().Unix() + r.shift + int64((total-1)/len(r.order)) + 1
		}()
		if cfg.Presign {
			res.Presigned = true
			start := time.Now()
			if err := r.presign(ctx, total, start); err != nil {
				return res, err
			}
			res.PresignSeconds = time.Since(start).Seconds()
			cfg.Logger.Info("presigned", "run", res.Name, "requests", total, "elapsed", time.Since(start).Round(time.Millisecond))
			// Keep a margin of 5 s for requests in flight and clocks.
			deadline = start.Add(cfg.SignWindow - 5*time.Second)
			if !time.Now().Before(deadline) {
				return res, fmt.Errorf("load: presigning %d reports took %v, longer than the signature window %v allows: send fewer (-n) or sign inline",
					total, time.Since(start).Round(time.Millisecond), cfg.SignWindow)
			}
		} else {
			// Derive the keys first: a node holds its key, so the measured
			// phase signs but does not derive.
			start := time.Now()
			if err := r.deriveKeys(ctx, min(total, len(r.order))); err != nil {
				return res, err
			}
			cfg.Logger.Info("derived keys", "run", res.Name, "keys", len(r.keys), "elapsed", time.Since(start).Round(time.Millisecond))
		}
	case ScenarioList:
		r.farmSeed = cfg.Seed
		if r.wire != nil {
			r.lists = make([][]byte, len(f.Farms))
			for k, farm := range f.Farms {
				r.lists[k] = r.ep.appendRequest(nil, http.MethodGet, r.listTarget(farm), nil, nil)
			}
		}
	}

	if cfg.Warmup > 0 {
		cfg.Logger.Info("warming up", "run", res.Name, "requests", cfg.Warmup)
		if _, _, err := r.phase(ctx, 0, cfg.Warmup, deadline, false); err != nil {
			return res, err
		}
	}
	cfg.Logger.Info("measuring", "run", res.Name, "requests", cfg.Requests, "duration", cfg.Duration)
	cpu0 := selfCPU()
	start := time.Now()
	end := start.Add(cfg.Duration)
	stop := StopDuration
	if !deadline.IsZero() && deadline.Before(end) {
		end, stop = deadline, StopWindow
	}
	st, hitEnd, err := r.phase(ctx, cfg.Warmup, total, end, true)
	if err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.ClientCPUSeconds = (selfCPU() - cpu0).Seconds()
	switch {
	case ctx.Err() != nil:
		res.Stop = StopCanceled
	case hitEnd:
		res.Stop = stop
	default:
		res.Stop = StopCount
	}
	res.Requests = len(st.lat)
	res.OK, res.Status, res.TransportErrors = st.ok, st.status, st.transport
	res.BadBodies, res.Restarts, res.FirstError = st.bad, st.restarts, st.firstErr
	res.ElapsedSeconds = elapsed.Seconds()
	res.Throughput = float64(res.Requests) / elapsed.Seconds()
	res.Latency, res.Histogram = summarize(st.lat)
	return res, nil
}

// fill checks cfg and sets its defaults.
func (cfg *RunConfig) fill(f *Fleet) error {
	if f == nil || len(f.Nodes) == 0 || len(f.Farms) == 0 {
		return errors.New("load: run: empty fleet")
	}
	if err := CheckLoopback(cfg.BaseURL); err != nil {
		return err
	}
	switch cfg.Scenario {
	case ScenarioUptime, ScenarioStatus:
		if cfg.Auth == "" {
			cfg.Auth = AuthV2
		}
		if cfg.Auth != AuthV2 && cfg.Auth != AuthLegacy {
			return fmt.Errorf("load: run: auth scheme %q: want %s or %s", cfg.Auth, AuthV2, AuthLegacy)
		}
	case ScenarioList:
		cfg.Auth = ""
	default:
		return fmt.Errorf("load: run: scenario %q: want %s, %s or %s", cfg.Scenario, ScenarioUptime, ScenarioStatus, ScenarioList)
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Requests == 0 {
		cfg.Requests = DefaultRequests
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.SignWindow == 0 {
		cfg.SignWindow = DefaultSignWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Concurrency < 1, cfg.Requests < 1, cfg.Duration < 0, cfg.Warmup < 0, cfg.Rate < 0, cfg.PageSize < 1:
		return fmt.Errorf("load: run: concurrency %d, requests %d, duration %v, warm-up %d, rate %g, page size %d: out of range",
			cfg.Concurrency, cfg.Requests, cfg.Duration, cfg.Warmup, cfg.Rate, cfg.PageSize)
	case cfg.Presign && cfg.SignWindow <= 5*time.Second:
		return fmt.Errorf("load: run: signature window %v is too short for presigning", cfg.SignWindow)
	}
	return nil
}

// selfCPU is the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newClient returns a keep-alive net/http client for loopback load with
// conns connections.
func newClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
	}
}

// signed reports whether scenario sends signed reports (one run per
// authentication scheme).
func signed(scenario string) bool { return scenario == ScenarioUptime || scenario == ScenarioStatus }

// runner holds one run's state.
type runner struct {
	cfg   RunConfig
	fleet *Fleet
	// client sends with net/http; when nil, wire builds each request's
	// bytes and a wireConn per worker sends them to ep.
	client *http.Client
	ep     wireEndpoint
	wire   func(buf *[]byte, i int) ([]byte, error)

	// uptime
	order  []int          // request i reports for node order[i % len]
	shift  int64          // seconds added to the uptime (see Fleet.uptimeNext)
	signed []signedReport // presigned reports, by request index
	keys   []keys.KeyPair // signing inline: the key of node order[j] at j

	// list
	farmSeed uint64
	lists    [][]byte // serialized list request of each farm (wire)

	// build and verify, when set, replace the scenario's requests and
	// answer check (side-by-side runs, see side.go).
	build  func(ctx context.Context, i int) (*http.Request, error)
	verify func(status int, body []byte) bool
}

// signedReport is a signed uptime report ready to send.
type signedReport struct {
	path string
	body []byte
	// header holds name, value pairs.
	header []string
	// wire is the whole request serialized, when sent by a wireConn
	// (path, body and header are then unset).
	wire []byte
}

// presign signs requests 0 .. n-1 at time at, on every CPU.
func (r *runner) presign(ctx context.Context, n int, at time.Time) error {
	r.signed = make([]signedReport, n)
	return onEveryCPU(ctx, n, "presigning", func(i int) error {
		k, err := NodeKey(r.node(i).Index)
		if err != nil {
			return err
		}
		s, err := r.sign(i, k, at)
		if err != nil {
			return err
		}
		if r.wire != nil {
			s = signedReport{wire: r.ep.appendRequest(nil, http.MethodPost, s.path, s.header, s.body)}
		}
		r.signed[i] = s
		return nil
	})
}

// node is the node of uptime request i.
func (r *runner) node(i int) Node { return r.fleet.Nodes[r.order[i%len(r.order)]] }

// sign builds and signs uptime request i at time at. A node's k-th report
// of the run claims k seconds more uptime, so that every report differs
// (the legacy replay guard refuses an identical request) and the uptime
// never goes down; so do the runs after it (r.shift).
func (r *runner) sign(i int, k keys.KeyPair, at time.Time) (signedReport, error) {
	n := r.node(i)
	round := i / len(r.order)
	uptime := at.Unix() + r.shift - FleetBoot().Unix() + int64(round)
	path := "/api/v1/nodes/" + strconv.FormatUint(n.NodeID, 10) + "/uptime"
	body := []byte(`{"uptime":` + strconv.FormatInt(uptime, 10) + `,"timestamp":` + strconv.FormatInt(at.Unix(), 10) + `}`)
	if r.cfg.Scenario == ScenarioStatus {
		// The round in the deployments: every report of a node differs.
		path = "/api/v1/nodes/" + strconv.FormatUint(n.NodeID, 10) + "/status"
		body = StatusReport(n.Index, at, uint64(round))
	}
	s := signedReport{path: path, body: body}
	if r.cfg.Auth == AuthLegacy {
		v, err := auth.SignLegacy(k, n.TwinID, at)
		if err != nil {
			return s, fmt.Errorf("load: signing report %d: %w", i, err)
		}
		s.header = []string{auth.HeaderXAuth, v}
		return s, nil
	}
	req, err := http.NewRequest(http.MethodPost, r.cfg.BaseURL+path, nil)
	if err != nil {
		return s, fmt.Errorf("load: report %d: %w", i, err)
	}
	signer := auth.Signer{Key: k, TwinID: n.TwinID, Validity: r.cfg.SignWindow, Now: func() time.Time { return at }}
	if err := signer.Sign(req, body); err != nil {
		return s, fmt.Errorf("load: signing report %d: %w", i, err)
	}
	for _, h := range []string{auth.HeaderContentDigest, auth.HeaderSignatureInput, auth.HeaderSignature} {
		s.header = append(s.header, h, req.Header.Get(h))
	}
	return s, nil
}

// deriveKeys derives the keys of the first n nodes of r.order, on every
// CPU.
func (r *runner) deriveKeys(ctx context.Context, n int) error {
	r.keys = make([]keys.KeyPair, n)
	return onEveryCPU(ctx, n, "deriving keys", func(j int) (err error) {
		r.keys[j], err = NodeKey(r.fleet.Nodes[r.order[j]].Index)
		return err
	})
}

// listFarm is the index in the fleet's farms of list request i.
func (r *runner) listFarm(i int) int {
	return int(mix64(r.farmSeed^uint64(i)) % uint64(len(r.fleet.Farms)))
}

// listTarget is the path and query of a list request for farm.
func (r *runner) listTarget(farm uint64) string {
	q := "size=" + strconv.Itoa(r.cfg.PageSize)
	if !r.cfg.ListFleet {
		q = "farm_id=" + strconv.FormatUint(farm, 10) + "&" + q
	}
	if r.cfg.ListQuery != "" {
		q += "&" + r.cfg.ListQuery
	}
	return "/api/v1/nodes?" + q
}

// report is uptime request i, presigned or signed now.
func (r *runner) report(i int) (signedReport, error) {
	if r.signed != nil {
		return r.signed[i], nil
	}
	return r.sign(i, r.keys[i%len(r.order)], time.Now())
}

// wireRequest is request i serialized, in *buf unless prepared before.
func (r *runner) wireRequest(buf *[]byte, i int) ([]byte, error) {
	if r.cfg.Scenario == ScenarioList {
		return r.lists[r.listFarm(i)], nil
	}
	s, err := r.report(i)
	if err != nil || s.wire != nil {
		return s.wire, err
	}
	*buf = r.ep.appendRequest((*buf)[:0], http.MethodPost, s.path, s.header, s.body)
	return *buf, nil
}

// request builds request i for net/http.
func (r *runner) request(ctx context.Context, i int) (*http.Request, error) {
	if r.build != nil {
		return r.build(ctx, i)
	}
	if r.cfg.Scenario == ScenarioList {
		farm := r.fleet.Farms[r.listFarm(i)]
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.cfg.BaseURL+r.listTarget(farm), nil)
		if err != nil {
			return nil, fmt.Errorf("load: request %d: %w", i, err)
		}
		return req, nil
	}
	s, err := r.report(i)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.BaseURL+s.path, bytes.NewReader(s.body))
	if err != nil {
		return nil, fmt.Errorf("load: request %d: %w", i, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for j := 0; j+1 < len(s.header); j += 2 {
		req.Header.Set(s.header[j], s.header[j+1])
	}
	return req, nil
}

// check tells whether an answer is the scenario's success, and whether an
// uptime reply reports a restart.
func (r *runner) check(status int, body []byte) (ok, restarted bool) {
	if r.verify != nil {
		return r.verify(status, body), false
	}
	if r.cfg.Scenario == ScenarioList {
		return status == http.StatusOK && bytes.HasPrefix(body, []byte(`[{"node_id":`)), false
	}
	if r.cfg.Scenario == ScenarioStatus {
		return status == http.StatusCreated && bytes.Contains(body, []byte(`"message":"status reported successfully"`)), false
	}
	ok = status == http.StatusCreated && bytes.Contains(body, []byte(`"message":"uptime reported successfully"`))
	return ok, ok && bytes.Contains(body, []byte(`"restarted":true`))
}

// phaseStats is what a phase measured.
type phaseStats struct {
	lat       []time.Duration
	status    map[int]int
	ok        int
	bad       int
	restarts  int
	transport int
	firstErr  string
}

func (a *phaseStats) merge(b *phaseStats) {
	a.lat = append(a.lat, b.lat...)
	for k, v := range b.status {
		a.status[k] += v
	}
	a.ok += b.ok
	a.bad += b.bad
	a.restarts += b.restarts
	a.transport += b.transport
	if a.firstErr == "" {
		a.firstErr = b.firstErr
	}
}

// phase sends requests from .. to-1 with cfg.Concurrency workers until
// they are sent or end passes (hitEnd). A zero end means no time limit.
func (r *runner) phase(ctx context.Context, from, to int, end time.Time, measure bool) (st phaseStats, hitEnd bool, err error) {
	var (
		next    atomic.Int64
		late    atomic.Bool
		mu      sync.Mutex
		wg      sync.WaitGroup
		failure error
	)
	st.status = map[int]int{}
	start := time.Now()
	for range r.cfg.Concurrency {
		wg.Go(func() {
			mine := phaseStats{status: map[int]int{}}
			defer func() {
				mu.Lock()
				st.merge(&mine)
				mu.Unlock()
			}()
			snd := r.sender(ctx)
			defer snd.close()
			for ctx.Err() == nil {
				i := from + int(next.Add(1)-1)
				if i >= to {
					return
				}
				due := time.Now()
				if measure && r.cfg.Rate > 0 {
					due = start.Add(time.Duration(float64(i-from) / r.cfg.Rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(d):
						}
					}
				}
				if !end.IsZero() && time.Now().After(end) {
					late.Store(true)
					return
				}
				if err := snd.prepare(ctx, i); err != nil {
					mu.Lock()
					failure = errors.Join(failure, err)
					mu.Unlock()
					return
				}
				sent := time.Now()
				if !measure || r.cfg.Rate == 0 {
					due = sent
				}
				status, body, err := snd.send()
				mine.lat = append(mine.lat, time.Since(due))
				if err != nil {
					mine.transport++
					if mine.firstErr == "" {
						mine.firstErr = err.Error()
					}
					continue
				}
				mine.status[status]++
				ok, restarted := r.check(status, body)
				switch {
				case ok:
					mine.ok++
				case status/100 == 2:
					mine.bad++
				}
				if restarted {
					mine.restarts++
				}
				if !ok && mine.firstErr == "" {
					mine.firstErr = strconv.Itoa(status) + ": " + truncate(string(body), 300)
				}
			}
		})
	}
	wg.Wait()
	if failure != nil {
		return st, false, failure
	}
	return st, late.Load(), nil
}

// sender sends one worker's requests.
type sender interface {
	// prepare builds request i; an error ends the phase.
	prepare(ctx context.Context, i int) error
	// send sends the request prepared and reads the answer, whose body is
	// valid until the next call; an error is a transport error.
	send() (status int, body []byte, err error)
	close()
}

// sender returns a worker's sender: its own wire connection, or the
// shared net/http client.
func (r *runner) sender(ctx context.Context) sender {
	if r.client != nil {
		return &httpSender{r: r}
	}
	return &wireSender{r: r, conn: newWireConn(ctx, r.ep.addr)}
}

// httpSender sends with net/http.
type httpSender struct {
	r   *runner
	req *http.Request
	buf bytes.Buffer
}

func (s *httpSender) prepare(ctx context.Context, i int) (err error) {
	s.req, err = s.r.request(ctx, i)
	return err
}

func (s *httpSender) send() (int, []byte, error) {
	res, err := s.r.client.Do(s.req)
	if err != nil {
		return 0, nil, err
	}
	s.buf.Reset()
	_, err = s.buf.ReadFrom(res.Body)
	res.Body.Close()
	if err != nil {
		return 0, nil, err
	}
	return res.StatusCode, s.buf.Bytes(), nil
}

func (s *httpSender) close() {}

// wireSender sends serialized requests on a connection of its own.
type wireSender struct {
	r    *runner
	conn *wireConn
	buf  []byte // for requests serialized when sent
	req  []byte
}

func (s *wireSender) prepare(_ context.Context, i int) (err error) {
	s.req, err = s.r.wire(&s.buf, i)
	return err
}

func (s *wireSender) send() (int, []byte, error) { return s.conn.Do(s.req) }

func (s *wireSender) close() { s.conn.Close() }

// truncate shortens s to at most n bytes.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// mix64 is the SplitMix64 finalizer, to pick farms from request indexes.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
