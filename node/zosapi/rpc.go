package zosapi

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/grid4/grid4/gridtypes"
)

// JSON-RPC 2.0 error codes. The first five are the specification's; the
// others are zos-api-light's (in the range the specification leaves to
// servers).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	// CodeInvalidParams: malformed parameters, or a deployment refused by
	// validation (data.field names the field).
	CodeInvalidParams = -32602
	CodeInternal      = -32603
	// CodeNotFound: no deployment with that id.
	CodeNotFound = -32001
	// CodeForbidden: the deployment belongs to another twin.
	CodeForbidden = -32002
	// CodeConflict: wrong version, deployment deleted, nothing to pause...
	CodeConflict = -32003
	// CodeBusy: an operation on the deployment is still queued or running.
	CodeBusy = -32004
	// CodeCapacity: the node does not have the free capacity.
	CodeCapacity = -32005
	// CodeSignature: the deployment's signatures do not verify or do not
	// meet its signature requirement.
	CodeSignature = -32006
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

// Error is a JSON-RPC error object. It is also the error type of Client
// calls.
type Error struct {
	// Code is one of the Code constants.
	Code int `json:"code"`
	// Message is for people; branch on Code.
	Message string `json:"message"`
	// Data carries details: {"field": "..."} for invalid deployments.
	Data any `json:"data,omitempty"`
}

// Error returns "<message> (<code>)".
func (e *Error) Error() string { return fmt.Sprintf("%s (%d)", e.Message, e.Code) }

// Is matches the provision sentinel of the code, so errors.Is works the
// same on both sides of the API.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeInvalidParams:
		return target == gridtypes.ErrInvalid
	case CodeNotFound:
		return target == gridtypes.ErrNotFound
	case CodeForbidden:
		return target == gridtypes.ErrForbidden
	case CodeConflict:
		return target == gridtypes.ErrConflict
	case CodeBusy:
		return target == gridtypes.ErrBusy
	case CodeCapacity:
		return target == gridtypes.ErrCapacity
	case CodeSignature:
		return target == gridtypes.ErrSignature
	}
	return false
}

// errorOf maps an engine error to its JSON-RPC error. Internal failures
// get a generic message (the server logs the details).
func errorOf(err error) *Error {
	var re *Error
	if errors.As(err, &re) {
		return re
	}
	var ve *gridtypes.ValidationError
	switch {
	case errors.As(err, &ve):
		return &Error{Code: CodeInvalidParams, Message: err.Error(), Data: map[string]string{"field": ve.Field}}
	case errors.Is(err, gridtypes.ErrInvalid):
		return &Error{Code: CodeInvalidParams, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrNotFound):
		return &Error{Code: CodeNotFound, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrForbidden):
		return &Error{Code: CodeForbidden, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrConflict):
		return &Error{Code: CodeConflict, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrBusy):
		return &Error{Code: CodeBusy, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrCapacity):
		return &Error{Code: CodeCapacity, Message: err.Error()}
	case errors.Is(err, gridtypes.ErrSignature):
		return &Error{Code: CodeSignature, Message: err.Error()}
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}

// invalidParams makes a CodeInvalidParams error.
func invalidParams(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidParams, Message: fmt.Sprintf(format, args...)}
}
