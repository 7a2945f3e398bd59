package auth

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grid4/grid4/keys"
)

// Field names of signed requests v2 (RFC 9421).
const (
	HeaderSignatureInput  = "Signature-Input"
	HeaderSignature       = "Signature"
	HeaderAcceptSignature = "Accept-Signature"
)

// Component identifiers this package can cover. Besides these derived
// components, any HTTP field can be covered by its lowercase name.
const (
	ComponentMethod        = "@method"
	ComponentAuthority     = "@authority"
	ComponentScheme        = "@scheme"
	ComponentTargetURI     = "@target-uri"
	ComponentRequestTarget = "@request-target"
	ComponentPath          = "@path"
	ComponentQuery         = "@query"
	ComponentContentDigest = "content-digest"
)

// Algorithm names for the alg signature parameter. "ed25519" is registered
// by RFC 9421 section 3.3.6; "sr25519" (Schnorr over Ristretto25519 with the
// "substrate" signing context) is grid4's own, unregistered, name.
const (
	AlgEd25519 = "ed25519"
	AlgSr25519 = "sr25519"
)

// DefaultLabel is the signature label the signer uses and the verifier
// prefers.
const DefaultLabel = "sig1"

// DefaultValidity is how long a signature made by Signer stays valid.
const DefaultValidity = 60 * time.Second

// Nonce length limits (characters) the verifier accepts.
const (
	MinNonceLength = 16
	MaxNonceLength = 128
)

// maxComponents bounds the covered components of one signature.
const maxComponents = 32

// RequiredComponents returns the components every v2 signature must cover,
// in the order Signer puts them.
func RequiredComponents() []string {
	return []string{ComponentMethod, ComponentPath, ComponentQuery, ComponentContentDigest}
}

// SignatureParams are the covered components and metadata parameters of one
// signature. Its serialization (Serialize) is both the value of the
// Signature-Input member and the last line of the signature base.
type SignatureParams struct {
	// Components are the covered component identifiers, in order: derived
	// components ("@method", ...) and lowercase field names.
	Components []string
	// Created and Expires are serialized as unix seconds; a zero time is
	// omitted.
	Created, Expires time.Time
	// Nonce, KeyID, Alg and Tag are serialized as strings when non-empty.
	Nonce, KeyID, Alg, Tag string
}

func (p SignatureParams) innerList() (sfInnerList, error) {
	var il sfInnerList
	for _, c := range p.Components {
		if err := checkComponentName(c); err != nil {
			return il, err
		}
		il.items = append(il.items, sfItem{bare: sfStr(c)})
	}
	if !p.Created.IsZero() {
		il.params = append(il.params, sfParam{"created", sfInt(p.Created.Unix())})
	}
	if !p.Expires.IsZero() {
		il.params = append(il.params, sfParam{"expires", sfInt(p.Expires.Unix())})
	}
	for _, kv := range [...]struct{ k, v string }{{"nonce", p.Nonce}, {"keyid", p.KeyID}, {"alg", p.Alg}, {"tag", p.Tag}} {
		if kv.v != "" {
			il.params = append(il.params, sfParam{kv.k, sfStr(kv.v)})
		}
	}
	return il, nil
}

// Serialize returns the RFC 8941 serialization of the parameters as an inner
// list, e.g. `("@method" "@path");created=1;expires=61;nonce="...";keyid="7";alg="ed25519"`.
func (p SignatureParams) Serialize() (string, error) {
	il, err := p.innerList()
	if err != nil {
		return "", err
	}
	var w strings.Builder
	if err := il.serialize(&w); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return w.String(), nil
}

// checkComponentName accepts the derived components this package supports
// and lowercase field names.
func checkComponentName(c string) error {
	if strings.HasPrefix(c, "@") {
		switch c {
		case ComponentMethod, ComponentAuthority, ComponentScheme, ComponentTargetURI,
			ComponentRequestTarget, ComponentPath, ComponentQuery:
			return nil
		}
		return fmt.Errorf("%w: unsupported derived component %q", ErrMalformed, c)
	}
	if c == "" {
		return fmt.Errorf("%w: empty component name", ErrMalformed)
	}
	for i := 0; i < len(c); i++ {
		if ch := c[i]; !isTChar(ch) || (ch >= 'A' && ch <= 'Z') {
			return fmt.Errorf("%w: component %q is not a lowercase field name", ErrMalformed, c)
		}
	}
	return nil
}

// SignatureBase returns the RFC 9421 section 2.5 signature base of r for p:
// one line `"<component>": <value>` per covered component, then
// `"@signature-params": <p serialized>`, joined by "\n" with no trailing
// newline. r may be an incoming server request (RequestURI set) or an
// outgoing client request.
func SignatureBase(r *http.Request, p SignatureParams) ([]byte, error) {
	il, err := p.innerList()
	if err != nil {
		return nil, err
	}
	return signatureBase(r, il)
}

// signatureBase builds the base from a (parsed or built) inner list; the
// last line is the inner list re-serialized.
func signatureBase(r *http.Request, il sfInnerList) ([]byte, error) {
	var b strings.Builder
	seen := make(map[string]bool, len(il.items))
	for _, it := range il.items {
		if it.bare.kind != sfString {
			return nil, fmt.Errorf("%w: covered component is not a string", ErrMalformed)
		}
		if len(it.params) > 0 {
			return nil, fmt.Errorf("%w: component parameters are not supported (on %q)", ErrMalformed, it.bare.str)
		}
		name := it.bare.str
		if err := checkComponentName(name); err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: component %q is covered twice", ErrMalformed, name)
		}
		seen[name] = true
		v, err := componentValue(r, name)
		if err != nil {
			return nil, err
		}
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("%w: value of %q contains a line break", ErrMalformed, name)
		}
		b.WriteByte('"')
		b.WriteString(name)
		b.WriteString(`": `)
		b.WriteString(v)
		b.WriteByte('\n')
	}
	b.WriteString(`"@signature-params": `)
	if err := il.serialize(&b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return []byte(b.String()), nil
}

// isServerRequest tells an incoming request (the server sets RequestURI,
// which a client request must leave empty) from an outgoing one.
func isServerRequest(r *http.Request) bool { return r.RequestURI != "" }

// requestTarget returns the origin-form request target (path and query as
// sent on the wire) and, for an absolute-form target, the URL it names.
func requestTarget(r *http.Request) (string, error) {
	var rt string
	if isServerRequest(r) {
		rt = r.RequestURI
	} else if r.URL != nil {
		rt = r.URL.RequestURI()
	}
	if rt == "" {
		return "/", nil
	}
	if rt[0] == '/' || rt == "*" {
		return rt, nil
	}
	u, err := url.Parse(rt)
	if err != nil {
		return "", fmt.Errorf("%w: request target: %w", ErrMalformed, err)
	}
	return u.RequestURI(), nil
}

func requestScheme(r *http.Request) string {
	if isServerRequest(r) {
		if r.TLS != nil {
			return "https"
		}
		return "http"
	}
	if r.URL != nil && r.URL.Scheme != "" {
		return strings.ToLower(r.URL.Scheme)
	}
	return "http"
}

func requestHost(r *http.Request) string {
	if r.Host != "" || isServerRequest(r) || r.URL == nil {
		return r.Host
	}
	return r.URL.Host
}

// authority normalizes the host per RFC 9110 section 4.2.3: lowercase, and
// the scheme's default port dropped.
func authority(r *http.Request) string {
	h := strings.ToLower(requestHost(r))
	switch requestScheme(r) {
	case "http":
		h = strings.TrimSuffix(h, ":80")
	case "https":
		h = strings.TrimSuffix(h, ":443")
	}
	return h
}

func componentValue(r *http.Request, name string) (string, error) {
	switch name {
	case ComponentMethod:
		if r.Method == "" {
			return http.MethodGet, nil
		}
		return r.Method, nil
	case ComponentAuthority:
		return authority(r), nil
	case ComponentScheme:
		return requestScheme(r), nil
	case ComponentRequestTarget:
		return requestTarget(r)
	case ComponentTargetURI:
		rt, err := requestTarget(r)
		if err != nil {
			return "", err
		}
		return requestScheme(r) + "://" + authority(r) + rt, nil
	case ComponentPath, ComponentQuery:
		rt, err := requestTarget(r)
		if err != nil {
			return "", err
		}
		path, query, _ := strings.Cut(rt, "?")
		if name == ComponentQuery {
			return "?" + query, nil
		}
		if path == "" {
			path = "/"
		}
		return path, nil
	case "host":
		if h := requestHost(r); h != "" {
			return h, nil
		}
		return "", fmt.Errorf("%w: covered field %q is absent", ErrBadSignature, name)
	}
	vals := r.Header.Values(name)
	if len(vals) == 0 {
		return "", fmt.Errorf("%w: covered field %q is absent", ErrBadSignature, name)
	}
	trimmed := make([]string, len(vals)) // Values aliases the header: don't modify it
	for i, v := range vals {
		trimmed[i] = strings.Trim(v, " \t")
	}
	return strings.Join(trimmed, ", "), nil
}

// Signer signs outgoing requests with signed requests v2. Its zero Validity,
// Now and Label mean DefaultValidity, time.Now and DefaultLabel.
type Signer struct {
	// Key signs; its scheme gives the alg parameter.
	Key keys.KeyPair
	// TwinID is sent as keyid.
	TwinID uint64
	// Components are covered in addition to RequiredComponents (duplicates
	// are dropped). Fields must be present in the request's Header (Go sets
	// Host and Content-Length itself: cover @authority instead).
	Components []string
	// Validity is expires - created.
	Validity time.Duration
	// Now is the clock.
	Now func() time.Time
	// Label names the signature in Signature-Input and Signature.
	Label string
}

// NewNonce returns a fresh nonce: 16 random bytes in unpadded base64url.
func NewNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Params returns the parameters Sign would use at time now, with a fresh
// nonce.
func (s *Signer) Params(now time.Time) (SignatureParams, error) {
	if s.Key == nil {
		return SignatureParams{}, fmt.Errorf("auth: signer has no key")
	}
	validity := s.Validity
	if validity <= 0 {
		validity = DefaultValidity
	}
	comps := RequiredComponents()
	for _, c := range s.Components {
		dup := false
		for _, have := range comps {
			dup = dup || have == c
		}
		if !dup {
			comps = append(comps, c)
		}
	}
	now = now.Truncate(time.Second)
	return SignatureParams{
		Components: comps,
		Created:    now,
		Expires:    now.Add(validity),
		Nonce:      NewNonce(),
		KeyID:      strconv.FormatUint(s.TwinID, 10),
		Alg:        string(s.Key.Scheme()),
	}, nil
}

// Sign sets Content-Digest (of body, which must be the request's exact
// body), Signature-Input and Signature on req, with a fresh nonce and
// created time. It modifies req: call it on your own request or a clone.
func (s *Signer) Sign(req *http.Request, body []byte) error {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	p, err := s.Params(now())
	if err != nil {
		return err
	}
	return SignWithParams(req, body, s.Key, s.Label, p)
}

// SignWithParams signs req with exactly the given parameters (label ""
// means DefaultLabel): it sets Content-Digest to the sha-256 digest of body,
// builds the signature base, signs it with key and sets Signature-Input and
// Signature. An empty p.Alg is filled from the key's scheme; a p.Alg that
// differs from it is an error. Signer.Sign calls it; tests and debugging
// tools use it for reproducible output.
func SignWithParams(req *http.Request, body []byte, key keys.KeyPair, label string, p SignatureParams) error {
	if key == nil {
		return fmt.Errorf("auth: sign: no key")
	}
	if label == "" {
		label = DefaultLabel
	}
	if !validKey(label) {
		return fmt.Errorf("auth: sign: invalid label %q", label)
	}
	if p.Alg == "" {
		p.Alg = string(key.Scheme())
	}
	if p.Alg != string(key.Scheme()) {
		return fmt.Errorf("auth: sign: alg %q does not match the %s key", p.Alg, key.Scheme())
	}
	if req.Header == nil {
		req.Header = make(http.Header)
	}
	req.Header.Set(HeaderContentDigest, ContentDigest(body))
	il, err := p.innerList()
	if err != nil {
		return fmt.Errorf("auth: sign: %w", err)
	}
	base, err := signatureBase(req, il)
	if err != nil {
		return fmt.Errorf("auth: sign: %w", err)
	}
	sig, err := key.Sign(base)
	if err != nil {
		return fmt.Errorf("auth: sign: %w", err)
	}
	input, err := sfDict{{key: label, isInner: true, inner: il}}.serialize()
	if err != nil {
		return fmt.Errorf("auth: sign: %w", err)
	}
	sigField, err := sfDict{{key: label, item: sfItem{bare: sfBytesOf(sig)}}}.serialize()
	if err != nil {
		return fmt.Errorf("auth: sign: %w", err)
	}
	req.Header.Set(HeaderSignatureInput, input)
	req.Header.Set(HeaderSignature, sigField)
	return nil
}
