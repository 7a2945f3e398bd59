package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/keys"
)

// Defaults of Config.
const (
	DefaultClockSkew    = 5 * time.Second
	DefaultMaxValidity  = 5 * time.Minute
	DefaultMaxBodyBytes = 1 << 20
)

// Authentication methods reported in Caller.Method.
const (
	MethodV2     = "v2"
	MethodLegacy = "legacy"
)

// TwinKeys looks up the public key of a twin. Implementations return an
// error wrapping ErrUnknownTwin when no such twin exists; any other error is
// treated as a server failure (500).
type TwinKeys interface {
	TwinPublicKey(ctx context.Context, twinID uint64) ([]byte, error)
}

// TwinKeysFunc adapts a function to TwinKeys.
type TwinKeysFunc func(ctx context.Context, twinID uint64) ([]byte, error)

// TwinPublicKey calls f.
func (f TwinKeysFunc) TwinPublicKey(ctx context.Context, twinID uint64) ([]byte, error) {
	return f(ctx, twinID)
}

// Caller is the authenticated identity of a request.
type Caller struct {
	// TwinID is the twin that signed the request.
	TwinID uint64
	// Scheme is the key scheme whose signature verified.
	Scheme keys.Scheme
	// Method is MethodV2 or MethodLegacy.
	Method string
	// Nonce, under Policy.DeferNonce, is the record the route must keep
	// against replay with its write (nil: none to keep).
	Nonce *Nonce
}

// Nonce is what a request is recorded under against replay, in the
// Config.Nonces store: the nonce of a signed request v2 under its keyid,
// or the fingerprint of a legacy X-Auth request under its twin.
type Nonce struct {
	KeyID, Value string
	// Expires is when the record may go: the request no longer verifies
	// then.
	Expires time.Time
	kind    nonceKind
}

// nonceKind is what a Nonce records, for the words of its refusal.
type nonceKind int

const (
	nonceV2         nonceKind = iota // the nonce of a signed request v2
	nonceLegacy                      // an X-Auth request (method, path, body)
	nonceLegacyOnce                  // an X-Auth challenge (LegacyOnce)
)

// Replay is the refusal of a request whose nonce was recorded before, as
// the verifier itself refuses it (wrapping ErrReplay).
func (n *Nonce) Replay() error {
	switch n.kind {
	case nonceLegacy:
		return fmt.Errorf("%w: this X-Auth request was already accepted; sign each request anew", ErrReplay)
	case nonceLegacyOnce:
		return fmt.Errorf("%w: this X-Auth challenge was already used on a route that takes each once; sign each request anew", ErrReplay)
	}
	return fmt.Errorf("%w: nonce %q already used by keyid %s", ErrReplay, n.Value, n.KeyID)
}

// use records n in the nonce store.
func (v *Verifier) use(ctx context.Context, n *Nonce) error {
	if err := v.c.Nonces.UseNonce(ctx, n.KeyID, n.Value, n.Expires); err != nil {
		if errors.Is(err, ErrReplay) {
			return n.Replay()
		}
		return fmt.Errorf("auth: nonce store: %w", err)
	}
	return nil
}

// record records n now, or under p.DeferNonce puts it in c for the route.
func (v *Verifier) record(ctx context.Context, p Policy, c Caller, n *Nonce) (Caller, error) {
	if p.DeferNonce {
		c.Nonce = n
		return c, nil
	}
	if err := v.use(ctx, n); err != nil {
		return Caller{}, err
	}
	return c, nil
}

type callerKey struct{}

// WithCaller returns ctx carrying c (the middleware does this; tests of
// handlers can too).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller the middleware authenticated, if any.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// Config configures a Verifier. Zero durations and sizes mean the defaults.
type Config struct {
	// Keys resolves twin ids to public keys. Required.
	Keys TwinKeys
	// Nonces remembers v2 nonces (and legacy requests when
	// LegacyReplayGuard is set). nil means a MemoryNonceStore private to
	// the verifier, which only protects a single process.
	Nonces NonceStore
	// DisableLegacy refuses X-Auth with 401 (ErrLegacyDisabled).
	DisableLegacy bool
	// LegacyReplayGuard refuses a legacy request whose decoded challenge
	// (twin and second), method, decoded path and body digest were already
	// accepted within the legacy window (see legacyFingerprint).
	LegacyReplayGuard bool
	// LegacyWindow bounds |now - X-Auth timestamp| (DefaultLegacyWindow).
	LegacyWindow time.Duration
	// ClockSkew is how far in the future a v2 created time may be
	// (DefaultClockSkew). Nonces are also kept this long after expiry.
	ClockSkew time.Duration
	// MaxValidity bounds expires - created of a v2 signature
	// (DefaultMaxValidity).
	MaxValidity time.Duration
	// MaxBodyBytes caps the body of authenticated requests
	// (DefaultMaxBodyBytes); larger bodies get 413.
	MaxBodyBytes int64
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger receives a debug record for every refused request (nil: none).
	Logger *slog.Logger
}

// Verifier checks signed requests of both schemes. It is safe for
// concurrent use.
type Verifier struct {
	c        Config
	prepared *preparedKeys
}

// NewVerifier returns a verifier for c, filling in defaults.
func NewVerifier(c Config) (*Verifier, error) {
	if c.Keys == nil {
		return nil, errors.New("auth: Config.Keys is required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Nonces == nil {
		c.Nonces = NewMemoryNonceStore(0, c.Now)
	}
	if c.LegacyWindow <= 0 {
		c.LegacyWindow = DefaultLegacyWindow
	}
	if c.ClockSkew <= 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.MaxValidity <= 0 {
		c.MaxValidity = DefaultMaxValidity
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{c: c, prepared: newPreparedKeys(maxPreparedKeys)}, nil
}

// HasCredentials reports whether r carries authentication headers of either
// scheme (Signature-Input, Signature or X-Auth).
func HasCredentials(r *http.Request) bool {
	// By the canonical keys (Header.Get would canonicalize each on every
	// request, most of which carry none of them).
	h := r.Header
	return firstValue(h[canonicalSignatureInput]) != "" || firstValue(h[canonicalSignature]) != "" ||
		firstValue(h[canonicalXAuth]) != ""
}

// The canonical keys of the credential headers.
var (
	canonicalSignatureInput = http.CanonicalHeaderKey(HeaderSignatureInput)
	canonicalSignature      = http.CanonicalHeaderKey(HeaderSignature)
	canonicalXAuth          = http.CanonicalHeaderKey(HeaderXAuth)
)

// firstValue is what Header.Get answers for the values of a key.
func firstValue(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// Policy tightens verification for one kind of route (see VerifyPolicy).
// The zero Policy is what Verify applies.
type Policy struct {
	// NoLegacy refuses X-Auth (ErrLegacyDisabled) whatever
	// Config.DisableLegacy says: for routes that need a signature over the
	// method, target and body.
	NoLegacy bool
	// LegacyOnce accepts each X-Auth challenge (twin and second) once on
	// every route with this policy, whatever the method, target and body,
	// so a captured header cannot be reused with another body. It applies
	// even when Config.LegacyReplayGuard is off.
	LegacyOnce bool
	// ReadOnly checks the credentials (signature, window, key) but records
	// no nonce and no legacy request: for safe methods on routes that need
	// no credentials, where a replay gains nothing.
	ReadOnly bool
	// DeferNonce leaves the request's record against replay to the route
	// (Caller.Nonce), which keeps it in the nonce store with its own write,
	// in one round trip, and answers Nonce.Replay when it was kept before.
	// A request refused before that write is not recorded, so its replay
	// is refused the same way. It does not apply to LegacyOnce.
	DeferNonce bool
	// Require lists components a v2 signature must cover in addition to
	// RequiredComponents (header fields in lower case, or derived
	// components): for routes that bind a request to a field, such as
	// its target. It does not apply to X-Auth, which covers no field
	// (combine it with NoLegacy).
	Require []string
}

// Verify authenticates r: signed requests v2 when Signature-Input is
// present, else legacy X-Auth. On success the body has been read (up to
// MaxBodyBytes) and r.Body replaced by an in-memory copy. Errors wrap the
// package's sentinels; HTTPStatus maps them to status codes.
func (v *Verifier) Verify(r *http.Request) (Caller, error) {
	return v.VerifyPolicy(r, Policy{})
}

// VerifyPolicy is Verify under policy p.
func (v *Verifier) VerifyPolicy(r *http.Request, p Policy) (Caller, error) {
	switch {
	case r.Header.Get(HeaderSignatureInput) != "":
		return v.verifyV2(r, p)
	case r.Header.Get(HeaderSignature) != "":
		return Caller{}, fmt.Errorf("%w: Signature without Signature-Input", ErrMalformed)
	case r.Header.Get(HeaderXAuth) != "":
		if v.c.DisableLegacy {
			return Caller{}, ErrLegacyDisabled
		}
		if p.NoLegacy {
			return Caller{}, fmt.Errorf("%w: X-Auth is refused on this route", ErrLegacyDisabled)
		}
		return v.verifyLegacy(r, p)
	}
	if v.c.DisableLegacy || p.NoLegacy {
		// Suggesting X-Auth where it is refused would send the caller
		// from one 401 to the next.
		return Caller{}, fmt.Errorf("%w: sign the request (Signature-Input and Signature, RFC 9421)", ErrNoCredentials)
	}
	return Caller{}, fmt.Errorf("%w: sign the request (Signature-Input and Signature, RFC 9421) or send X-Auth", ErrNoCredentials)
}

// readBody reads the whole body under the cap and puts a copy back.
func (v *Verifier) readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > v.c.MaxBodyBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBodyTooLarge, r.ContentLength, v.c.MaxBodyBytes)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, v.c.MaxBodyBytes+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: %w", ErrBodyTooLarge, err)
		}
		return nil, fmt.Errorf("%w: reading body: %w", ErrMalformed, err)
	}
	if int64(len(body)) > v.c.MaxBodyBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, v.c.MaxBodyBytes)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// lookupKey fetches the twin's key; errors other than unknown twin are
// server failures.
func (v *Verifier) lookupKey(ctx context.Context, twinID uint64) ([]byte, error) {
	pub, err := v.c.Keys.TwinPublicKey(ctx, twinID)
	if errors.Is(err, ErrUnknownTwin) {
		return nil, fmt.Errorf("twin %d: %w", twinID, err)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: looking up key of twin %d: %w", twinID, err)
	}
	if len(pub) != keys.PublicKeySize {
		return nil, fmt.Errorf("auth: stored key of twin %d is %d bytes, want %d", twinID, len(pub), keys.PublicKeySize)
	}
	return pub, nil
}

// legacyFingerprint identifies a legacy request by what it means rather than
// how it is spelled: the decoded challenge (twin and second), the method,
// the decoded path and the body's SHA-256. The header's text is left out
// (base64 has other spellings of the same bytes) and so is the signature (a
// second valid signature of the same challenge, as sr25519's randomized
// signing gives, is the same request again); so is the query, which no
// authenticated route reads.
func legacyFingerprint(h LegacyHeader, method, path string, body []byte) []byte {
	bodySum := sha256.Sum256(body)
	f := sha256.New()
	f.Write(h.Challenge)
	f.Write([]byte{0})
	f.Write([]byte(method))
	f.Write([]byte{0})
	f.Write([]byte(path))
	f.Write([]byte{0})
	f.Write(bodySum[:])
	return f.Sum(nil)
}

// legacyNonce is the record of a legacy request under key until the
// window has passed.
func (v *Verifier) legacyNonce(h LegacyHeader, space string, key []byte) *Nonce {
	n := &Nonce{
		KeyID:   space + strconv.FormatUint(h.TwinID, 10),
		Value:   hex.EncodeToString(key),
		Expires: time.Unix(h.Timestamp, 0).Add(v.c.LegacyWindow + time.Second),
		kind:    nonceLegacy,
	}
	if space == "x-auth-once:" {
		n.kind = nonceLegacyOnce
	}
	return n
}

func (v *Verifier) verifyLegacy(r *http.Request, p Policy) (Caller, error) {
	raw := r.Header.Get(HeaderXAuth)
	h, err := ParseLegacyHeader(raw)
	if err != nil {
		return Caller{}, err
	}
	now := v.c.Now()
	if err := checkWindow(h.Timestamp, now, v.c.LegacyWindow); err != nil {
		return Caller{}, err
	}
	pub, err := v.lookupKey(r.Context(), h.TwinID)
	if err != nil {
		return Caller{}, err
	}
	scheme, ok := v.verifyAny(pub, h.Challenge, h.Signature)
	if !ok {
		return Caller{}, fmt.Errorf("%w: X-Auth signature does not verify with the key of twin %d", ErrBadSignature, h.TwinID)
	}
	body, err := v.readBody(r)
	if err != nil {
		return Caller{}, err
	}
	c := Caller{TwinID: h.TwinID, Scheme: scheme, Method: MethodLegacy}
	switch {
	case p.ReadOnly:
	case p.LegacyOnce:
		// Once per challenge (twin and second) on these routes, whatever
		// the method, target and body: X-Auth signs none of them.
		if err := v.use(r.Context(), v.legacyNonce(h, "x-auth-once:", h.Challenge)); err != nil {
			return Caller{}, err
		}
	case v.c.LegacyReplayGuard:
		return v.record(r.Context(), p, c, v.legacyNonce(h, "x-auth:", legacyFingerprint(h, r.Method, r.URL.Path, body)))
	}
	return c, nil
}

// joinedField returns all lines of a field joined as RFC 9110 allows.
func joinedField(r *http.Request, name string) string {
	return strings.Join(r.Header.Values(name), ", ")
}

// v2Signature is the selected signature of a request.
type v2Signature struct {
	label  string
	input  sfInnerList
	sig    []byte
	keyID  string
	twinID uint64
	alg    string
	nonce  string
	create time.Time
	expire time.Time
}

// parseV2 parses and syntactically checks Signature-Input and Signature.
func parseV2(r *http.Request) (v2Signature, error) {
	var s v2Signature
	inputs, err := parseSFDictionary(joinedField(r, HeaderSignatureInput))
	if err != nil {
		return s, fmt.Errorf("%w: Signature-Input: %w", ErrMalformed, err)
	}
	sigs, err := parseSFDictionary(joinedField(r, HeaderSignature))
	if err != nil {
		return s, fmt.Errorf("%w: Signature: %w", ErrMalformed, err)
	}
	var in sfMember
	if m, ok := inputs.get(DefaultLabel); ok {
		in = m
	} else if len(inputs) == 1 {
		in = inputs[0]
	} else {
		return s, fmt.Errorf("%w: Signature-Input must have a %q member or exactly one member", ErrMalformed, DefaultLabel)
	}
	s.label = in.key
	if !in.isInner {
		return s, fmt.Errorf("%w: Signature-Input member %q is not an inner list", ErrMalformed, s.label)
	}
	s.input = in.inner
	sm, ok := sigs.get(s.label)
	if !ok {
		return s, fmt.Errorf("%w: Signature has no member %q", ErrMalformed, s.label)
	}
	if sm.isInner || sm.item.bare.kind != sfBytes {
		return s, fmt.Errorf("%w: Signature member %q is not a byte sequence", ErrMalformed, s.label)
	}
	s.sig = sm.item.bare.b
	if len(s.input.items) > maxComponents {
		return s, fmt.Errorf("%w: more than %d covered components", ErrMalformed, maxComponents)
	}

	var haveCreated, haveExpires bool
	for _, p := range s.input.params {
		switch p.key {
		case "created", "expires":
			if p.val.kind != sfInteger || p.val.num < 0 {
				return s, fmt.Errorf("%w: %s must be a non-negative integer", ErrMalformed, p.key)
			}
			if p.key == "created" {
				s.create, haveCreated = time.Unix(p.val.num, 0), true
			} else {
				s.expire, haveExpires = time.Unix(p.val.num, 0), true
			}
		case "nonce", "keyid", "alg", "tag":
			if p.val.kind != sfString {
				return s, fmt.Errorf("%w: %s must be a string", ErrMalformed, p.key)
			}
			switch p.key {
			case "nonce":
				s.nonce = p.val.str
			case "keyid":
				s.keyID = p.val.str
			case "alg":
				s.alg = p.val.str
			}
		default:
			return s, fmt.Errorf("%w: unknown signature parameter %q", ErrMalformed, p.key)
		}
	}
	switch {
	case !haveCreated:
		return s, fmt.Errorf("%w: missing created parameter", ErrMalformed)
	case !haveExpires:
		return s, fmt.Errorf("%w: missing expires parameter", ErrMalformed)
	case s.keyID == "":
		return s, fmt.Errorf("%w: missing keyid parameter", ErrMalformed)
	case s.alg == "":
		return s, fmt.Errorf("%w: missing alg parameter", ErrMalformed)
	case s.nonce == "":
		return s, fmt.Errorf("%w: missing nonce parameter", ErrMalformed)
	case len(s.nonce) < MinNonceLength || len(s.nonce) > MaxNonceLength:
		return s, fmt.Errorf("%w: nonce must be %d to %d characters", ErrMalformed, MinNonceLength, MaxNonceLength)
	case !s.expire.After(s.create):
		return s, fmt.Errorf("%w: expires must be after created", ErrMalformed)
	}
	return s, nil
}

func (v *Verifier) verifyV2(r *http.Request, p Policy) (Caller, error) {
	s, err := parseV2(r)
	if err != nil {
		return Caller{}, err
	}
	covered := make(map[string]bool, len(s.input.items))
	for _, it := range s.input.items {
		if it.bare.kind != sfString {
			return Caller{}, fmt.Errorf("%w: covered component is not a string", ErrMalformed)
		}
		covered[it.bare.str] = true
	}
	for _, c := range RequiredComponents() {
		if !covered[c] {
			return Caller{}, fmt.Errorf("%w: %q is not covered (need %s)", ErrInsufficientCoverage, c, strings.Join(RequiredComponents(), " "))
		}
	}
	for _, c := range p.Require {
		if !covered[c] {
			return Caller{}, fmt.Errorf("%w: %q is not covered (this route needs it)", ErrInsufficientCoverage, c)
		}
	}
	if s.alg != AlgEd25519 && s.alg != AlgSr25519 {
		return Caller{}, fmt.Errorf("%w: %q (want %s or %s)", ErrUnsupportedAlgorithm, s.alg, AlgEd25519, AlgSr25519)
	}
	twin, err := strconv.ParseUint(s.keyID, 10, 64)
	if err != nil || strconv.FormatUint(twin, 10) != s.keyID {
		return Caller{}, fmt.Errorf("%w: keyid %q is not a twin id", ErrUnknownTwin, s.keyID)
	}
	s.twinID = twin

	now := v.c.Now()
	switch {
	case s.create.Sub(now) > v.c.ClockSkew:
		return Caller{}, fmt.Errorf("%w: created is %s in the future (allowed skew %s)", ErrNotYetValid, s.create.Sub(now).Truncate(time.Second), v.c.ClockSkew)
	case now.After(s.expire):
		return Caller{}, fmt.Errorf("%w: expired %s ago", ErrExpired, now.Sub(s.expire).Truncate(time.Second))
	case s.expire.Sub(s.create) > v.c.MaxValidity:
		return Caller{}, fmt.Errorf("%w: %s, limit %s", ErrValidityTooLong, s.expire.Sub(s.create), v.c.MaxValidity)
	}

	digestField := joinedField(r, HeaderContentDigest)
	digests, err := ParseContentDigest(digestField)
	if err != nil {
		return Caller{}, err
	}

	base, err := signatureBase(r, s.input)
	if err != nil {
		return Caller{}, err
	}
	pub, err := v.lookupKey(r.Context(), s.twinID)
	if err != nil {
		return Caller{}, err
	}
	if !v.verifyScheme(keys.Scheme(s.alg), pub, base, s.sig) {
		return Caller{}, fmt.Errorf("%w: %s signature does not verify with the key of twin %d", ErrBadSignature, s.alg, s.twinID)
	}

	body, err := v.readBody(r)
	if err != nil {
		return Caller{}, err
	}
	if err := checkDigests(digests, body); err != nil {
		return Caller{}, err
	}

	c := Caller{TwinID: s.twinID, Scheme: keys.Scheme(s.alg), Method: MethodV2}
	if p.ReadOnly {
		return c, nil
	}
	return v.record(r.Context(), p, c, &Nonce{
		KeyID:   s.keyID,
		Value:   s.nonce,
		Expires: s.expire.Add(v.c.ClockSkew),
		kind:    nonceV2,
	})
}
