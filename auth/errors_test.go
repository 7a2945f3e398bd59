package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReason(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("twin 7: %w", ErrUnknownTwin): "unknown_twin",
		ErrBadSignature:                          "bad_signature",
		ErrNonceStoreFull:                        "nonce_store_full",
		ErrWeakKey:                               "",
		errors.New("database down"):              "",
		nil:                                      "",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestWriteErrorReadable: the refusal's message is written as it reads,
// "<" and ">" included, not HTML-escaped into \u003c and \u003e, and the
// body is still the JSON {"error": msg} a client decodes.
func TestWriteErrorReadable(t *testing.T) {
	_, err := ParseLegacyHeader("garbage")
	rec := httptest.NewRecorder()
	WriteError(rec, err)
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("status %d", rec.Code)
	}
	body := rec.Body.String()
	if !strings.Contains(body, "<base64 challenge>:<base64 signature>") {
		t.Errorf("body %q: want the format written as it reads", body)
	}
	var e struct{ Error string }
	if jerr := json.Unmarshal(rec.Body.Bytes(), &e); jerr != nil || e.Error != err.Error() {
		t.Errorf("body %q does not decode to the message %q: %v", body, err, jerr)
	}
	if !strings.HasSuffix(body, "}\n") {
		t.Errorf("body %q: want one JSON line", body)
	}
}
