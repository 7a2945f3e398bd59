package httpserve

import (
	"encoding/json"
	"net/http"
)

// WriteJSON writes v as the JSON body with status, one line, marked so
// that no browser sniffs it as something else.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Every value written here is a plain struct; failing to encode
		// one is a programming error, answered like any other.
		status = http.StatusInternalServerError
		body = []byte(`{"error":"internal error: encoding the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
