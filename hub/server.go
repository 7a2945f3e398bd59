package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/httpserve"
)

// Deps are the hub's dependencies besides its settings.
type Deps struct {
	// Logger receives structured logs (nil: discarded).
	Logger *slog.Logger
	// Metrics is the registry the collectors are registered on and
	// /metrics serves (nil: a new private registry).
	Metrics *prometheus.Registry
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// Server is the hub HTTP server. Create it with New.
type Server struct {
	cfg        Config
	log        *slog.Logger
	now        func() time.Time
	store      *storage
	metrics    *metrics
	verifier   *auth.Verifier
	publishers map[uint64]Publisher
	byName     map[string]Publisher
	promh      http.Handler
	handler    http.Handler
}

// maxTagBody bounds a PUT of a signed tag (document, signature, framing).
const maxTagBody = flist.MaxTagDocumentSize + 4096

// maxSmallBody bounds the other JSON request bodies (links).
const maxSmallBody = 64 << 10

// New builds a hub from its settings, opening (creating) the data
// directory. It does not listen: use Handler, Serve or Run.
func New(cfg Config, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	d.Logger, d.Metrics, d.Now = httpserve.Defaults(d.Logger, d.Metrics, d.Now)
	st, err := openStorage(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, fmt.Errorf("hub: registering metrics: %w", err)
	}
	s := &Server{
		cfg: cfg, log: d.Logger, now: d.Now, store: st, metrics: m,
		publishers: make(map[uint64]Publisher, len(cfg.Publishers)),
		byName:     make(map[string]Publisher, len(cfg.Publishers)),
	}
	for _, p := range cfg.Publishers {
		s.publishers[p.ID] = p
		s.byName[p.Name] = p
	}
	s.verifier, err = auth.NewVerifier(auth.Config{
		Keys:          auth.TwinKeysFunc(s.publisherKey),
		DisableLegacy: true,
		ClockSkew:     cfg.ClockSkew,
		MaxValidity:   cfg.SignatureMaxValidity,
		// Each route caps its own body below this (http.MaxBytesReader);
		// this is only the largest of them.
		MaxBodyBytes: max(cfg.MaxFlistSize, flist.MaxStoredBlockSize, maxTagBody),
		Now:          d.Now,
		Logger:       d.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	s.promh = httpserve.MetricsHandler(d.Metrics, d.Logger)
	s.handler = s.buildHandler()
	return s, nil
}

// publisherKey implements auth.TwinKeys over the publisher table: the
// keyid of a signed request is a publisher id.
func (s *Server) publisherKey(_ context.Context, id uint64) ([]byte, error) {
	p, ok := s.publishers[id]
	if !ok {
		return nil, fmt.Errorf("no publisher has id %d: %w", id, auth.ErrUnknownTwin)
	}
	return p.PublicKey, nil
}

// Handler returns the hub's HTTP handler (all routes).
func (s *Server) Handler() http.Handler { return s.handler }

// Run listens on the configured address and serves until ctx is done (see
// Serve).
func (s *Server) Run(ctx context.Context) error {
	return httpserve.Run(ctx, s.cfg.Listen, "hub", s.Serve)
}

// Serve serves on ln until ctx is done, then stops accepting connections
// and waits up to the shutdown timeout for requests in flight. It returns
// nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Generous timeouts: a large flist document from a slow link.
	srv := httpserve.NewServer(s.handler, 5*time.Minute, 5*time.Minute)
	names := make([]string, 0, len(s.cfg.Publishers))
	for _, p := range s.cfg.Publishers {
		names = append(names, p.Name)
	}
	s.log.Info("hub listening", "addr", ln.Addr().String(), "data_dir", s.cfg.DataDir, "publishers", names)
	return httpserve.Serve(ctx, srv, ln, s.cfg.ShutdownTimeout, s.log, "hub")
}

// handlerFunc handles a route: it writes a success itself or returns an
// error (an *httpError with its status, anything else a 500).
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// route is one entry of the route table.
type route struct {
	pattern string
	// auth requires a signed request from a publisher.
	auth bool
	// maxBody caps the request body (0: no body expected, 4 KiB cap).
	maxBody int64
	// quiet routes (health, metrics) log at debug level.
	quiet bool
	h     handlerFunc
}

func (s *Server) routes() []route {
	const repo = "/api/v1/repos/{publisher}/{repo}"
	return []route{
		{pattern: "GET /healthz", quiet: true, h: s.healthz},
		{pattern: "GET /metrics", quiet: true, h: s.serveMetrics},
		{pattern: "GET /api/v1/publishers", h: s.listPublishers},
		{pattern: "GET /api/v1/repos", h: s.listRepos},
		{pattern: "GET /api/v1/repos/{publisher}", h: s.listRepos},
		{pattern: "GET " + repo, h: s.getRepo},
		{pattern: "GET " + repo + "/flists/{name}", h: s.getFlistName},
		{pattern: "PUT " + repo + "/flists/{name}", auth: true, maxBody: s.cfg.MaxFlistSize, h: s.putFlist},
		{pattern: "DELETE " + repo + "/flists/{name}", auth: true, h: s.deleteFlistName},
		{pattern: "GET " + repo + "/tags/{tag}", h: s.getTag},
		{pattern: "PUT " + repo + "/tags/{tag}", auth: true, maxBody: maxTagBody, h: s.putTag},
		{pattern: "GET " + repo + "/links/{link}", h: s.getLink},
		{pattern: "PUT " + repo + "/links/{link}", auth: true, maxBody: maxSmallBody, h: s.putLink},
		{pattern: "DELETE " + repo + "/links/{link}", auth: true, h: s.deleteLink},
		{pattern: "GET /api/v1/flists/{id}", h: s.getFlistDocument},
		{pattern: "GET /api/v1/blocks/{id}", h: s.getBlock},
		{pattern: "PUT /api/v1/blocks/{id}", auth: true, maxBody: flist.MaxStoredBlockSize, h: s.putBlock},
		{pattern: "POST /api/v1/blocks/missing", maxBody: int64(s.cfg.MaxMissingQuery)*int64(2*len(flist.ID{})+4) + 1024, h: s.missingBlocks},
	}
}

// buildHandler registers the routes and wraps them with panic recovery,
// metrics, logging and JSON answers for unmatched requests.
func (s *Server) buildHandler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" {
			start := s.now()
			rec := httpserve.NewRecorder(w)
			s.unmatched(rec, r, mux)
			s.metrics.Observe("unmatched", rec.Status(), s.now().Sub(start))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// wrap adds to a route handler: body cap, authentication, error answers,
// panic recovery, metrics and a log line.
func (s *Server) wrap(rt route) http.Handler {
	limit := rt.maxBody
	if limit == 0 {
		limit = 4 << 10
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		rec := httpserve.NewRecorder(w)
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
				if !rec.Wrote() {
					writeError(rec, errorf(http.StatusInternalServerError, "internal error"))
				}
			}
			elapsed := s.now().Sub(start)
			s.metrics.Observe(rt.pattern, rec.Status(), elapsed)
			level := slog.LevelInfo
			if rt.quiet || (r.Method == http.MethodGet || r.Method == http.MethodHead) && rec.Status() < 400 {
				level = slog.LevelDebug
			}
			s.log.LogAttrs(r.Context(), level, "request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.Int("status", rec.Status()), slog.Duration("elapsed", elapsed), slog.String("remote", r.RemoteAddr))
		}()
		if r.Body != nil {
			r.Body = http.MaxBytesReader(rec, r.Body, limit)
		}
		if rt.auth {
			caller, err := s.verifier.Verify(r)
			if err != nil {
				s.metrics.AuthFailures.WithLabelValues(authReason(err)).Inc()
				s.log.Info("publishing request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "error", err.Error())
				auth.WriteError(rec, err)
				return
			}
			r = r.WithContext(withPublisher(r.Context(), s.publishers[caller.TwinID]))
		}
		err := rt.h(rec, r)
		if err == nil {
			return
		}
		var he *httpError
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &he):
		case errors.As(err, &mbe):
			he = errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", mbe.Limit)
		default:
			s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "error", err.Error())
			he = errorf(http.StatusInternalServerError, "internal error")
		}
		if rec.Wrote() {
			return
		}
		writeError(rec, he)
	})
}

// unmatched answers a request no route matches with the mux's status (404,
// or 405 with Allow) as JSON.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request, mux *http.ServeMux) {
	status, header := httpserve.Probe(mux, r)
	switch status {
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", header.Get("Allow"))
		writeError(w, errorf(http.StatusMethodNotAllowed, "method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, header.Get("Allow")))
	case http.StatusMovedPermanently, http.StatusPermanentRedirect, http.StatusTemporaryRedirect:
		w.Header().Set("Location", header.Get("Location"))
		writeError(w, errorf(status, "moved to %s", header.Get("Location")))
	default:
		writeError(w, errorf(http.StatusNotFound, "no such route: %s %s", r.Method, r.URL.Path))
	}
}

type ctxPublisherKey struct{}

func withPublisher(ctx context.Context, p Publisher) context.Context {
	return context.WithValue(ctx, ctxPublisherKey{}, p)
}

// publisherFrom returns the publisher that signed the request.
func publisherFrom(ctx context.Context) (Publisher, bool) {
	p, ok := ctx.Value(ctxPublisherKey{}).(Publisher)
	return p, ok
}
