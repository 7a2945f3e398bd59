// Package registrar is the grid4 registrar: the HTTP server where twins
// (accounts), farms and nodes are registered, nodes report their uptime and
// the approved ZOS version is published.
//
// It serves the public Grid v4 registrar API under /api/v1 and /v1 (same
// paths, field names, status codes and error shape, so existing nodes and
// SDKs work unchanged) and grid4's additions: farmer approval, uptime
// history, version history with test farms, an OpenAPI document, health
// checks and Prometheus metrics. See docs/registrar.md.
package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/internal/httpserve"
	"github.com/grid4/grid4/registrar/api"
	"github.com/grid4/grid4/registrar/explorer"
	"github.com/grid4/grid4/store"
)

// Deps are the registrar's dependencies.
type Deps struct {
	// Store persists everything. Required.
	Store Store
	// Logger receives structured logs (nil: discarded).
	Logger *slog.Logger
	// Metrics is the registry the collectors are registered on and /metrics
	// serves (nil: a new private registry).
	Metrics *prometheus.Registry
	// Now is the clock of every time-dependent behaviour (nil: time.Now).
	Now func() time.Time
}

// Server is the registrar HTTP server. Create it with New.
type Server struct {
	cfg      Config
	store    Store
	log      *slog.Logger
	now      func() time.Time
	metrics  *metrics
	verifier *auth.Verifier
	ipLimit  *rateLimiter
	twinLim  *rateLimiter
	sched    reportSchedule
	bill     billing
	nodes    *nodeCounter
	owners   *nodeOwners
	openapi  []byte
	docs     []byte
	promh    http.Handler
	explorer *explorer.Explorer
	handler  http.Handler
	// version is the last rendering of the current ZOS version (see
	// serveVersion).
	version atomic.Pointer[renderedVersion]
}

// nodeCountTTL is how long the fleet size used for the report interval is
// cached.
const nodeCountTTL = time.Minute

// New builds a registrar from its settings and dependencies. It does not
// start listening: use Handler, Serve or Run.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("registrar: %w", err)
	}
	if d.Store == nil {
		return nil, errors.New("registrar: Deps.Store is required")
	}
	d.Logger, d.Metrics, d.Now = httpserve.Defaults(d.Logger, d.Metrics, d.Now)
	m, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, fmt.Errorf("registrar: registering metrics: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		store:   d.Store,
		log:     d.Logger,
		now:     d.Now,
		metrics: m,
		ipLimit: newRateLimiter(cfg.RateIP, cfg.RateIPBurst, cfg.RateLimitKeys, d.Now),
		twinLim: newRateLimiter(cfg.RateTwin, cfg.RateTwinBurst, cfg.RateLimitKeys, d.Now),
		sched:   reportSchedule{base: cfg.ReportInterval, rate: cfg.ReportRate, multiple: cfg.OnlineMultiple},
		owners:  newNodeOwners(),
	}
	s.nodes = newNodeCounter(d.Store.CountNodes, d.Now, nodeCountTTL)
	keys := newKeyCache(d.Store, cfg.KeyCacheTTL, d.Now)
	keys.owners = s.owners
	s.verifier, err = auth.NewVerifier(auth.Config{
		Keys:              keys,
		Nonces:            storeNonces{d.Store},
		DisableLegacy:     !cfg.LegacyAuth,
		LegacyReplayGuard: cfg.LegacyReplayGuard,
		LegacyWindow:      cfg.LegacyWindow,
		ClockSkew:         cfg.ClockSkew,
		MaxValidity:       cfg.SignatureMaxValidity,
		MaxBodyBytes:      cfg.MaxBody,
		Now:               d.Now,
		Logger:            d.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("registrar: %w", err)
	}
	s.openapi = openAPIDocument
	s.docs, err = renderDocs(openAPIDocument)
	if err != nil {
		return nil, fmt.Errorf("registrar: rendering the docs page: %w", err)
	}
	s.promh = httpserve.MetricsHandler(d.Metrics, d.Logger)
	s.explorer, err = explorer.New(explorer.Deps{
		Store:        d.Store,
		OnlineCutoff: s.onlineCutoff,
		SetLiveness: func(n *api.Node, now time.Time, cutoff time.Duration) {
			setOnline(n, now, cutoff)
			setHealth(n, now, cutoff)
		},
		Now:    d.Now,
		Logger: d.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("registrar: %w", err)
	}
	s.handler = s.buildHandler()
	return s, nil
}

// Handler returns the registrar's HTTP handler (all routes).
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the configured address and serves until ctx is done, then
// shuts down gracefully (see Serve).
func (s *Server) Run(ctx context.Context) error {
	return httpserve.Run(ctx, s.cfg.Listen, "registrar", s.Serve)
}

// Serve serves on ln and runs the retention and billing loops until ctx
// is done. Then
// it stops accepting connections and waits up to the shutdown timeout for
// requests in flight. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := httpserve.NewServer(s.handler, 30*time.Second, 60*time.Second)
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	var loops sync.WaitGroup
	loops.Go(func() { s.RunMaintenance(loopCtx) })
	loops.Go(func() { s.runBilling(loopCtx) })
	go func() {
		// The explorer's first visitor need not wait for the grid's
		// counts (a failure is logged by the explorer and tried again
		// on the next visit).
		_ = s.explorer.WarmUp(loopCtx)
	}()
	s.log.Info("registrar listening", "addr", ln.Addr().String(), "legacy_auth", s.cfg.LegacyAuth, "admin_twins", s.cfg.AdminTwins)
	err := httpserve.Serve(ctx, srv, ln, s.cfg.ShutdownTimeout, s.log, "registrar")
	stopLoops()
	loops.Wait()
	return err
}

// noncePruneInterval is how often expired nonces are deleted at most.
// Every signed request v2 adds one and they expire within minutes: pruned
// only hourly, the table would hold an hour of requests and each insert
// would cost more as its index grows.
const noncePruneInterval = time.Minute

// RunMaintenance deletes uptime history and nodes' usage reports older
// than their retention (every prune interval) and expired nonces (every minute, or every prune
// interval if that is shorter), once at start and then periodically, until
// ctx is done. Serve runs it; call it yourself only when you use Handler
// alone.
func (s *Server) RunMaintenance(ctx context.Context) {
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	nt := time.NewTicker(min(s.cfg.PruneInterval, noncePruneInterval))
	defer nt.Stop()
	s.prune(ctx)
	s.refreshStatistics(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.pruneUptime(ctx)
			s.pruneUsage(ctx)
		case <-nt.C:
			s.pruneNonces(ctx)
			s.refreshStatistics(ctx)
		}
	}
}

// prune runs one round of every retention policy.
func (s *Server) prune(ctx context.Context) {
	s.pruneUptime(ctx)
	s.pruneUsage(ctx)
	s.pruneNonces(ctx)
}

// pruneUsage runs one round of the usage report retention policy.
func (s *Server) pruneUsage(ctx context.Context) {
	n, err := s.store.PruneUsage(ctx, s.now().Add(-s.cfg.UsageRetention))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("pruning usage reports", "error", err)
		}
		return
	}
	s.metrics.pruned.WithLabelValues("contract_usage").Add(float64(n))
}

// pruneUptime runs one round of the uptime retention policy. Several
// processes may prune the same database; the deletes are idempotent.
func (s *Server) pruneUptime(ctx context.Context) {
	n, err := s.store.PruneUptime(ctx, s.now().Add(-s.cfg.UptimeRetention))
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("pruning uptime history", "error", err)
		}
		return
	}
	s.metrics.pruned.WithLabelValues("uptime_sessions").Add(float64(n))
	if n > 0 {
		s.log.Info("pruned uptime history", "rows", n, "retention", flagvalue.FormatDuration(s.cfg.UptimeRetention))
	}
}

// refreshStatistics has the store analyze the tables that grew, so that
// the plans of its statements follow the size of the fleet (see
// store.RefreshStatistics).
func (s *Server) refreshStatistics(ctx context.Context) {
	rs, ok := s.store.(interface {
		RefreshStatistics(ctx context.Context) (string, error)
	})
	if !ok {
		return
	}
	tables, err := rs.RefreshStatistics(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("refreshing table statistics", "error", err)
	case tables != "":
		s.log.Info("analyzed grown tables", "tables", tables)
	}
}

// pruneNonces deletes the expired nonces.
func (s *Server) pruneNonces(ctx context.Context) {
	n, err := s.store.PruneNonces(ctx, s.now())
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("pruning nonces", "error", err)
		}
		return
	}
	s.metrics.pruned.WithLabelValues("nonces").Add(float64(n))
}

// handlerFunc is a route handler: it writes a success itself or returns an
// error, which the server answers as JSON (an *httpError with its status,
// anything else as 500).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one entry of the route table. Every API route is served under
// each of apiPrefixes; ops routes at the root.
type route struct {
	method string
	// path is relative to the API prefix (or absolute for ops routes),
	// in net/http.ServeMux pattern syntax.
	path string
	// auth requires a signed request (v2 or legacy X-Auth).
	auth bool
	// slash also serves path + "/" (the public registrar does for some
	// collection routes, and clients rely on it).
	slash bool
	// admin routes (setting the ZOS version) take a legacy X-Auth
	// challenge once whatever the body, and only with
	// Config.AdminLegacyAuth.
	admin bool
	// ops routes live at the root, are not rate limited and are logged at
	// debug level.
	ops bool
	// deferNonce: the handler keeps the signed request's nonce with its
	// write (auth.Policy.DeferNonce), saving a round trip to the store.
	deferNonce bool
	h          handlerFunc
}

// apiPrefixes returns the base paths of the API, both live on the public
// registrar and both used by clients.
func apiPrefixes() []string { return []string{"/api/v1", "/v1"} }

// routes is the route table: the single source of what is served, used to
// build the mux and, in tests, to check the OpenAPI document.
func (s *Server) routes() []route {
	return []route{
		{method: "POST", path: "/accounts", slash: true, h: s.createAccount},
		{method: "GET", path: "/accounts", slash: true, h: s.getAccount},
		{method: "PATCH", path: "/accounts/{twin_id}", auth: true, h: s.updateAccount},
		{method: "POST", path: "/accounts/{twin_id}/credit", auth: true, admin: true, h: s.credit},
		{method: "GET", path: "/accounts/{twin_id}/balance", auth: true, h: s.balance},
		{method: "GET", path: "/accounts/{twin_id}/ledger", auth: true, h: s.twinLedger},

		{method: "GET", path: "/farms", h: s.listFarms},
		{method: "GET", path: "/farms/{farm_id}", h: s.getFarm},
		{method: "POST", path: "/farms", slash: true, auth: true, h: s.createFarm},
		{method: "PATCH", path: "/farms/{farm_id}", auth: true, h: s.updateFarm},
		{method: "POST", path: "/farms/{farm_id}/approve", auth: true, h: s.approveNodes},
		{method: "POST", path: "/farms/{farm_id}/reject", auth: true, h: s.rejectNodes},
		{method: "GET", path: "/farms/{farm_id}/pricing", h: s.getPricing},
		{method: "PUT", path: "/farms/{farm_id}/pricing", auth: true, h: s.putPricing},
		{method: "GET", path: "/farms/{farm_id}/sla", h: s.getSLA},
		{method: "PUT", path: "/farms/{farm_id}/sla", auth: true, h: s.putSLA},
		{method: "GET", path: "/farms/{farm_id}/ledger", auth: true, h: s.farmLedger},

		{method: "GET", path: "/nodes", h: s.listNodes},
		{method: "GET", path: "/nodes/{node_id}", h: s.getNode},
		{method: "POST", path: "/nodes", auth: true, h: s.registerNode},
		{method: "PATCH", path: "/nodes/{node_id}", auth: true, h: s.updateNode},
		{method: "POST", path: "/nodes/{node_id}/uptime", auth: true, deferNonce: true, h: s.reportUptime},
		{method: "GET", path: "/nodes/{node_id}/uptime", h: s.uptimeHistory},
		{method: "POST", path: "/nodes/{node_id}/status", auth: true, h: s.reportStatus},
		{method: "GET", path: "/nodes/{node_id}/status", h: s.nodeStatus},
		{method: "GET", path: "/nodes/{node_id}/power", h: s.nodePower},
		{method: "PUT", path: "/nodes/{node_id}/power", auth: true, h: s.setNodePower},
		{method: "GET", path: "/nodes/{node_id}/contracts", h: s.nodeContracts},
		{method: "POST", path: "/nodes/{node_id}/usage", auth: true, h: s.reportUsage},

		{method: "POST", path: "/contracts", auth: true, h: s.createContract},
		{method: "GET", path: "/contracts", h: s.listContracts},
		{method: "GET", path: "/contracts/{contract_id}", h: s.getContract},
		{method: "PATCH", path: "/contracts/{contract_id}", auth: true, h: s.updateContract},
		{method: "DELETE", path: "/contracts/{contract_id}", auth: true, h: s.deleteContract},

		{method: "GET", path: "/zos/version", h: s.getZosVersionCompat},
		{method: "PUT", path: "/zos/version", auth: true, admin: true, h: s.setZosVersionCompat},
		{method: "GET", path: "/zos/versions/current", h: s.getZosVersion},
		{method: "GET", path: "/zos/versions", h: s.listZosVersions},
		{method: "POST", path: "/zos/versions", auth: true, admin: true, h: s.setZosVersion},

		{method: "GET", path: "/healthz", ops: true, h: s.healthz},
		{method: "GET", path: "/readyz", ops: true, h: s.readyz},
		{method: "GET", path: "/metrics", ops: true, h: s.serveMetrics},
		{method: "GET", path: "/openapi.json", ops: true, h: s.serveOpenAPI},
		{method: "GET", path: "/docs", ops: true, h: s.serveDocs},
	}
}

// servedRoute is one mux pattern and its metrics label.
type servedRoute struct {
	method, path string // path as registered (with prefix, maybe "/{$}")
	label        string // "METHOD /path" without prefix or slash variant
	r            route
}

// expand lists every pattern a route table is served under.
func expand(rs []route) []servedRoute {
	var out []servedRoute
	for _, r := range rs {
		label := r.method + " " + r.path
		if r.ops {
			out = append(out, servedRoute{r.method, r.path, label, r})
			continue
		}
		for _, p := range apiPrefixes() {
			out = append(out, servedRoute{r.method, p + r.path, label, r})
			if r.slash {
				out = append(out, servedRoute{r.method, p + r.path + "/{$}", label, r})
			}
		}
	}
	return out
}

// buildHandler registers the route table on a mux and wraps it with the
// server-wide middleware: panic recovery, metrics, logging, JSON 404/405.
func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	labels := map[string]string{}
	for _, sr := range expand(s.routes()) {
		pattern := sr.method + " " + sr.path
		mux.Handle(pattern, s.wrapRoute(sr.r))
		labels[pattern] = sr.label
	}
	// The explorer's pages: HTML for people, not API routes (not in
	// openapi.json, not under the API's prefixes), rate limited per IP
	// like the API.
	for _, er := range s.explorer.Routes() {
		h := er.Handler
		if !er.Asset {
			h = s.limitIP(h)
		}
		mux.Handle(er.Pattern, h)
		labels[er.Pattern] = "explorer " + er.Pattern
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		rec := &statusWriter{Recorder: httpserve.Recorder{ResponseWriter: w}}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler { // net/http's own sentinel: let it abort the connection
					panic(p)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if !rec.Wrote() {
					writeError(rec, http.StatusInternalServerError, "internal error")
				}
			}
			label, ok := labels[r.Pattern]
			switch {
			case ok:
			case r.Method == http.MethodOptions && rec.Status() == http.StatusNoContent:
				label = "CORS preflight"
			default:
				label = "unmatched"
			}
			elapsed := s.now().Sub(start)
			s.metrics.Observe(label, rec.Status(), elapsed)
			s.logRequest(r, rec, label, elapsed)
		}()
		if s.cors(rec, r) {
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			s.unmatched(rec, r, mux)
			return
		}
		mux.ServeHTTP(rec, r)
	})
}

// corsAllowHeaders are the request headers a browser may send: the body
// type and both authentication schemes.
const corsAllowHeaders = "Content-Type, X-Auth, Signature, Signature-Input, Content-Digest"

// cors adds the CORS headers for browser clients and answers preflight
// requests itself (they carry no credentials, so they must not reach the
// authentication). It reports whether the request was answered.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.CORSOrigin == "" || r.Header.Get("Origin") == "" {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", s.cfg.CORSOrigin)
	if s.cfg.CORSOrigin != "*" {
		h.Add("Vary", "Origin")
	}
	h.Set("Access-Control-Expose-Headers", "Retry-After, Accept-Signature, WWW-Authenticate")
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", "43200")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// unmatched answers a request no route matches with the mux's status (404,
// 405 with Allow, or a redirect for an unclean path) and a JSON body.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	status, header := httpserve.Probe(mux, r)
	switch status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", header.Get("Allow"))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, header.Get("Allow")))
	case http.StatusMovedPermanently, http.StatusPermanentRedirect, http.StatusTemporaryRedirect, http.StatusFound:
		w.Header().Set("Location", header.Get("Location"))
		writeError(w, status, "moved to "+header.Get("Location"))
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s; see /docs", r.Method, r.URL.Path))
	}
}

// wrapRoute applies the per-route middleware: body limit, rate limits,
// authentication, then the handler and its error answer.
func (s *Server) wrapRoute(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.ops {
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
			}
			if !s.allowIP(w, r) {
				return
			}
		}
		switch {
		case rt.auth:
			c, err := s.verifier.VerifyPolicy(r, s.authPolicy(rt))
			if err != nil {
				s.metrics.AuthFailures.WithLabelValues(authReason(err)).Inc()
				if auth.HTTPStatus(err) == http.StatusInternalServerError {
					s.log.Error("authentication back end failed", "path", r.URL.Path, "error", err)
				}
				auth.WriteError(w, err)
				return
			}
			if s.twinLim != nil {
				if ok, wait := s.twinLim.allow(strconv.FormatUint(c.TwinID, 10)); !ok {
					s.metrics.rateLimited.WithLabelValues("twin").Inc()
					writeHTTPError(w, tooManyRequests("twin", wait))
					return
				}
			}
			r = r.WithContext(auth.WithCaller(r.Context(), c))
			if sw, ok := w.(*statusWriter); ok {
				sw.twin = c.TwinID
			}
		case !rt.ops && auth.HasCredentials(r):
			// A route that needs no credentials still checks those it is
			// given: a client that signs every request learns at once
			// that its key or clock is wrong, rather than when it first
			// writes. Nothing is recorded against replay (ReadOnly): the
			// credentials grant nothing here.
			c, err := s.verifier.VerifyPolicy(r, auth.Policy{ReadOnly: true})
			if err != nil {
				s.metrics.AuthFailures.WithLabelValues(authReason(err)).Inc()
				auth.WriteError(w, err)
				return
			}
			r = r.WithContext(auth.WithCaller(r.Context(), c))
		}
		if err := rt.h(w, r); err != nil {
			s.answerError(w, r, err)
		}
	})
}

// allowIP applies the per-IP rate limit, answering 429 itself when the
// client is over it.
func (s *Server) allowIP(w http.ResponseWriter, r *http.Request) bool {
	if s.ipLimit == nil {
		return true
	}
	if ok, wait := s.ipLimit.allow(ipKey(s.requestIP(w, r))); !ok {
		s.metrics.rateLimited.WithLabelValues("ip").Inc()
		writeHTTPError(w, tooManyRequests("IP address", wait))
		return false
	}
	return true
}

// limitIP is h behind the per-IP rate limit.
func (s *Server) limitIP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.allowIP(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// authPolicy is how a route verifies its signed requests.
func (s *Server) authPolicy(rt route) auth.Policy {
	if !rt.admin {
		return auth.Policy{DeferNonce: rt.deferNonce}
	}
	return auth.Policy{NoLegacy: !s.cfg.AdminLegacyAuth, LegacyOnce: true}
}

// answerError writes a handler's error: its own status for *httpError,
// 500 with a generic message (and a log record) otherwise.
func (s *Server) answerError(w http.ResponseWriter, r *http.Request, err error) {
	if he, ok := asHTTPError(err); ok {
		writeHTTPError(w, he)
		return
	}
	if errors.Is(err, auth.ErrReplay) {
		// A nonce the handler kept with its write (route.deferNonce):
		// answered as the verifier answers a replay.
		s.metrics.AuthFailures.WithLabelValues(authReason(err)).Inc()
		auth.WriteError(w, err)
		return
	}
	if errors.Is(err, store.ErrInvalid) {
		// The store refused a value the validation let through: still the
		// client's input, so a 400, but worth a look.
		s.log.Warn("store refused a validated value", "method", r.Method, "path", r.URL.Path, "error", err)
		writeError(w, http.StatusBadRequest, "invalid value: "+err.Error())
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		writeError(w, 499, "request canceled")
		return
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

// requestIP is clientIP, found once per request: the rate limit and the
// log record both need it. w is the request's *statusWriter, where it is
// kept.
func (s *Server) requestIP(w http.ResponseWriter, r *http.Request) netip.Addr {
	sw, ok := w.(*statusWriter)
	if !ok {
		return s.clientIP(r)
	}
	if !sw.ipKnown {
		sw.ip, sw.ipKnown = s.clientIP(r), true
	}
	return sw.ip
}

// clientIP is the peer address, or for a trusted proxy the right-most
// untrusted address of X-Forwarded-For.
func (s *Server) clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	peer = peer.Unmap()
	if !s.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a
		}
	}
	return peer
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// logRequest writes one structured record per request; ops routes at debug
// level so health checks and scrapes do not flood the log.
func (s *Server) logRequest(r *http.Request, rec *statusWriter, route string, d time.Duration) {
	level := slog.LevelInfo
	if strings.HasPrefix(route, "GET /healthz") || strings.HasPrefix(route, "GET /readyz") || strings.HasPrefix(route, "GET /metrics") {
		level = slog.LevelDebug
	}
	// The record goes to the handler directly: Logger.LogAttrs would also
	// walk the stack for the caller's position, which no record of this
	// server shows, on every request.
	h := s.log.Handler()
	if !h.Enabled(r.Context(), level) {
		return
	}
	rc := slog.NewRecord(time.Now(), level, "request", 0)
	rc.AddAttrs(
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.Int("status", rec.Status()),
		slog.Int64("bytes", rec.Bytes()),
		slog.Duration("duration", d),
		slog.String("remote", s.requestIP(rec, r).String()),
	)
	if rec.twin != 0 {
		rc.AddAttrs(slog.Uint64("twin", rec.twin))
	}
	_ = h.Handle(r.Context(), rc)
}

// statusWriter records the answer to a request and, for the log, the
// twin that signed it.
type statusWriter struct {
	httpserve.Recorder
	twin    uint64
	ip      netip.Addr // see requestIP
	ipKnown bool
}

// Ops routes.

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "store unreachable")
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.interval.Set(s.sched.interval(s.nodes.get(r.Context())).Seconds())
	s.promh.ServeHTTP(w, r)
	return nil
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(s.openapi)
	return nil
}

func (s *Server) serveDocs(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(s.docs)
	return nil
}
