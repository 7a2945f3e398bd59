package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// Method answers one call: params are the request's raw by-name
// parameters, the result is encoded as JSON. An error that is (or wraps)
// an *Error is answered as it is; others go through Server.ErrorOf.
type Method func(ctx context.Context, params json.RawMessage) (any, error)

// Server answers JSON-RPC 2.0 requests and batches POSTed to it, from its
// method table. Put authentication in front of it: it trusts the request.
type Server struct {
	// Methods is the method table. Required.
	Methods map[string]Method
	// ErrorOf maps a method's error that is not an *Error to the one
	// answered (nil: CodeInternal "internal error"; the details are
	// logged, never sent).
	ErrorOf func(error) *Error
	// Observe, when set, is called once per call with the method (or
	// "unknown"), the answered code (0 for success) and the time taken:
	// the APIs' metrics.
	Observe func(method string, code int, elapsed time.Duration)
	// Now is the clock of Observe (time.Now).
	Now func() time.Time
	// Logger receives a record per failed call (nil: discarded).
	Logger *slog.Logger
}

// ServeHTTP answers a request or batch; an answer with nothing to say
// (only notifications) is 204.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "reading the request", http.StatusBadRequest)
		return
	}
	out := s.Answer(r.Context(), body)
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(out)
}

// Answer runs the request or batch in body and returns what to send: a
// Response, a []Response, or nil when there is nothing to answer.
func (s *Server) Answer(ctx context.Context, body []byte) any {
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '[' {
		if resp, ok := s.one(ctx, body); ok {
			return resp
		}
		return nil
	}
	var batch []json.RawMessage
	if err := json.Unmarshal(body, &batch); err != nil {
		return Response{JSONRPC: Version, ID: json.RawMessage("null"), Error: Errorf(CodeParseError, "parse error: %v", err)}
	}
	if len(batch) == 0 {
		return Response{JSONRPC: Version, ID: json.RawMessage("null"), Error: Errorf(CodeInvalidRequest, "empty batch")}
	}
	var resps []Response
	for _, item := range batch {
		if resp, ok := s.one(ctx, item); ok {
			resps = append(resps, resp)
		}
	}
	if resps == nil {
		return nil
	}
	return resps
}

// one runs one request; ok is false for a notification.
func (s *Server) one(ctx context.Context, raw json.RawMessage) (resp Response, ok bool) {
	resp = Response{JSONRPC: Version, ID: json.RawMessage("null")}
	var req Request
	if err := json.Unmarshal(raw, &req); err != nil {
		var se *json.SyntaxError
		code := CodeInvalidRequest
		if errors.As(err, &se) {
			code = CodeParseError
		}
		resp.Error = Errorf(code, "not a JSON-RPC request: %v", err)
		return resp, true
	}
	if !validID(req.ID) {
		resp.Error = Errorf(CodeInvalidRequest, "id must be a string, a number or null")
		return resp, true
	}
	if req.ID != nil {
		resp.ID = req.ID
	}
	if req.JSONRPC != Version || req.Method == "" {
		resp.Error = Errorf(CodeInvalidRequest, `a request needs "jsonrpc": "2.0" and a method`)
		return resp, true
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	start := now()
	label := req.Method
	m, found := s.Methods[req.Method]
	var result any
	var err error
	if !found {
		label = "unknown"
		err = Errorf(CodeMethodNotFound, "method not found: %s", req.Method)
	} else {
		result, err = m(ctx, req.Params)
	}
	code := 0
	if err != nil {
		resp.Error = s.errorOf(err)
		code = resp.Error.Code
		if code == CodeInternal && s.Logger != nil {
			s.Logger.Error("call failed", "method", req.Method, "error", err)
		}
	} else if b, merr := json.Marshal(result); merr != nil {
		if s.Logger != nil {
			s.Logger.Error("encoding a result", "method", req.Method, "error", merr)
		}
		resp.Error = Errorf(CodeInternal, "internal error")
		code = CodeInternal
	} else {
		resp.Result = b
	}
	if s.Observe != nil {
		s.Observe(label, code, now().Sub(start))
	}
	return resp, req.ID != nil
}

// errorOf is the error answered for err.
func (s *Server) errorOf(err error) *Error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	if s.ErrorOf != nil {
		if re := s.ErrorOf(err); re != nil {
			return re
		}
	}
	return Errorf(CodeInternal, "internal error")
}
