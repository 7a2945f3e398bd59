package registrar

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/grid4/grid4/internal/jsonhttp"
)

// httpError is an error answered with a status and a JSON body
// {"error": msg} plus optional extra members (server_time).
type httpError struct {
	status int
	msg    string
	extra  map[string]any
	// header is set on the response (Retry-After).
	header map[string]string
}

func (e *httpError) Error() string { return e.msg }

func newHTTPError(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

func badRequest(msg string) *httpError { return &httpError{status: http.StatusBadRequest, msg: msg} }

func notFound(format string, args ...any) *httpError {
	return newHTTPError(http.StatusNotFound, format, args...)
}

func conflict(format string, args ...any) *httpError {
	return newHTTPError(http.StatusConflict, format, args...)
}

// notAuthorized is the ownership failure. The public registrar answers 401
// "not authorized" (never 403); grid4 keeps the status and the prefix and
// says why.
func notAuthorized(format string, args ...any) *httpError {
	return newHTTPError(http.StatusUnauthorized, "not authorized: "+format, args...)
}

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) { jsonhttp.Write(w, status, v) }

// writeError writes {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// writeHTTPError writes e with its extra members and headers.
func writeHTTPError(w http.ResponseWriter, e *httpError) {
	for k, v := range e.header {
		w.Header().Set(k, v)
	}
	if len(e.extra) == 0 {
		writeError(w, e.status, e.msg)
		return
	}
	body := make(map[string]any, len(e.extra)+1)
	for k, v := range e.extra {
		body[k] = v
	}
	body["error"] = e.msg
	writeJSON(w, e.status, body)
}

// tooManyRequests is the rate-limit refusal, with Retry-After in whole
// seconds (at least 1).
func tooManyRequests(what string, retry time.Duration) *httpError {
	secs := int64((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return &httpError{
		status: http.StatusTooManyRequests,
		msg:    fmt.Sprintf("rate limit exceeded for this %s; retry in %d s", what, secs),
		header: map[string]string{"Retry-After": strconv.FormatInt(secs, 10)},
	}
}

// asHTTPError returns the *httpError in err's chain.
func asHTTPError(err error) (*httpError, bool) {
	var he *httpError
	ok := errors.As(err, &he)
	return he, ok
}
