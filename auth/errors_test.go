package auth

import (
	"errors"
	"fmt"
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
