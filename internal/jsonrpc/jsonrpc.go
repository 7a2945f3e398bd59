// Package jsonrpc is the JSON-RPC 2.0 plumbing shared by the node's APIs
// (zos-api-light, node/zosapi, and the node-to-node API, node/noderpc):
// the envelope, a server that answers requests and batches from a method
// table, and a client that posts one call. Authentication stays with each
// API (both put their middleware in front of Server); this package only
// speaks JSON-RPC over HTTP, and imports the standard library alone so
// that the APIs' wire packages and clients may use it.
package jsonrpc

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// JSON-RPC 2.0 error codes of the specification. APIs define theirs in
// the range the specification leaves to servers (-32000 to -32099).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603
)

// Version is the JSON-RPC version string.
const Version = "2.0"

// Request is a JSON-RPC 2.0 request (a notification when ID is absent).
type Request struct {
	// JSONRPC must be "2.0".
	JSONRPC string `json:"jsonrpc"`
	// ID is a string, number or null; absent for a notification.
	ID json.RawMessage `json:"id,omitempty"`
	// Method is the method's name.
	Method string `json:"method"`
	// Params are the by-name parameters (an object).
	Params json.RawMessage `json:"params,omitempty"`
}

// Response is a JSON-RPC 2.0 response.
type Response struct {
	// JSONRPC is "2.0".
	JSONRPC string `json:"jsonrpc"`
	// ID is the request's (null when it could not be read).
	ID json.RawMessage `json:"id"`
	// Result is set on success.
	Result json.RawMessage `json:"result,omitempty"`
	// Error is set on failure.
	Error *Error `json:"error,omitempty"`
}

// Error is a JSON-RPC error object.
type Error struct {
	// Code is one of the Code constants or an API's own.
	Code int `json:"code"`
	// Message is for people; branch on Code.
	Message string `json:"message"`
	// Data carries details.
	Data any `json:"data,omitempty"`
}

// Error returns "<message> (<code>)".
func (e *Error) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Code) }

// Errorf makes an *Error with code and a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DecodeParams decodes by-name parameters strictly into v (absent or null
// params are an empty object); failures are CodeInvalidParams errors.
func DecodeParams(params json.RawMessage, v any) error {
	p := bytes.TrimSpace(params)
	if len(p) == 0 || bytes.Equal(p, []byte("null")) {
		p = []byte("{}")
	}
	if p[0] != '{' {
		return Errorf(CodeInvalidParams, "params must be an object (by-name parameters)")
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeInvalidParams, "params: %v", err)
	}
	return nil
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
