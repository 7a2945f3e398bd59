package noderpc

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/internal/httpserve"
	"github.com/grid4/grid4/internal/jsonhttp"
	"github.com/grid4/grid4/internal/jsonrpc"
	"github.com/grid4/grid4/node/noderpc/api"
	regapi "github.com/grid4/grid4/registrar/api"
)

//go:embed openrpc.json
var openRPCDocument []byte

// OpenRPC returns the API's OpenRPC document.
func OpenRPC() json.RawMessage { return bytes.Clone(openRPCDocument) }

// Self is who the serving node is.
type Self struct {
	NodeID, FarmID, TwinID uint64
	// Version is the node's ZOS version.
	Version string
}

// Callers identifies the nodes that call: Peers does.
type Callers interface {
	ByTwin(ctx context.Context, twinID uint64) (regapi.Node, error)
}

// Power is what the farm.* methods reach: powerd (adapted by zosd).
type Power interface {
	// Status is farm.v1.status's answer.
	Status(ctx context.Context) (PowerStatus, error)
	// PeerDown records that node went down on purpose, with its MAC
	// addresses to wake it by (farm.v1.going_down).
	PeerDown(ctx context.Context, node uint64, macs []string) error
}

// PowerStatus is the node's uptime and health (powerd.Status's fields
// that the API reports).
type PowerStatus struct {
	Uptime  float64
	Healthy bool
	Reasons []string
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Self is the serving node. Required.
	Self Self
	// Callers identifies the calling nodes. Required.
	Callers Callers
	// Keys looks up twins' keys (zosapi.TwinKeyCache). Required.
	Keys auth.TwinKeys
	// Power answers farm.v1.status and farm.v1.going_down (nil:
	// CodeUnavailable).
	Power Power
	// Networks answers network.v1.join and network.v1.leave (nil:
	// CodeUnavailable).
	Networks Networks
	// Auth tunes request verification (nonce store, clock skew, ...);
	// its Keys, Now, Logger and DisableLegacy fields are set by the
	// server.
	Auth auth.Config
	// Registry receives the server's metrics (a new registry when nil).
	Registry *prometheus.Registry
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives request records (nil: discarded).
	Logger *slog.Logger
}

// Server is the node-to-node API: JSON-RPC 2.0 over HTTP, every call
// signed by a registered node.
type Server struct {
	c        ServerConfig
	verifier *auth.Verifier
	rpc      *jsonrpc.Server
	log      *slog.Logger
	reg      *prometheus.Registry
	m        *httpserve.RPCMetrics
}

// callerKey carries the calling node in a request's context.
type callerKey struct{}

// callerNode returns the node that made the request.
func callerNode(ctx context.Context) regapi.Node {
	n, _ := ctx.Value(callerKey{}).(regapi.Node)
	return n
}

// NewServer returns a server for c.
func NewServer(c ServerConfig) (*Server, error) {
	if c.Self.NodeID == 0 || c.Callers == nil || c.Keys == nil {
		return nil, errors.New("noderpc: ServerConfig.Self.NodeID, Callers and Keys are required")
	}
	c.Logger, c.Registry, c.Now = httpserve.Defaults(c.Logger, c.Registry, c.Now)
	ac := c.Auth
	ac.Keys, ac.Now, ac.Logger = nodeKeys{callers: c.Callers, keys: c.Keys}, c.Now, c.Logger
	// Nodes sign with v2 only: X-Auth covers neither the body nor the
	// target.
	ac.DisableLegacy = true
	v, err := auth.NewVerifier(ac)
	if err != nil {
		return nil, err
	}
	s := &Server{c: c, verifier: v, log: c.Logger, reg: c.Registry}
	if s.m, err = newMetrics(c.Registry); err != nil {
		return nil, err
	}
	s.rpc = &jsonrpc.Server{
		Methods: s.methodTable(),
		ErrorOf: errorOf,
		Observe: s.m.Observe,
		Now:     c.Now,
		Logger:  c.Logger,
	}
	return s, nil
}

// Handler serves the API's routes (api.RPCPath, api.OpenRPCPath) and the
// metrics (/metrics).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+api.RPCPath, s.authenticate(s.rpc))
	mux.HandleFunc("GET "+api.OpenRPCPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openRPCDocument)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	return mux
}

// policy is what every request's signature must be: v2, covering the
// target node and the deadline.
var policy = auth.Policy{NoLegacy: true, Require: api.SignedFields}

// authenticate lets through the requests signed by a registered node, for
// this node, and bounds them by their deadline. Refusals are HTTP errors
// with a JSON body {"error": "..."}: 401 for a bad, replayed or non-node
// signature, 421 for a request meant for another node, 400 for a bad
// deadline.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller, err := s.verifier.VerifyPolicy(r, policy)
		if err != nil {
			s.refuse(w, r, auth.HTTPStatus(err), err)
			return
		}
		if target := r.Header.Get(api.HeaderNode); target != strconv.FormatUint(s.c.Self.NodeID, 10) {
			s.refuse(w, r, http.StatusMisdirectedRequest, fmt.Errorf("this is node %d, the request is for node %q", s.c.Self.NodeID, target))
			return
		}
		ms, err := strconv.ParseInt(r.Header.Get(api.HeaderTimeout), 10, 64)
		if err != nil || ms <= 0 {
			s.refuse(w, r, http.StatusBadRequest, fmt.Errorf("%s must be a positive number of milliseconds", api.HeaderTimeout))
			return
		}
		// The verifier found the node to get its key: this is the cache.
		node, err := s.c.Callers.ByTwin(r.Context(), caller.TwinID)
		if err != nil {
			s.refuse(w, r, http.StatusInternalServerError, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), min(time.Duration(ms)*time.Millisecond, api.MaxTimeout))
		defer cancel()
		ctx = context.WithValue(auth.WithCaller(ctx, caller), callerKey{}, node)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// refuse answers an HTTP error before JSON-RPC.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, status int, err error) {
	s.m.Refused(status)
	s.log.Debug("request refused", "remote", r.RemoteAddr, "status", status, "error", err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		msg = "internal error"
		s.log.Error("identifying a caller", "error", err)
	}
	jsonhttp.Write(w, status, map[string]string{"error": msg})
}

// nodeKeys is the verifier's key lookup: a twin's key, only for the twins
// of registered nodes.
type nodeKeys struct {
	callers Callers
	keys    auth.TwinKeys
}

// TwinPublicKey implements auth.TwinKeys.
func (k nodeKeys) TwinPublicKey(ctx context.Context, twinID uint64) ([]byte, error) {
	if _, err := k.callers.ByTwin(ctx, twinID); err != nil {
		if errors.Is(err, ErrNotNode) {
			return nil, fmt.Errorf("%w: the twin is not a registered node", auth.ErrUnknownTwin)
		}
		return nil, err
	}
	return k.keys.TwinPublicKey(ctx, twinID)
}
