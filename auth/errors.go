package auth

import (
	"errors"
	"net/http"
)

// Sentinel errors. Every error returned by this package wraps at most one of
// them; branch with errors.Is. HTTPStatus maps them to status codes.
var (
	// ErrNoCredentials: the request carries neither Signature-Input nor X-Auth.
	ErrNoCredentials = errors.New("missing credentials")
	// ErrMalformed: a header (or the account-creation fields) could not be
	// parsed, or breaks a syntactic rule of the scheme.
	ErrMalformed = errors.New("malformed authentication data")
	// ErrWeakKey: an account-creation public key is one anybody could sign
	// for (an ed25519 point of small order or a non-canonical encoding, the
	// sr25519 identity); see keys.CheckPublicKey.
	ErrWeakKey = errors.New("unusable public key")
	// ErrUnsupportedAlgorithm: the v2 alg parameter names an algorithm other
	// than ed25519 or sr25519.
	ErrUnsupportedAlgorithm = errors.New("unsupported signature algorithm")
	// ErrInsufficientCoverage: a v2 signature does not cover the components
	// the verifier requires.
	ErrInsufficientCoverage = errors.New("signature does not cover the required components")
	// ErrUnknownTwin: the key id is not a twin id, or no twin has it.
	// TwinKeys implementations return it (possibly wrapped) for unknown twins.
	ErrUnknownTwin = errors.New("unknown twin")
	// ErrBadSignature: the signature does not verify with the twin's key.
	ErrBadSignature = errors.New("bad signature")
	// ErrDigestMismatch: the body does not match its Content-Digest.
	ErrDigestMismatch = errors.New("content digest mismatch")
	// ErrExpired: the legacy timestamp is too old, or the v2 signature's
	// expires time has passed.
	ErrExpired = errors.New("signature expired")
	// ErrNotYetValid: the timestamp (legacy) or created time (v2) is further
	// in the future than the allowed clock skew.
	ErrNotYetValid = errors.New("signature not yet valid")
	// ErrValidityTooLong: a v2 signature's expires - created exceeds the
	// verifier's maximum.
	ErrValidityTooLong = errors.New("signature validity too long")
	// ErrReplay: the nonce (v2) or the exact request (legacy replay guard)
	// was already used within its validity.
	ErrReplay = errors.New("replayed request")
	// ErrLegacyDisabled: the request uses X-Auth but the verifier only
	// accepts signed requests v2.
	ErrLegacyDisabled = errors.New("legacy X-Auth is disabled; use signed requests v2 (RFC 9421 Signature-Input/Signature with Content-Digest)")
	// ErrBodyTooLarge: the body exceeds the verifier's size cap.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrNonceStoreFull: an in-memory NonceStore reached its bound and
	// refuses new nonces until some expire (fail closed).
	ErrNonceStoreFull = errors.New("nonce store full")
)

// Reason returns the metrics label of an error returned by
// Verifier.Verify: the sentinel it wraps in snake case ("bad_signature",
// "unknown_twin"), or "" for ErrWeakKey and anything that wraps no
// sentinel (a failing back end).
func Reason(err error) string {
	for _, r := range []struct {
		err    error
		reason string
	}{
		{ErrNoCredentials, "no_credentials"},
		{ErrLegacyDisabled, "legacy_disabled"},
		{ErrMalformed, "malformed"},
		{ErrUnsupportedAlgorithm, "unsupported_algorithm"},
		{ErrInsufficientCoverage, "insufficient_coverage"},
		{ErrUnknownTwin, "unknown_twin"},
		{ErrBadSignature, "bad_signature"},
		{ErrDigestMismatch, "digest_mismatch"},
		{ErrExpired, "expired"},
		{ErrNotYetValid, "not_yet_valid"},
		{ErrValidityTooLong, "validity_too_long"},
		{ErrReplay, "replay"},
		{ErrBodyTooLarge, "body_too_large"},
		{ErrNonceStoreFull, "nonce_store_full"},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ""
}

// HTTPStatus returns the HTTP status code for an error returned by
// Verifier.Verify: 400 for ErrMalformed and ErrWeakKey, 413 for ErrBodyTooLarge, 503 for
// ErrNonceStoreFull, 401 for the other sentinels and 500 for anything else
// (a failing TwinKeys or NonceStore back end).
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrWeakKey):
		return http.StatusBadRequest
	case errors.Is(err, ErrBodyTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrNonceStoreFull):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrNoCredentials),
		errors.Is(err, ErrUnsupportedAlgorithm),
		errors.Is(err, ErrInsufficientCoverage),
		errors.Is(err, ErrUnknownTwin),
		errors.Is(err, ErrBadSignature),
		errors.Is(err, ErrDigestMismatch),
		errors.Is(err, ErrExpired),
		errors.Is(err, ErrNotYetValid),
		errors.Is(err, ErrValidityTooLong),
		errors.Is(err, ErrReplay),
		errors.Is(err, ErrLegacyDisabled):
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}
