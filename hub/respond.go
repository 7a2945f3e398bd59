package hub

import (
	"fmt"
	"net/http"

	"github.com/grid4/grid4/internal/jsonhttp"
)

// httpError is an error answered with its status and {"error": msg}, plus
// optional extra members.
type httpError struct {
	status int
	msg    string
	extra  map[string]any
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) { jsonhttp.Write(w, status, v) }

// writeError writes e as {"error": msg, ...extra}.
func writeError(w http.ResponseWriter, e *httpError) {
	body := map[string]any{"error": e.msg}
	for k, v := range e.extra {
		body[k] = v
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, e.status, body)
}
