package client

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
)

// defaultSigningTransport signs with the auth package: auth.Signer for
// AuthV2, auth.SignLegacy for AuthLegacy.
func defaultSigningTransport(base http.RoundTripper, key keys.KeyPair, twinID uint64, scheme AuthScheme, now func() time.Time) http.RoundTripper {
	return &signingTransport{base: base, key: key, twinID: twinID, scheme: scheme, now: now}
}

// signingTransport signs each request it sends, so every attempt (retry or
// redirect) carries a fresh signature, nonce and created time.
type signingTransport struct {
	base   http.RoundTripper
	key    keys.KeyPair
	twinID uint64
	scheme AuthScheme
	now    func() time.Time
}

// RoundTrip signs a clone of req and sends it through the base transport.
func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		// A RoundTripper must close the body, even on error; the clone
		// reads a fresh copy from GetBody.
		defer req.Body.Close()
	}
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, fmt.Errorf("client: cannot sign a request whose body cannot be re-read (no GetBody)")
		}
		rc, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("client: reading the body to sign: %w", err)
		}
		body, err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("client: reading the body to sign: %w", err)
		}
	}
	out := req.Clone(req.Context())
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
	}
	switch t.scheme {
	case AuthLegacy:
		v, err := auth.SignLegacy(t.key, t.twinID, t.now())
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		out.Header.Set(auth.HeaderXAuth, v)
	default:
		s := auth.Signer{Key: t.key, TwinID: t.twinID, Now: t.now}
		if err := s.Sign(out, body); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	return t.base.RoundTrip(out)
}
