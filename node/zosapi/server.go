package zosapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/httpserve"
	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/node/zosapi/api"
)

//go:embed openrpc.json
var openRPCDocument []byte

// OpenRPC returns the API's OpenRPC document.
func OpenRPC() json.RawMessage { return bytes.Clone(openRPCDocument) }

// Engine is what the API serves: the provisioning engine
// (*provisiond.Engine).
type Engine interface {
	Deploy(ctx context.Context, caller uint64, d gridtypes.Deployment) (gridtypes.Record, error)
	Update(ctx context.Context, caller uint64, d gridtypes.Deployment) (gridtypes.Record, error)
	Delete(ctx context.Context, caller, id uint64) (gridtypes.Record, error)
	Pause(ctx context.Context, caller, id uint64) (gridtypes.Record, error)
	Resume(ctx context.Context, caller, id uint64) (gridtypes.Record, error)
	Get(ctx context.Context, caller, id uint64) (gridtypes.Record, error)
	List(ctx context.Context, caller uint64) ([]gridtypes.Summary, error)
	Changes(ctx context.Context, caller, id uint64) ([]gridtypes.Change, error)
	Capacity(ctx context.Context) (gridtypes.CapacityReport, error)
	Statistics(ctx context.Context) (gridtypes.Statistics, error)
}

// TwinKeys is the key lookup of the API: auth.TwinKeys, plus Refresh to
// drop a cached key that a signature failed against (TwinKeyCache).
type TwinKeys interface {
	auth.TwinKeys
	Refresh(twinID uint64) bool
}

// Config configures a Server.
type Config struct {
	// Engine serves the calls. Required.
	Engine Engine
	// Keys looks up twins' keys. Required.
	Keys TwinKeys
	// Auth tunes request verification (nonce store, clock skew, ...);
	// its Keys, Now and Logger fields are set by the server.
	Auth auth.Config
	// NodeVersion is what node.version reports.
	NodeVersion string
	// NodeID and TwinID identify the node in node.version (0: unknown).
	NodeID, TwinID uint64
	// Interfaces lists the node's interfaces (SystemInterfaces when nil).
	Interfaces InterfaceLister
	// Registry receives the server's metrics (a new registry when nil).
	Registry *prometheus.Registry
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives request records (nil: discarded).
	Logger *slog.Logger
}

// Server is zos-api-light: JSON-RPC 2.0 over HTTP, every call signed by
// the caller's twin.
type Server struct {
	c        Config
	verifier *auth.Verifier
	methods  map[string]method
	rpc      *jsonrpc.Server
	log      *slog.Logger
	reg      *prometheus.Registry
	m        *httpserve.RPCMetrics
}

type method func(ctx context.Context, caller uint64, params json.RawMessage) (any, error)

// New returns a server for c.
func New(c Config) (*Server, error) {
	if c.Engine == nil || c.Keys == nil {
		return nil, errors.New("zosapi: Config.Engine and Keys are required")
	}
	c.Logger, c.Registry, c.Now = httpserve.Defaults(c.Logger, c.Registry, c.Now)
	if c.Interfaces == nil {
		c.Interfaces = SystemInterfaces{}
	}
	ac := c.Auth
	ac.Keys, ac.Now, ac.Logger = c.Keys, c.Now, c.Logger
	v, err := auth.NewVerifier(ac)
	if err != nil {
		return nil, err
	}
	s := &Server{c: c, verifier: v, log: c.Logger, reg: c.Registry}
	if s.m, err = newMetrics(c.Registry, c.Engine); err != nil {
		return nil, err
	}
	s.methods = s.methodTable()
	table := make(map[string]jsonrpc.Method, len(s.methods))
	for name, m := range s.methods {
		table[name] = func(ctx context.Context, params json.RawMessage) (any, error) {
			caller, _ := auth.CallerFrom(ctx)
			res, err := m(ctx, caller.TwinID, params)
			if err != nil && s.log.Enabled(ctx, slog.LevelDebug) {
				s.log.Debug("call", "method", name, "twin", caller.TwinID, "error", err)
			}
			return res, err
		}
	}
	s.rpc = &jsonrpc.Server{
		Methods: table,
		ErrorOf: errorOf,
		Observe: s.m.Observe,
		Now:     c.Now,
		Logger:  c.Logger,
	}
	return s, nil
}

// Registry is the registry of the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler serves the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	rpc := s.authenticate(s.rpc)
	mux.Handle("POST "+api.RPCPath, rpc)
	mux.Handle("POST "+api.RPCPathShort, rpc)
	mux.HandleFunc("GET "+api.OpenRPCPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openRPCDocument)
	})
	mux.Handle("GET "+api.MetricsPath, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return mux
}

// authenticate verifies the signature of every request before JSON-RPC
// sees it: failures are HTTP errors (401, 400, 413, ...) with a JSON body
// {"error": "..."}, as the auth package answers them. When a signature
// does not verify against a cached key old enough to be stale, the key is
// fetched again and the request verified once more: a twin whose key
// changed on the registrar gets through at once.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		note := &lookupNote{}
		r = r.WithContext(withLookupNote(r.Context(), note))
		caller, err := s.verifier.Verify(r)
		// The verifier reads the body only after the signature holds and
		// records the nonce only when everything holds, so verifying the
		// same request again is safe.
		if errors.Is(err, auth.ErrBadSignature) && note.found && s.c.Keys.Refresh(note.twin) {
			s.log.Info("signature failed with a cached key; fetched the key again", "twin", note.twin)
			caller, err = s.verifier.Verify(r)
		}
		if err != nil {
			status := auth.HTTPStatus(err)
			s.m.Refused(status)
			s.log.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "error", err)
			auth.WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithCaller(r.Context(), caller)))
	})
}

// decodeParams decodes by-name parameters strictly into v.
func decodeParams(params json.RawMessage, v any) error { return jsonrpc.DecodeParams(params, v) }

// errorOf maps an engine error to its JSON-RPC error. Internal failures
// get a generic message (the server logs the details).
func errorOf(err error) *jsonrpc.Error {
	var re *api.Error
	if errors.As(err, &re) {
		return (*jsonrpc.Error)(re)
	}
	var ve *gridtypes.ValidationError
	switch {
	case errors.As(err, &ve):
		return &jsonrpc.Error{Code: api.CodeInvalidParams, Message: err.Error(), Data: map[string]string{"field": ve.Field}}
	case errors.Is(err, gridtypes.ErrInvalid):
		return &jsonrpc.Error{Code: api.CodeInvalidParams, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrNotFound):
		return &jsonrpc.Error{Code: api.CodeNotFound, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrForbidden):
		return &jsonrpc.Error{Code: api.CodeForbidden, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrConflict):
		return &jsonrpc.Error{Code: api.CodeConflict, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrBusy):
		return &jsonrpc.Error{Code: api.CodeBusy, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrCapacity):
		return &jsonrpc.Error{Code: api.CodeCapacity, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrSignature):
		return &jsonrpc.Error{Code: api.CodeSignature, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrContract):
		return &jsonrpc.Error{Code: api.CodeContract, Message: err.Error()}
	}
	return &jsonrpc.Error{Code: api.CodeInternal, Message: "internal error"}
}

// invalidParams makes a CodeInvalidParams error.
func invalidParams(format string, args ...any) *api.Error {
	return &api.Error{Code: api.CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}
