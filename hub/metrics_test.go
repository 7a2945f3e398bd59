package hub

import (
	"errors"
	"fmt"
	"testing"

	"github.com/grid4/grid4/auth"
)

// TestAuthReason pins the hub's labels: its own word for an unknown key
// and "other" for what it never counted apart.
func TestAuthReason(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("no publisher has id 3: %w", auth.ErrUnknownTwin): "unknown_publisher",
		auth.ErrBadSignature:         "bad_signature",
		auth.ErrLegacyDisabled:       "legacy_disabled",
		auth.ErrBodyTooLarge:         "body_too_large",
		auth.ErrValidityTooLong:      "other",
		auth.ErrUnsupportedAlgorithm: "other",
		auth.ErrWeakKey:              "other",
		errors.New("disk full"):      "other",
	} {
		if got := authReason(err); got != want {
			t.Errorf("authReason(%v) = %q, want %q", err, got, want)
		}
	}
}
