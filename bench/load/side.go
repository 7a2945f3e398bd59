package load

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
)

// Side by side: two registrars, each reached only through its URL, get
// the same fleet seeded through the public API (POST /accounts, /farms,
// /nodes with legacy X-Auth, which every Grid v4 registrar speaks) and
// then the same request mixes, alternately, round after round. Given the
// registrar's PID and its PostgreSQL database, each run also measures the
// CPU the registrar and its database backends spent per request.

// Routes of a side-by-side run.
const (
	// RouteUptime: POST /api/v1/nodes/{id}/uptime, legacy-signed by the
	// node's twin, nodes in a random order.
	RouteUptime = "uptime"
	// RouteList: GET /api/v1/nodes?farm_id=F&size=50, random farms.
	RouteList = "list"
	// RouteVersion: GET /api/v1/zos/version.
	RouteVersion = "version"
)

// Target is one registrar of a side-by-side run.
type Target struct {
	// Name labels it in the results.
	Name string `json:"name"`
	// URL is its base URL, http://127.0.0.1:PORT (loopback only).
	URL string `json:"url"`
	// PID is its process (0: unknown, no registrar CPU figures).
	PID int `json:"pid,omitempty"`
	// DB is its PostgreSQL database, postgres://... ("": no database CPU
	// figures). Its backends' CPU is read from /proc, so the database
	// must run on this machine.
	DB string `json:"-"`
}

// Mix is one request mix: a route and how many requests are in flight.
type Mix struct {
	Route       string `json:"route"`
	Concurrency int    `json:"concurrency"`
}

// String is "route:concurrency".
func (m Mix) String() string { return m.Route + ":" + strconv.Itoa(m.Concurrency) }

// ParseMixes parses "uptime:32,list:1,list:8,version:8".
func ParseMixes(s string) ([]Mix, error) {
	var out []Mix
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		route, c, ok := strings.Cut(f, ":")
		n, err := strconv.Atoi(c)
		if !ok || err != nil || n < 1 {
			return nil, fmt.Errorf("load: mix %q: want route:concurrency, e.g. list:8", f)
		}
		if route != RouteUptime && route != RouteList && route != RouteVersion {
			return nil, fmt.Errorf("load: mix %q: route %q: want %s, %s or %s", f, route, RouteUptime, RouteList, RouteVersion)
		}
		out = append(out, Mix{Route: route, Concurrency: n})
	}
	if len(out) == 0 {
		return nil, errors.New("load: no request mix")
	}
	return out, nil
}

// SideConfig describes a side-by-side comparison.
type SideConfig struct {
	Targets []Target
	// Nodes and Farms: the fleet seeded on each target (nodes spread
	// evenly over the farms).
	Nodes, Farms int
	Mixes        []Mix
	// Rounds: each round runs every mix on every target once, the
	// targets' order alternating from round to round.
	Rounds int
	// Duration bounds each run; Warmup runs before it, not measured.
	Duration, Warmup time.Duration
	// MaxUptime bounds the uptime reports of one run (they are signed
	// before the run, so that signing takes no CPU during it).
	MaxUptime int
	// SeedConcurrency is the number of seeding requests in flight.
	SeedConcurrency int
	// NetHTTP sends the measured requests with net/http's client instead
	// of the load generator's own (wire.go), which costs less CPU per
	// request; for comparison.
	NetHTTP bool
	Logger  *slog.Logger
}

// SideRun is one measured run of a mix on a target.
type SideRun struct {
	Target string `json:"target"`
	Mix    Mix    `json:"mix"`
	Round  int    `json:"round"`
	Result Result `json:"result"`
}

// sideFleet is the fleet as one target knows it.
type sideFleet struct {
	nodes []uint64 // node id of node index i
	twins []uint64 // twin id of node index i
	farms []uint64
}

// Side runs a side-by-side comparison and returns every run.
func Side(ctx context.Context, cfg SideConfig) ([]SideRun, error) {
	if len(cfg.Targets) == 0 || cfg.Nodes < 1 || cfg.Farms < 1 || cfg.Farms > cfg.Nodes || cfg.Rounds < 1 || len(cfg.Mixes) == 0 {
		return nil, errors.New("load: side by side: need targets, nodes ≥ farms ≥ 1, rounds ≥ 1 and mixes")
	}
	for _, t := range cfg.Targets {
		if err := CheckLoopback(t.URL); err != nil {
			return nil, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.SeedConcurrency = max(cfg.SeedConcurrency, 1)
	keysOf, err := sideKeys(ctx, cfg.Nodes)
	if err != nil {
		return nil, err
	}
	fleets := make([]*sideFleet, len(cfg.Targets))
	for i, t := range cfg.Targets {
		start := time.Now()
		cfg.Logger.Info("seeding through the API", "target", t.Name, "nodes", cfg.Nodes, "farms", cfg.Farms)
		s := &seeder{base: strings.TrimSuffix(t.URL, "/"), client: newClient(cfg.SeedConcurrency), keys: keysOf, conc: cfg.SeedConcurrency}
		if fleets[i], err = s.seed(ctx, cfg.Nodes, cfg.Farms); err != nil {
			return nil, fmt.Errorf("load: seeding %s: %w", t.Name, err)
		}
		cfg.Logger.Info("seeded", "target", t.Name, "elapsed", time.Since(start).Round(time.Millisecond))
	}
	// Every node reports uptime once a round and target: a node's reports
	// claim one second more each time (sequence), so that its uptime never
	// goes down (a restart) and no two reports are equal (a replay).
	seq := make([][]int64, len(cfg.Targets))
	for i := range seq {
		seq[i] = make([]int64, cfg.Nodes)
	}
	var runs []SideRun
	for round := 1; round <= cfg.Rounds; round++ {
		for _, mix := range cfg.Mixes {
			order := make([]int, len(cfg.Targets))
			for i := range order {
				order[i] = (i + round - 1) % len(cfg.Targets) // alternate who goes first
			}
			for _, ti := range order {
				t := cfg.Targets[ti]
				res, err := sideRun(ctx, cfg, t, fleets[ti], keysOf, seq[ti], mix, uint64(round*1000+ti))
				if err != nil {
					return runs, fmt.Errorf("load: %s on %s: %w", mix, t.Name, err)
				}
				cfg.Logger.Info("run", "round", round, "mix", mix.String(), "target", t.Name,
					"req/s", int(res.Throughput), "ok", res.OK, "requests", res.Requests)
				runs = append(runs, SideRun{Target: t.Name, Mix: mix, Round: round, Result: res})
				if ctx.Err() != nil {
					return runs, ctx.Err()
				}
			}
		}
	}
	return runs, nil
}

// sideKeys derives the fleet's node keys, on every CPU.
func sideKeys(ctx context.Context, n int) ([]keys.KeyPair, error) {
	ks := make([]keys.KeyPair, n)
	err := onEveryCPU(ctx, n, "deriving keys", func(i int) (err error) {
		ks[i], err = NodeKey(i)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ks, nil
}

// sideRun measures one mix on one target.
func sideRun(ctx context.Context, cfg SideConfig, t Target, f *sideFleet, ks []keys.KeyPair, seq []int64, mix Mix, seed uint64) (Result, error) {
	base := strings.TrimSuffix(t.URL, "/")
	ep, err := parseEndpoint(base)
	if err != nil {
		return Result{}, err
	}
	r := &runner{cfg: RunConfig{Concurrency: mix.Concurrency}, ep: ep}
	if cfg.NetHTTP {
		r.client = newClient(mix.Concurrency)
		defer r.client.CloseIdleConnections()
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	total := unbounded
	switch mix.Route {
	case RouteUptime:
		total = cfg.MaxUptime
		signed, err := presignUptime(ctx, ep, f, ks, seq, rng, total)
		if err != nil {
			return Result{}, err
		}
		r.wire = func(_ *[]byte, i int) ([]byte, error) { return signed[i].wire, nil }
		r.build = func(ctx context.Context, i int) (*http.Request, error) {
			s := signed[i]
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+s.path, bytes.NewReader(s.body))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(auth.HeaderXAuth, s.header[1])
			return req, nil
		}
		r.verify = func(status int, _ []byte) bool { return status == http.StatusCreated }
	case RouteList:
		farmSeed := rng.Uint64()
		target := func(k int) string { return "/api/v1/nodes?farm_id=" + strconv.FormatUint(f.farms[k], 10) + "&size=50" }
		pick := func(i int) int { return int(mix64(farmSeed^uint64(i)) % uint64(len(f.farms))) }
		lists := make([][]byte, len(f.farms))
		for k := range lists {
			lists[k] = ep.appendRequest(nil, http.MethodGet, target(k), nil, nil)
		}
		r.wire = func(_ *[]byte, i int) ([]byte, error) { return lists[pick(i)], nil }
		r.build = func(ctx context.Context, i int) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, base+target(pick(i)), nil)
		}
		r.verify = func(status int, body []byte) bool {
			return status == http.StatusOK && bytes.HasPrefix(body, []byte(`[{"`))
		}
	case RouteVersion:
		get := ep.appendRequest(nil, http.MethodGet, "/api/v1/zos/version", nil, nil)
		r.wire = func(*[]byte, int) ([]byte, error) { return get, nil }
		r.build = func(ctx context.Context, _ int) (*http.Request, error) {
			return http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/zos/version", nil)
		}
		r.verify = func(status int, body []byte) bool { return status == http.StatusOK && len(body) > 2 }
	}
	probe, err := NewProbe(ctx, t.PID, t.DB)
	if err != nil {
		return Result{}, err
	}
	defer probe.Close()
	res := Result{Name: t.Name, Scenario: mix.Route, Nodes: len(f.nodes), Farms: len(f.farms), Concurrency: mix.Concurrency}
	// Warm-up: its requests take indexes from the front, the measured
	// phase the rest. Its requests are counted in res.Warmup, and the CPU
	// probe starts after it.
	next := 0
	if cfg.Warmup > 0 {
		if _, _, err := r.phaseFrom(ctx, &next, total, time.Now().Add(cfg.Warmup)); err != nil {
			return res, err
		}
	}
	if err := probe.Start(ctx); err != nil {
		return res, err
	}
	cpu0 := selfCPU()
	start := time.Now()
	st, hitEnd, err := r.phaseFrom(ctx, &next, total, start.Add(cfg.Duration))
	if err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.ClientCPUSeconds = (selfCPU() - cpu0).Seconds()
	if err := probe.Finish(ctx, &res); err != nil {
		return res, err
	}
	res.Stop = StopCount
	if hitEnd {
		res.Stop = StopDuration
	}
	res.Requests = len(st.lat)
	res.OK, res.Status, res.TransportErrors = st.ok, st.status, st.transport
	res.BadBodies, res.FirstError = st.bad, st.firstErr
	res.ElapsedSeconds = elapsed.Seconds()
	res.Throughput = float64(res.Requests) / elapsed.Seconds()
	res.Latency, res.Histogram = summarize(st.lat)
	return res, nil
}

// unbounded is the request count of a run of a route that needs no
// preparation: the run ends by its duration.
const unbounded = 1 << 31

// phaseFrom runs requests *next .. to-1 until end, and advances *next
// past the ones it sent.
func (r *runner) phaseFrom(ctx context.Context, next *int, to int, end time.Time) (phaseStats, bool, error) {
	st, hitEnd, err := r.phase(ctx, *next, to, end, true)
	*next += len(st.lat)
	return st, hitEnd, err
}

// presignUptime signs n legacy uptime reports for nodes in a random
// order, now, on every CPU, and serializes them for ep.
func presignUptime(ctx context.Context, ep wireEndpoint, f *sideFleet, ks []keys.KeyPair, seq []int64, rng *rand.Rand, n int) ([]signedReport, error) {
	perm := rng.Perm(len(f.nodes))
	at := time.Now()
	upBase := at.Unix() - FleetBoot().Unix()
	out := make([]signedReport, n)
	// The sequence numbers are taken in request order, before signing in
	// parallel, so that a node's reports claim more uptime in the order
	// they are sent.
	ups := make([]int64, n)
	for i := range n {
		idx := perm[i%len(perm)]
		seq[idx]++
		ups[i] = upBase + seq[idx]
	}
	err := onEveryCPU(ctx, n, "presigning", func(i int) error {
		idx := perm[i%len(perm)]
		h, err := auth.SignLegacy(ks[idx], f.twins[idx], at)
		if err != nil {
			return err
		}
		s := signedReport{
			path:   "/api/v1/nodes/" + strconv.FormatUint(f.nodes[idx], 10) + "/uptime",
			body:   []byte(`{"uptime":` + strconv.FormatInt(ups[i], 10) + `,"timestamp":` + strconv.FormatInt(at.Unix(), 10) + `}`),
			header: []string{auth.HeaderXAuth, h},
		}
		s.wire = ep.appendRequest(nil, http.MethodPost, s.path, s.header, s.body)
		out[i] = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// seeder creates a fleet through a registrar's public API.
type seeder struct {
	base   string
	client *http.Client
	keys   []keys.KeyPair
	conc   int
	// v2 signs with signed requests v2 instead of X-Auth (only while
	// setting the version, before the concurrent part of seeding).
	v2 bool
}

// benchStellar is a valid Stellar address (checksum included) for the
// farms: the public registrar requires one.
const benchStellar = "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ"

// BenchVersion is the ZOS version the side-by-side seeding sets when the
// registrar has none.
const BenchVersion = "v4.1.0"

// AdminKey returns the key of the side-by-side admin account: the first
// account seeded, so that on a fresh registrar it is twin 1 (the public
// registrar's default admin; start grid4 with --admin-twin 1).
func AdminKey() (keys.KeyPair, error) { return derivedKey("grid4 bench admin") }

// keyAccount derives a key with derive and makes sure the registrar holds
// its account; what names the account in the error.
func (s *seeder) keyAccount(ctx context.Context, derive func() (keys.KeyPair, error), what string) (keys.KeyPair, uint64, error) {
	kp, err := derive()
	if err != nil {
		return nil, 0, err
	}
	twin, err := s.account(ctx, kp)
	if err != nil {
		return nil, 0, fmt.Errorf("%s account: %w", what, err)
	}
	return kp, twin, nil
}

// seed makes sure the registrar holds the admin, the farmer, farms farms
// and nodes nodes (each with its own twin), each node having reported once,
// and a ZOS version; it reuses what an earlier seeding created.
func (s *seeder) seed(ctx context.Context, nodes, farms int) (*sideFleet, error) {
	admin, adminTwin, err := s.keyAccount(ctx, AdminKey, "admin")
	if err != nil {
		return nil, err
	}
	if err := s.version(ctx, admin, adminTwin); err != nil {
		return nil, err
	}
	farmer, farmerTwin, err := s.keyAccount(ctx, FarmerKey, "farmer")
	if err != nil {
		return nil, err
	}
	f := &sideFleet{nodes: make([]uint64, nodes), twins: make([]uint64, nodes)}
	for k := range farms {
		id, err := s.farm(ctx, farmer, farmerTwin, "sbs"+strconv.Itoa(k))
		if err != nil {
			return nil, fmt.Errorf("farm %d: %w", k, err)
		}
		f.farms = append(f.farms, id)
	}
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range s.conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= nodes {
					return
				}
				if err := s.node(ctx, f, i, f.farms[i*farms/nodes]); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("node %d: %w", i, err))
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, ctx.Err()
}

// node creates (or finds) node i's account and node in farm, and sends
// its first uptime report when it is new.
func (s *seeder) node(ctx context.Context, f *sideFleet, i int, farm uint64) error {
	k := s.keys[i]
	twin, err := s.account(ctx, k)
	if err != nil {
		return err
	}
	f.twins[i] = twin
	var found []struct {
		NodeID uint64 `json:"node_id"`
	}
	if err := s.call(ctx, http.MethodGet, "/api/v1/nodes?twin_id="+strconv.FormatUint(twin, 10), nil, nil, 0, http.StatusOK, &found); err != nil {
		return err
	}
	if len(found) > 0 {
		f.nodes[i] = found[0].NodeID
		return nil
	}
	body := map[string]any{
		"twin_id": twin, "farm_id": farm,
		"resources": map[string]any{"hru": 4 << 40, "sru": 1 << 40, "cru": 16, "mru": 64 << 30},
		"location":  map[string]any{"country": "Belgium", "city": "Ghent", "longitude": "3.72", "latitude": "51.05"},
		"interfaces": []map[string]any{{"name": "eth0", "mac": fmt.Sprintf("52:54:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff),
			"ips": []string{"10.0.0.2/24", "2001:db8::2/64"}}},
		"secure_boot": true, "virtualized": false, "serial_number": "SN-" + strconv.Itoa(i),
	}
	var created struct {
		NodeID uint64 `json:"node_id"`
	}
	if err := s.call(ctx, http.MethodPost, "/api/v1/nodes", body, k, twin, http.StatusCreated, &created); err != nil {
		return err
	}
	f.nodes[i] = created.NodeID
	// The first report: a node reports as soon as it is registered, and
	// the measured reports are then those of a running node.
	now := time.Now()
	up := map[string]any{"uptime": now.Unix() - FleetBoot().Unix(), "timestamp": now.Unix()}
	return s.call(ctx, http.MethodPost, "/api/v1/nodes/"+strconv.FormatUint(created.NodeID, 10)+"/uptime", up, k, twin, http.StatusCreated, nil)
}

// account creates k's account, or finds it when it exists, and returns
// its twin id.
func (s *seeder) account(ctx context.Context, k keys.KeyPair) (uint64, error) {
	sig, err := auth.SignAccount(k, time.Now())
	if err != nil {
		return 0, err
	}
	var acc struct {
		TwinID uint64 `json:"twin_id"`
	}
	status, raw, err := s.send(ctx, http.MethodPost, "/api/v1/accounts",
		map[string]any{"timestamp": sig.Timestamp, "public_key": sig.PublicKey, "signature": sig.Signature}, nil, 0)
	switch {
	case err != nil:
		return 0, err
	case status == http.StatusCreated:
		if err := json.Unmarshal(raw, &acc); err != nil || acc.TwinID == 0 {
			return 0, fmt.Errorf("POST /accounts: answer %s (%v)", truncate(string(raw), 200), err)
		}
		return acc.TwinID, nil
	}
	// 409 when the key has an account (the public registrar answers 500
	// then): look it up.
	pub := base64.StdEncoding.EncodeToString(k.Public().Key)
	if err := s.call(ctx, http.MethodGet, "/api/v1/accounts?public_key="+url.QueryEscape(pub), nil, nil, 0, 0, &acc); err != nil || acc.TwinID == 0 {
		return 0, fmt.Errorf("POST /accounts: %d %s, and no account found (%v)", status, truncate(string(raw), 200), err)
	}
	return acc.TwinID, nil
}

// farm creates (or finds) the farmer's farm named name.
func (s *seeder) farm(ctx context.Context, k keys.KeyPair, twin uint64, name string) (uint64, error) {
	var found []struct {
		FarmID   uint64 `json:"farm_id"`
		FarmName string `json:"farm_name"`
	}
	if err := s.call(ctx, http.MethodGet, "/api/v1/farms?farm_name="+name, nil, nil, 0, http.StatusOK, &found); err != nil {
		return 0, err
	}
	for _, f := range found {
		if strings.EqualFold(f.FarmName, name) {
			return f.FarmID, nil
		}
	}
	var created struct {
		FarmID uint64 `json:"farm_id"`
	}
	body := map[string]any{"farm_name": name, "twin_id": twin, "dedicated": false, "stellar_address": benchStellar}
	if err := s.call(ctx, http.MethodPost, "/api/v1/farms", body, k, twin, http.StatusCreated, &created); err != nil {
		return 0, err
	}
	return created.FarmID, nil
}

// version sets BenchVersion as the ZOS version (PUT /zos/version, the
// public form) unless one is set.
func (s *seeder) version(ctx context.Context, admin keys.KeyPair, twin uint64) error {
	status, _, err := s.send(ctx, http.MethodGet, "/api/v1/zos/version", nil, nil, 0)
	if err != nil || status == http.StatusOK {
		return err
	}
	v, _ := json.Marshal(map[string]any{"version": BenchVersion, "safe_to_upgrade": true})
	body := map[string]any{"version": base64.StdEncoding.EncodeToString(v)}
	err = s.call(ctx, http.MethodPut, "/api/v1/zos/version", body, admin, twin, http.StatusOK, nil)
	if err != nil {
		// A registrar may refuse X-Auth for admins (grid4 does by
		// default): sign with signed requests v2 instead.
		s.v2 = true
		err = s.call(ctx, http.MethodPut, "/api/v1/zos/version", body, admin, twin, http.StatusOK, nil)
		s.v2 = false
	}
	if err != nil {
		return fmt.Errorf("setting the ZOS version as twin %d (the first account seeded; start the registrar with that admin twin): %w", twin, err)
	}
	return nil
}

// call sends a request and decodes the answer into out (nil: ignored);
// want 0 accepts any 2xx.
func (s *seeder) call(ctx context.Context, method, path string, body any, k keys.KeyPair, twin uint64, want int, out any) error {
	status, raw, err := s.send(ctx, method, path, body, k, twin)
	if err != nil {
		return err
	}
	if (want != 0 && status != want) || (want == 0 && status/100 != 2) {
		return fmt.Errorf("%s %s: %d %s", method, path, status, truncate(string(raw), 300))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: answer %s: %w", method, path, truncate(string(raw), 200), err)
		}
	}
	return nil
}

// send sends a request, legacy-signed by k as twin when k is not nil.
func (s *seeder) send(ctx context.Context, method, path string, body any, k keys.KeyPair, twin uint64) (int, []byte, error) {
	var (
		rd  io.Reader
		raw []byte
	)
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if k != nil && s.v2 {
		signer := auth.Signer{Key: k, TwinID: twin, Validity: time.Minute}
		if err := signer.Sign(req, raw); err != nil {
			return 0, nil, err
		}
	} else if k != nil {
		h, err := auth.SignLegacy(k, twin, time.Now())
		if err != nil {
			return 0, nil, err
		}
		req.Header.Set(auth.HeaderXAuth, h)
	}
	res, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	return res.StatusCode, out, err
}

// SideRow is the summary of one mix on one target over the rounds: the
// median of each figure.
type SideRow struct {
	Target     string
	Mix        Mix
	Runs       int
	Throughput float64
	P50, P99   float64
	ServerCPU  float64 // µs per request, 0 when unknown
	DBCPU      float64 // µs per request, 0 when unknown
	ClientCPU  float64 // the load generator's µs per request
	OK, Total  int
}

// Summarize reduces runs to one row per mix and target, medians over the
// rounds, in the order of mixes and targets.
func Summarize(runs []SideRun, mixes []Mix, targets []Target) []SideRow {
	var out []SideRow
	for _, m := range mixes {
		for _, t := range targets {
			row := SideRow{Target: t.Name, Mix: m}
			var tp, p50, p99, srv, db, cli []float64
			for _, r := range runs {
				if r.Target != t.Name || r.Mix != m {
					continue
				}
				row.Runs++
				row.OK += r.Result.OK
				row.Total += r.Result.Requests
				tp = append(tp, r.Result.Throughput)
				p50 = append(p50, r.Result.Latency.P50)
				p99 = append(p99, r.Result.Latency.P99)
				n := float64(r.Result.Requests)
				if n > 0 {
					srv = append(srv, r.Result.ServerCPUSeconds/n*1e6)
					db = append(db, r.Result.DBCPUSeconds/n*1e6)
					cli = append(cli, r.Result.ClientCPUPerRequest())
				}
			}
			row.Throughput, row.P50, row.P99 = median(tp), median(p50), median(p99)
			row.ServerCPU, row.DBCPU, row.ClientCPU = median(srv), median(db), median(cli)
			out = append(out, row)
		}
	}
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// WriteSide prints the rows as a Markdown table, with each target's
// throughput relative to the first target's.
func WriteSide(w io.Writer, rows []SideRow, targets []Target) error {
	var b strings.Builder
	b.WriteString("| route | in flight | registrar | req/s | × " + targets[0].Name + " | p50 ms | p99 ms | CPU µs/req registrar + db | ok | load generator µs/req |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	first := map[Mix]float64{}
	for _, r := range rows {
		if r.Target == targets[0].Name {
			first[r.Mix] = r.Throughput
		}
	}
	for _, r := range rows {
		ratio := "–"
		if f := first[r.Mix]; f > 0 {
			ratio = strconv.FormatFloat(r.Throughput/f, 'f', 2, 64)
		}
		cpu := "–"
		if r.ServerCPU > 0 || r.DBCPU > 0 {
			cpu = fmt.Sprintf("%.0f + %.0f", r.ServerCPU, r.DBCPU)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %.0f | %s | %.2f | %.2f | %s | %d/%d | %.0f |\n",
			r.Mix.Route, r.Mix.Concurrency, r.Target, r.Throughput, ratio, r.P50, r.P99, cpu, r.OK, r.Total, r.ClientCPU)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
