package zosapi

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/httpserve"
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
	log      *slog.Logger
	reg      *prometheus.Registry
	m        metrics
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
	s.methods = s.methodTable()
	if err := s.m.register(c.Registry, c.Engine); err != nil {
		return nil, err
	}
	return s, nil
}

// Registry is the registry of the server's metrics.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handler serves the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	rpc := s.authenticate(http.HandlerFunc(s.serveRPC))
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
			s.m.authFailures.WithLabelValues(strconv.Itoa(status)).Inc()
			s.log.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "error", err)
			auth.WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithCaller(r.Context(), caller)))
	})
}

// serveRPC answers a JSON-RPC request or batch.
func (s *Server) serveRPC(w http.ResponseWriter, r *http.Request) {
	caller, _ := auth.CallerFrom(r.Context())
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the request", http.StatusBadRequest)
		return
	}
	body = bytes.TrimSpace(body)
	var out any
	if len(body) > 0 && body[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(body, &batch); err != nil {
			out = api.Response{JSONRPC: api.Version, ID: json.RawMessage("null"), Error: &api.Error{Code: api.CodeParseError, Message: "parse error: " + err.Error()}}
		} else if len(batch) == 0 {
			out = api.Response{JSONRPC: api.Version, ID: json.RawMessage("null"), Error: &api.Error{Code: api.CodeInvalidRequest, Message: "empty batch"}}
		} else {
			var resps []api.Response
			for _, item := range batch {
				if resp, ok := s.one(r.Context(), caller.TwinID, item); ok {
					resps = append(resps, resp)
				}
			}
			if resps != nil {
				out = resps
			}
		}
	} else if resp, ok := s.one(r.Context(), caller.TwinID, body); ok {
		out = resp
	}
	if out == nil {
		// Only notifications: nothing to answer.
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out)
}

// one runs one request; ok is false for a notification.
func (s *Server) one(ctx context.Context, caller uint64, raw json.RawMessage) (resp api.Response, ok bool) {
	resp = api.Response{JSONRPC: api.Version, ID: json.RawMessage("null")}
	var req api.Request
	if err := json.Unmarshal(raw, &req); err != nil {
		var se *json.SyntaxError
		code := api.CodeInvalidRequest
		if errors.As(err, &se) {
			code = api.CodeParseError
		}
		resp.Error = &api.Error{Code: code, Message: "not a JSON-RPC request: " + err.Error()}
		return resp, true
	}
	if !validID(req.ID) {
		resp.Error = &api.Error{Code: api.CodeInvalidRequest, Message: "id must be a string, a number or null"}
		return resp, true
	}
	if req.ID != nil {
		resp.ID = req.ID
	}
	if req.JSONRPC != api.Version || req.Method == "" {
		resp.Error = &api.Error{Code: api.CodeInvalidRequest, Message: `a request needs "jsonrpc": "2.0" and a method`}
		return resp, true
	}
	start := s.c.Now()
	label := req.Method
	m, found := s.methods[req.Method]
	var result any
	var err error
	if !found {
		label = "unknown"
		err = &api.Error{Code: api.CodeMethodNotFound, Message: "method not found: " + req.Method}
	} else {
		result, err = m(ctx, caller, req.Params)
	}
	code := 0
	if err != nil {
		re := errorOf(err)
		code = re.Code
		resp.Error = re
		if re.Code == api.CodeInternal {
			s.log.Error("call failed", "method", req.Method, "twin", caller, "error", err)
		}
	} else {
		b, merr := json.Marshal(result)
		if merr != nil {
			s.log.Error("encoding a result", "method", req.Method, "error", merr)
			code, resp.Error = api.CodeInternal, &api.Error{Code: api.CodeInternal, Message: "internal error"}
		} else {
			resp.Result = b
		}
	}
	s.m.requests.WithLabelValues(label, strconv.Itoa(code)).Inc()
	s.m.duration.WithLabelValues(label).Observe(s.c.Now().Sub(start).Seconds())
	s.log.Debug("call", "method", req.Method, "twin", caller, "code", code)
	return resp, req.ID != nil
}

// validID accepts what JSON-RPC 2.0 allows as an id: absent, null, a
// string or a number.
func validID(id json.RawMessage) bool {
	if id == nil {
		return true
	}
	switch id[0] {
	case '"', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return true
	}
	return false
}

// decodeParams decodes by-name parameters strictly into v (absent params
// are an empty object).
func decodeParams(params json.RawMessage, v any) error {
	p := bytes.TrimSpace(params)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		p = []byte("{}")
	}
	if p[0] != '{' {
		return invalidParams("params must be an object (by-name parameters)")
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalidParams("params: %v", err)
	}
	return nil
}

// errorOf maps an engine error to its JSON-RPC error. Internal failures
// get a generic message (the server logs the details).
func errorOf(err error) *api.Error {
	var re *api.Error
	if errors.As(err, &re) {
		return re
	}
	var ve *gridtypes.ValidationError
	switch {
	case errors.As(err, &ve):
		return &api.Error{Code: api.CodeInvalidParams, Message: err.Error(), Data: map[string]string{"field": ve.Field}}
	case errors.Is(err, gridtypes.ErrInvalid):
		return &api.Error{Code: api.CodeInvalidParams, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrNotFound):
		return &api.Error{Code: api.CodeNotFound, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrForbidden):
		return &api.Error{Code: api.CodeForbidden, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrConflict):
		return &api.Error{Code: api.CodeConflict, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrBusy):
		return &api.Error{Code: api.CodeBusy, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrCapacity):
		return &api.Error{Code: api.CodeCapacity, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrSignature):
		return &api.Error{Code: api.CodeSignature, Message: err.Error()}
	}
	return &api.Error{Code: api.CodeInternal, Message: "internal error"}
}

// invalidParams makes a CodeInvalidParams error.
func invalidParams(format string, args ...any) *api.Error {
	return &api.Error{Code: api.CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}
