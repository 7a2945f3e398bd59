package bus

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Code classifies an error that crosses the bus. A Code is itself an error,
// so a module declares its sentinels as constants:
//
//	const ErrNotFound bus.Code = "not_found"
//
// and both sides test for them with errors.Is, whether the error was made
// locally or came back over the bus:
//
//	if errors.Is(err, identity.ErrNotFound) { ... }
//
// Codes are short snake_case words. The codes below are the bus's own.
type Code string

// Error returns the code itself.
func (c Code) Error() string { return string(c) }

// The bus's own error codes.
const (
	// CodeError is the code of a handler error that carried no code.
	CodeError Code = "error"
	// CodeUnknownMethod: the object is served but has no such method.
	CodeUnknownMethod Code = "unknown_method"
	// CodeBadArguments: the arguments did not match the method (wrong
	// count, or a value that does not decode into the parameter's type).
	CodeBadArguments Code = "bad_arguments"
	// CodeBadRequest: the request document itself was malformed.
	CodeBadRequest Code = "bad_request"
	// CodePanic: the handler panicked; the server recovered and lives on.
	CodePanic Code = "panic"
	// CodeInternal: the server failed on its side, e.g. the result could
	// not be encoded as JSON.
	CodeInternal Code = "internal"
	// CodeDeadlineExceeded: the handler gave up because its deadline
	// passed. An *Error with this code matches context.DeadlineExceeded.
	CodeDeadlineExceeded Code = "deadline_exceeded"
	// CodeCanceled: the handler was canceled, typically because the server
	// shut down. An *Error with this code matches context.Canceled.
	CodeCanceled Code = "canceled"
)

// Error is an error that crossed the bus: what a handler returned, as the
// caller sees it. Message is the handler's err.Error() exactly, including
// any wrapping done on the server side; Code is the first Code (or *Error)
// found in the handler's error chain, or CodeError when there was none.
//
// errors.Is(err, c) holds for a Code c equal to Code, for an *Error with the
// same Code, and for context.DeadlineExceeded / context.Canceled when Code
// is CodeDeadlineExceeded / CodeCanceled.
type Error struct {
	// Code classifies the error; callers branch on it.
	Code Code `json:"code"`
	// Message is the human readable text.
	Message string `json:"message"`
}

// Error returns the message (the code when there is no message).
func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return e.Message
}

// Is reports whether target is the same kind of error; see Error.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return t == e.Code
	case *Error:
		return t != nil && t.Code == e.Code
	}
	switch e.Code {
	case CodeDeadlineExceeded:
		return target == context.DeadlineExceeded
	case CodeCanceled:
		return target == context.Canceled
	}
	return false
}

// Errorf returns an error with the given code and a formatted message, as
// a handler returns it. %w in format keeps a local cause reachable with
// errors.Is/As on the server side; only the text and the code travel.
func Errorf(code Code, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &codedError{code: code, err: err}
}

// codedError carries a code next to a wrapped cause (see Errorf).
type codedError struct {
	code Code
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }
func (e *codedError) Is(target error) bool {
	return (&Error{Code: e.code}).Is(target)
}

// toWire turns whatever a handler returned into the error document sent
// back to the caller: the text of err, and the outermost code in its chain.
func toWire(err error) *Error {
	out := &Error{Code: CodeError, Message: err.Error()}
	if c, ok := findCode(err); ok && c != "" {
		out.Code = c
	} else if errors.Is(err, context.DeadlineExceeded) {
		out.Code = CodeDeadlineExceeded
	} else if errors.Is(err, context.Canceled) {
		out.Code = CodeCanceled
	}
	return out
}

// findCode walks err's chain depth-first, as errors.As does, and returns
// the first code it meets.
func findCode(err error) (Code, bool) {
	for err != nil {
		switch e := err.(type) {
		case *Error:
			if e != nil {
				return e.Code, true
			}
		case *codedError:
			return e.code, true
		case Code:
			return e, true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, inner := range u.Unwrap() {
				if c, ok := findCode(inner); ok {
					return c, true
				}
			}
			return "", false
		default:
			return "", false
		}
	}
	return "", false
}

// NoReplyError is returned by a call that got no reply before its deadline.
// It matches context.DeadlineExceeded with errors.Is.
type NoReplyError struct {
	// Object and Method name the call.
	Object, Method string
	// Timeout is how long the caller waited.
	Timeout time.Duration
	// Taken reports whether a server took the request from the queue. When
	// false nobody serves the object (or every server was busy for the
	// whole time); the request has been removed from the queue so that a
	// server starting later does not run it.
	Taken bool
}

// Error describes the timeout and its likely cause.
func (e *NoReplyError) Error() string {
	module := e.Object
	if o, err := ParseObject(e.Object); err == nil {
		module = o.Module
	}
	t := e.Timeout.Round(time.Millisecond)
	if e.Taken {
		return fmt.Sprintf("bus: no reply from %s.%s within %s (a server took the call but did not answer in time)", e.Object, e.Method, t)
	}
	return fmt.Sprintf("bus: no reply from %s.%s within %s (nobody took the call: is %s running?)", e.Object, e.Method, t, module)
}

// Unwrap returns context.DeadlineExceeded.
func (e *NoReplyError) Unwrap() error { return context.DeadlineExceeded }

// ErrClosed is returned by calls on a closed Client, and by Serve on a
// Server whose Client was closed.
var ErrClosed = errors.New("bus: client closed")
