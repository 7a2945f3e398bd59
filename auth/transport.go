package auth

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/grid4/grid4/keys"
)

// Transport is an http.RoundTripper that signs every request it sends: with
// signed requests v2 by default, with legacy X-Auth when Legacy is set.
//
// Each RoundTrip works on a clone of the request (the caller's request is
// never modified), reads the whole body to digest it (the caller's body is
// closed, as the RoundTripper contract requires), and signs with a fresh
// created time and nonce. A request sent again (http.Client redirects,
// retry libraries) thus gets a new signature every time. The clone's
// GetBody replays the buffered body so the base transport can resend it.
type Transport struct {
	// Base sends the signed requests (nil: http.DefaultTransport).
	Base http.RoundTripper
	// Signer holds the key, twin id, extra components, validity and clock.
	Signer Signer
	// Legacy signs with X-Auth instead of v2 (Signer.Key, Signer.TwinID
	// and Signer.Now are used; the body is not covered).
	Legacy bool
}

// NewTransport returns a v2 signing transport over base (nil:
// http.DefaultTransport) for twinID with key.
func NewTransport(base http.RoundTripper, key keys.KeyPair, twinID uint64) *Transport {
	return &Transport{Base: base, Signer: Signer{Key: key, TwinID: twinID}}
}

// NewClient returns an http.Client whose requests are signed with v2.
func NewClient(key keys.KeyPair, twinID uint64) *http.Client {
	return &http.Client{Transport: NewTransport(nil, key, twinID)}
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := readRequestBody(req)
	if err != nil {
		return nil, fmt.Errorf("auth: reading request body: %w", err)
	}
	r2 := req.Clone(req.Context())
	if r2.Header == nil {
		r2.Header = make(http.Header)
	}
	if body == nil {
		r2.Body, r2.GetBody, r2.ContentLength = nil, nil, 0
		if req.Body == http.NoBody {
			r2.Body = http.NoBody
		}
	} else {
		r2.Body = io.NopCloser(bytes.NewReader(body))
		r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r2.ContentLength = int64(len(body))
	}

	if t.Legacy {
		now := time.Now
		if t.Signer.Now != nil {
			now = t.Signer.Now
		}
		v, err := SignLegacy(t.Signer.Key, t.Signer.TwinID, now())
		if err != nil {
			return nil, err
		}
		r2.Header.Set(HeaderXAuth, v)
	} else if err := t.Signer.Sign(r2, body); err != nil {
		return nil, err
	}

	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r2)
}

// readRequestBody returns the request's body bytes and closes req.Body. It
// prefers GetBody (a fresh copy) so a request resent by a client reads the
// full body again even though a previous attempt consumed req.Body.
func readRequestBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	src := io.Reader(req.Body)
	if req.GetBody != nil {
		rc, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		src = rc
	}
	b, err := io.ReadAll(src)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	return b, nil
}
