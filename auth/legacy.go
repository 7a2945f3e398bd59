package auth

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/keys"
)

// HeaderXAuth is the legacy authentication header of the Grid v4
// node-registrar.
const HeaderXAuth = "X-Auth"

// DefaultLegacyWindow is how far a legacy X-Auth timestamp may be from the
// verifier's clock, in either direction (the public registrar uses one
// minute for the past and has no limit for the future).
const DefaultLegacyWindow = 60 * time.Second

// DefaultAccountWindow is the window the public registrar allows around the
// timestamp of an account-creation signature, in either direction.
const DefaultAccountWindow = 2 * time.Second

// LegacyChallenge returns the bytes a legacy X-Auth header signs:
// the ASCII text "<unix_ts>:<twin_id>", both in decimal.
func LegacyChallenge(unixTS int64, twinID uint64) []byte {
	return []byte(strconv.FormatInt(unixTS, 10) + ":" + strconv.FormatUint(twinID, 10))
}

// LegacyHeaderValue builds an X-Auth value from a challenge and the
// signature over it: base64(challenge) + ":" + base64(signature), both in
// standard base64 with padding.
func LegacyHeaderValue(challenge, signature []byte) string {
	return base64.StdEncoding.EncodeToString(challenge) + ":" + base64.StdEncoding.EncodeToString(signature)
}

// SignLegacy returns the X-Auth value for twinID at time now, signed by key.
func SignLegacy(key keys.KeyPair, twinID uint64, now time.Time) (string, error) {
	if key == nil {
		return "", fmt.Errorf("auth: sign legacy: no key")
	}
	ch := LegacyChallenge(now.Unix(), twinID)
	sig, err := key.Sign(ch)
	if err != nil {
		return "", fmt.Errorf("auth: sign legacy challenge: %w", err)
	}
	return LegacyHeaderValue(ch, sig), nil
}

// LegacyHeader is a parsed X-Auth value.
type LegacyHeader struct {
	// Challenge is the decoded challenge: exactly the bytes that were signed.
	Challenge []byte
	// Timestamp is the unix time (seconds) from the challenge.
	Timestamp int64
	// TwinID is the twin from the challenge.
	TwinID uint64
	// Signature is the decoded signature.
	Signature []byte
}

// ParseLegacyHeader parses an X-Auth value with the same rules as the public
// registrar: exactly one ':' between two standard-base64 (padded) parts; the
// decoded challenge is exactly "<ts>:<twin>" with ts a base-10 int64 and twin
// a base-10 uint64. Unlike the public registrar, each part must be the
// canonical spelling of its bytes (no line breaks, zero padding bits: what
// every encoder writes), so a header cannot be re-spelled past a replay
// check. Errors wrap ErrMalformed.
func ParseLegacyHeader(v string) (LegacyHeader, error) {
	var h LegacyHeader
	chB64, sigB64, ok := strings.Cut(v, ":")
	if !ok || strings.Contains(sigB64, ":") {
		return h, fmt.Errorf("%w: X-Auth must be <base64 challenge>:<base64 signature>", ErrMalformed)
	}
	ch, err := strictb64.Std(chB64)
	if err != nil {
		return h, fmt.Errorf("%w: X-Auth challenge is not standard base64: %w", ErrMalformed, err)
	}
	tsStr, twinStr, ok := strings.Cut(string(ch), ":")
	if !ok || strings.Contains(twinStr, ":") {
		return h, fmt.Errorf("%w: X-Auth challenge must be <unix_ts>:<twin_id>", ErrMalformed)
	}
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return h, fmt.Errorf("%w: X-Auth timestamp: %w", ErrMalformed, err)
	}
	twin, err := strconv.ParseUint(twinStr, 10, 64)
	if err != nil {
		return h, fmt.Errorf("%w: X-Auth twin id: %w", ErrMalformed, err)
	}
	sig, err := strictb64.Std(sigB64)
	if err != nil {
		return h, fmt.Errorf("%w: X-Auth signature is not standard base64: %w", ErrMalformed, err)
	}
	return LegacyHeader{Challenge: ch, Timestamp: ts, TwinID: twin, Signature: sig}, nil
}

// checkWindow tells whether unix time ts is within window of now.
func checkWindow(ts int64, now time.Time, window time.Duration) error {
	t := time.Unix(ts, 0)
	if d := now.Sub(t); d > window {
		return fmt.Errorf("%w: timestamp %d is %s old (limit %s)", ErrExpired, ts, d.Truncate(time.Second), window)
	}
	if d := t.Sub(now); d > window {
		return fmt.Errorf("%w: timestamp %d is %s in the future (limit %s)", ErrNotYetValid, ts, d.Truncate(time.Second), window)
	}
	return nil
}

// AccountChallenge returns the bytes an account-creation request signs (no
// twin exists yet): the ASCII text "<unix_ts>:<public_key_base64>" where
// the key is encoded in standard base64 with padding, exactly as it is sent
// in the request body's "public_key" field.
func AccountChallenge(unixTS int64, publicKey []byte) []byte {
	return []byte(strconv.FormatInt(unixTS, 10) + ":" + base64.StdEncoding.EncodeToString(publicKey))
}

// AccountSignature holds the signed fields of an account-creation request
// body: {"timestamp": Timestamp, "public_key": PublicKey, "signature":
// Signature}.
type AccountSignature struct {
	// Timestamp is the unix time (seconds) that was signed.
	Timestamp int64
	// PublicKey is the standard base64 of the 32-byte public key.
	PublicKey string
	// Signature is the standard base64 of the signature over
	// AccountChallenge(Timestamp, key).
	Signature string
}

// SignAccount signs an account-creation challenge for key at time now.
func SignAccount(key keys.KeyPair, now time.Time) (AccountSignature, error) {
	if key == nil {
		return AccountSignature{}, fmt.Errorf("auth: sign account: no key")
	}
	ts := now.Unix()
	pub := key.Public().Key
	sig, err := key.Sign(AccountChallenge(ts, pub))
	if err != nil {
		return AccountSignature{}, fmt.Errorf("auth: sign account challenge: %w", err)
	}
	return AccountSignature{
		Timestamp: ts,
		PublicKey: base64.StdEncoding.EncodeToString(pub),
		Signature: base64.StdEncoding.EncodeToString(sig),
	}, nil
}

// VerifyAccount checks an account-creation signature the way the public
// registrar does: the public key must be standard base64 of 32 bytes, the
// key must be sound (keys.CheckAnyPublicKey: not of small order, canonical),
// the timestamp within window of now (both directions; window <= 0 means
// DefaultAccountWindow), and the signature must verify over
// "<timestamp>:<public_key as sent>" with ed25519 or else sr25519. It returns
// the decoded key and the scheme that verified. Errors wrap ErrMalformed,
// ErrWeakKey, ErrExpired, ErrNotYetValid or ErrBadSignature.
func VerifyAccount(a AccountSignature, now time.Time, window time.Duration) ([]byte, keys.Scheme, error) {
	if window <= 0 {
		window = DefaultAccountWindow
	}
	pub, err := strictb64.Std(a.PublicKey)
	if err != nil || len(pub) != keys.PublicKeySize {
		return nil, "", fmt.Errorf("%w: public_key must be standard base64 of %d bytes", ErrMalformed, keys.PublicKeySize)
	}
	if err := keys.CheckAnyPublicKey(pub); err != nil {
		return nil, "", fmt.Errorf("%w: public_key: %w", ErrWeakKey, err)
	}
	if err := checkWindow(a.Timestamp, now, window); err != nil {
		return nil, "", err
	}
	sig, err := strictb64.Std(a.Signature)
	if err != nil {
		return nil, "", fmt.Errorf("%w: signature is not standard base64: %w", ErrMalformed, err)
	}
	msg := []byte(strconv.FormatInt(a.Timestamp, 10) + ":" + a.PublicKey)
	scheme, ok := keys.VerifyAny(pub, msg, sig)
	if !ok {
		return nil, "", fmt.Errorf("%w: account signature does not verify with ed25519 or sr25519", ErrBadSignature)
	}
	return pub, scheme, nil
}
