package jsonhttp

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWrite(t *testing.T) {
	w := httptest.NewRecorder()
	Write(w, http.StatusCreated, map[string]int{"a": 1})
	if w.Code != http.StatusCreated || w.Body.String() != "{\"a\":1}\n" || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%d %q %v", w.Code, w.Body.String(), w.Header())
	}
	// Strings read as written: no HTML escaping.
	w = httptest.NewRecorder()
	Write(w, http.StatusBadRequest, map[string]string{"error": "want <a> & (>= 1)"})
	if got := w.Body.String(); got != "{\"error\":\"want <a> & (>= 1)\"}\n" {
		t.Fatalf("body %q", got)
	}
	w = httptest.NewRecorder()
	Write(w, http.StatusOK, func() {})
	if w.Code != http.StatusInternalServerError || w.Body.String() != "{\"error\":\"internal error: encoding the response\"}\n" {
		t.Fatalf("unencodable value: %d %q", w.Code, w.Body.String())
	}
}
