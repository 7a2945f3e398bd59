// Package jsonhttp writes JSON answers. It imports only the standard
// library, so that packages a user's program imports alone (auth) answer
// the way the servers do without linking the servers' plumbing
// (httpserve, Prometheus).
package jsonhttp

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// Write writes v as the JSON body with status, one line, marked so
// that no browser sniffs it as something else. Strings are not
// HTML-escaped: a message reads "(>= 1)" and "<base64 challenge>" to
// someone using curl, not "(\u003e= 1)"; nosniff keeps any browser from
// reading the answer as HTML.
func Write(w http.ResponseWriter, status int, v any) {
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every value written here is a plain struct; failing to encode
		// one is a programming error, answered like any other.
		status = http.StatusInternalServerError
		body.Reset()
		body.WriteString(`{"error":"internal error: encoding the response"}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body.Bytes())
}
