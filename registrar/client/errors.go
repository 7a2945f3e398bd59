package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. Errors returned by the Client wrap at most one of them;
// branch with errors.Is. An *APIError matches the sentinel of its status.
var (
	// ErrNotFound: the registrar answered 404 (no such account, farm, node
	// or version).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the registrar answered 409 (a duplicate, or a value
	// that is already set).
	ErrConflict = errors.New("conflict")
	// ErrUnauthorized: the registrar answered 401 or 403 (the request is
	// not signed, the signature does not verify, or the caller does not
	// own what it tries to change).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalid: the registrar answered another 4xx (usually 400): the
	// request is malformed. The *APIError carries the server's message.
	ErrInvalid = errors.New("invalid request")
	// ErrRateLimited: the registrar answered 429 and the retries (if any)
	// were used up, or its Retry-After was longer than the policy allows.
	ErrRateLimited = errors.New("rate limited")
	// ErrServer: the registrar answered 5xx and the retries were used up.
	ErrServer = errors.New("registrar error")
	// ErrUnreachable: no HTTP answer came back (connection refused, DNS
	// failure, reset, timeout of the transport) after every attempt.
	ErrUnreachable = errors.New("cannot reach registrar")
	// ErrNoIdentity: the call needs a key pair and the client has none.
	ErrNoIdentity = errors.New("no identity: the client has no key pair")
	// ErrNoAccount: the client's key has no account (twin) on the
	// registrar, so the call cannot be signed; create one first
	// (CreateAccount or EnsureAccount).
	ErrNoAccount = errors.New("no account for this key on the registrar")
	// ErrInvalidURL: New was given a registrar URL it cannot use.
	ErrInvalidURL = errors.New("invalid registrar URL")
	// ErrBadResponse: the registrar answered 2xx with a body the client
	// cannot decode.
	ErrBadResponse = errors.New("unexpected response from registrar")
)

// APIError is a non-2xx answer of the registrar. errors.Is matches it
// against ErrNotFound (404), ErrConflict (409), ErrUnauthorized (401, 403),
// ErrRateLimited (429), ErrInvalid (other 4xx) and ErrServer (5xx).
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the server's error text (the "error" member of the JSON
	// body), or the body itself or the status text when it sent none.
	Message string
	// Method and Path name the request, e.g. "POST" and "/api/v1/farms".
	Method, Path string
	// RetryAfter is the delay the server asked for with Retry-After (zero
	// when absent).
	RetryAfter time.Duration
}

// Error returns "<method> <path>: <message> (<status>)".
func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Method == "" && e.Path == "" {
		return fmt.Sprintf("registrar: %s (%d)", msg, e.Status)
	}
	return fmt.Sprintf("registrar: %s %s: %s (%d)", e.Method, e.Path, msg, e.Status)
}

// Is reports whether target is the sentinel matching e.Status.
func (e *APIError) Is(target error) bool {
	return target != nil && target == sentinelFor(e.Status)
}

// sentinelFor returns the sentinel of an error status, or nil.
func sentinelFor(status int) error {
	switch {
	case status == http.StatusNotFound:
		return ErrNotFound
	case status == http.StatusConflict:
		return ErrConflict
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 400 && status < 500:
		return ErrInvalid
	case status >= 500:
		return ErrServer
	}
	return nil
}

// networkError marks an error of the base transport (no HTTP answer), as
// opposed to an error of the signing layer above it, so that only the
// former is retried.
type networkError struct{ err error }

func (e *networkError) Error() string { return e.err.Error() }
func (e *networkError) Unwrap() error { return e.err }
