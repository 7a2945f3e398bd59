// Package client is the Go client of the grid4 registrar: one typed method
// per route of its HTTP API (/api/v1), used by the node daemon, by gridctl
// and by scripts.
//
// A Client without identity can read (accounts, farms, nodes, versions).
// Changes are signed with the client's key pair (WithIdentity): with signed
// requests v2 (RFC 9421 HTTP message signatures, the default) or with the
// legacy X-Auth header of the public Grid v4 registrar (WithAuthScheme).
// The signature names the caller's twin; when the client is not told its
// twin id it looks it up by public key on first use.
//
// Errors wrap sentinels callers can branch on with errors.Is: ErrNotFound,
// ErrConflict, ErrUnauthorized, ErrInvalid, ErrRateLimited, ErrServer (the
// registrar answered; errors.As gives the *APIError with the server's
// message) and ErrUnreachable (it did not). Calls are retried with
// exponential backoff and full jitter on network errors, 5xx and 429 (see
// RetryPolicy); every attempt is signed anew.
//
// A Client is safe for concurrent use.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/grid4/grid4/internal/ctxsleep"
	"github.com/grid4/grid4/keys"
)

// APIPrefix is the path prefix of the registrar's API. New appends it to a
// base URL that has no path.
const APIPrefix = "/api/v1"

// DefaultPageSize is the page size of the list iterators: the largest the
// registrar serves.
const DefaultPageSize = 100

// maxResponseBytes caps how much of a response body the client reads.
const maxResponseBytes = 16 << 20

// AuthScheme selects how the client signs its requests.
type AuthScheme int

const (
	// AuthV2 signs with HTTP message signatures (RFC 9421): Signature-Input,
	// Signature and Content-Digest covering method, path, query and body,
	// with a fresh nonce on every attempt. It is the default.
	AuthV2 AuthScheme = iota
	// AuthLegacy signs with the X-Auth header of the public Grid v4
	// registrar ("<b64 ts:twin>:<b64 signature>"). It does not cover the
	// request body; use it only with registrars that lack AuthV2.
	AuthLegacy
)

// String returns "v2" or "legacy".
func (s AuthScheme) String() string {
	switch s {
	case AuthV2:
		return "v2"
	case AuthLegacy:
		return "legacy"
	}
	return fmt.Sprintf("AuthScheme(%d)", int(s))
}

// SigningTransport wraps base in a RoundTripper that signs every request it
// sends for twinID with key, under scheme, reading the time from now. It
// must sign each call of RoundTrip afresh (a retry or redirect is a new
// call) and read the body through Request.GetBody. See WithSigningTransport.
type SigningTransport func(base http.RoundTripper, key keys.KeyPair, twinID uint64, scheme AuthScheme, now func() time.Time) http.RoundTripper

// Option configures a Client in New.
type Option func(*Client) error

// WithIdentity makes the client sign as key. twinID is the key's twin on
// the registrar; zero means unknown: the client looks it up by public key
// (GET /accounts?public_key=) on the first signed call, or learns it from
// CreateAccount or EnsureAccount.
func WithIdentity(key keys.KeyPair, twinID uint64) Option {
	return func(c *Client) error {
		if key == nil {
			return fmt.Errorf("client: WithIdentity: nil key pair")
		}
		if n := len(key.Public().Key); n != keys.PublicKeySize {
			return fmt.Errorf("client: WithIdentity: public key is %d bytes, want %d", n, keys.PublicKeySize)
		}
		c.key, c.twinID = key, twinID
		return nil
	}
}

// WithAuthScheme selects the signature scheme (AuthV2 by default).
func WithAuthScheme(s AuthScheme) Option {
	return func(c *Client) error {
		if s != AuthV2 && s != AuthLegacy {
			return fmt.Errorf("client: WithAuthScheme: unknown scheme %d", int(s))
		}
		c.scheme = s
		return nil
	}
}

// WithHTTPClient sends requests through hc's Transport with hc's Timeout
// (per attempt). Its CheckRedirect and Jar are kept too.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return fmt.Errorf("client: WithHTTPClient: nil client")
		}
		c.base = hc.Transport
		c.timeout = hc.Timeout
		c.checkRedirect = hc.CheckRedirect
		c.jar = hc.Jar
		return nil
	}
}

// WithTransport sends requests through rt (http.DefaultTransport by
// default). Signing happens above it.
func WithTransport(rt http.RoundTripper) Option {
	return func(c *Client) error {
		if rt == nil {
			return fmt.Errorf("client: WithTransport: nil transport")
		}
		c.base = rt
		return nil
	}
}

// WithSigningTransport replaces the layer that signs requests (by default
// the auth package's signer). Tests and special deployments use it.
func WithSigningTransport(st SigningTransport) Option {
	return func(c *Client) error {
		if st == nil {
			return fmt.Errorf("client: WithSigningTransport: nil function")
		}
		c.signing = st
		return nil
	}
}

// WithRetry sets the retry policy; fields left zero take their defaults.
// RetryPolicy{MaxAttempts: 1} disables retries.
func WithRetry(p RetryPolicy) Option {
	return func(c *Client) error {
		c.retry = p.withDefaults()
		return nil
	}
}

// WithClock sets the clock used for signatures, account-creation and
// uptime timestamps and HTTP-date Retry-After values (time.Now by default).
func WithClock(now func() time.Time) Option {
	return func(c *Client) error {
		if now == nil {
			return fmt.Errorf("client: WithClock: nil clock")
		}
		c.now = now
		return nil
	}
}

// WithSleep sets how the client waits between attempts. sleep must return
// early with ctx.Err() when ctx ends. The default uses a timer.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(c *Client) error {
		if sleep == nil {
			return fmt.Errorf("client: WithSleep: nil function")
		}
		c.sleep = sleep
		return nil
	}
}

// WithJitter sets how a backoff wait is drawn from its cap: jitter(limit)
// must return a duration in [0, limit]. The default is uniform ("full
// jitter"); tests pass a deterministic function.
func WithJitter(jitter func(limit time.Duration) time.Duration) Option {
	return func(c *Client) error {
		if jitter == nil {
			return fmt.Errorf("client: WithJitter: nil function")
		}
		c.jitter = jitter
		return nil
	}
}

// WithUserAgent sets the User-Agent header (default "grid4-client").
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		c.userAgent = ua
		return nil
	}
}

// Client talks to one registrar. Create it with New.
type Client struct {
	baseURL       *url.URL
	base          http.RoundTripper
	timeout       time.Duration
	checkRedirect func(*http.Request, []*http.Request) error
	jar           http.CookieJar
	signing       SigningTransport
	key           keys.KeyPair
	scheme        AuthScheme
	retry         RetryPolicy
	now           func() time.Time
	sleep         func(context.Context, time.Duration) error
	jitter        func(time.Duration) time.Duration
	userAgent     string
	plain         *http.Client

	mu     sync.Mutex
	twinID uint64
}

// New returns a client of the registrar at baseURL, e.g.
// "https://registrar.example.org". When baseURL has no path, APIPrefix
// ("/api/v1") is appended; a path ending in "/v1" (such as "/api/v1" or the
// public registrar's "/v1") is used as given.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		baseURL:   u,
		base:      http.DefaultTransport,
		signing:   defaultSigningTransport,
		retry:     RetryPolicy{}.withDefaults(),
		now:       time.Now,
		sleep:     ctxsleep.Sleep,
		jitter:    fullJitter,
		userAgent: "grid4-client",
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if c.base == nil {
		c.base = http.DefaultTransport
	}
	c.plain = c.httpClient(markNetwork(c.base))
	return c, nil
}

// parseBaseURL checks a registrar URL and adds APIPrefix when it has no
// path.
func parseBaseURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidURL)
	}
	raw = strings.TrimSpace(raw)
	if !strings.Contains(raw, "://") {
		return nil, fmt.Errorf("%w %q: it must start with http:// or https://", ErrInvalidURL, raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidURL, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%w %q: the scheme must be http or https", ErrInvalidURL, raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w %q: no host", ErrInvalidURL, raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w %q: a query or fragment is not allowed", ErrInvalidURL, raw)
	}
	u.User = nil
	u.RawPath = ""
	u.Path = strings.TrimRight(u.Path, "/")
	if u.Path == "" {
		u.Path = APIPrefix
	}
	return u, nil
}

// httpClient returns an http.Client over rt with the configured timeout,
// redirect policy and jar.
func (c *Client) httpClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, Timeout: c.timeout, CheckRedirect: c.checkRedirect, Jar: c.jar}
}

// BaseURL returns the API base URL the client sends to, e.g.
// "http://127.0.0.1:8080/api/v1".
func (c *Client) BaseURL() string { return c.baseURL.String() }

// Origin returns the registrar's scheme and host, e.g.
// "http://127.0.0.1:8080", for messages.
func (c *Client) Origin() string { return c.baseURL.Scheme + "://" + c.baseURL.Host }

// AuthScheme returns the scheme the client signs with.
func (c *Client) AuthScheme() AuthScheme { return c.scheme }

// KeyPair returns the client's key pair, or nil when it has none.
func (c *Client) KeyPair() keys.KeyPair { return c.key }

// PublicKey returns the standard base64 of the client's public key, as the
// registrar stores it, or "" when the client has no key.
func (c *Client) PublicKey() string {
	if c.key == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(c.key.Public().Key)
}

// KnownTwinID returns the twin id the client signs as, or zero when it has
// not been given or looked up yet. It makes no request.
func (c *Client) KnownTwinID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.twinID
}

// setTwinID records the client's twin id.
func (c *Client) setTwinID(id uint64) {
	c.mu.Lock()
	c.twinID = id
	c.mu.Unlock()
}

// TwinID returns the client's twin id, looking it up by public key the
// first time when it was not given. It fails with ErrNoIdentity when the
// client has no key and with ErrNoAccount when the key has no account.
func (c *Client) TwinID(ctx context.Context) (uint64, error) {
	if c.key == nil {
		return 0, ErrNoIdentity
	}
	if id := c.KnownTwinID(); id != 0 {
		return id, nil
	}
	acc, err := c.AccountByPublicKey(ctx, c.key.Public().Key)
	if errors.Is(err, ErrNotFound) {
		return 0, fmt.Errorf("%w (public key %s)", ErrNoAccount, c.PublicKey())
	}
	if err != nil {
		return 0, fmt.Errorf("looking up the twin of the client's key: %w", err)
	}
	c.setTwinID(acc.TwinID)
	return acc.TwinID, nil
}

// request describes one registrar call.
type request struct {
	method string
	path   string // after the base URL, starting with "/"
	query  url.Values
	in     any // JSON-encoded as the body when non-nil
	// build, when set, makes the body anew for each attempt (for bodies
	// holding a timestamp or a signature); it overrides in.
	build  func() (any, error)
	signed bool // sign with the client's identity
	out    any  // decoded from a 2xx body when non-nil
}

// do performs r with retries and decodes the answer into r.out.
func (c *Client) do(ctx context.Context, r request) error {
	var body []byte
	encode := func() error {
		in := r.in
		if r.build != nil {
			var err error
			if in, err = r.build(); err != nil {
				return fmt.Errorf("%s %s: %w", r.method, r.path, err)
			}
		}
		if in == nil {
			return nil
		}
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", r.method, r.path, err)
		}
		return nil
	}
	hc := c.plain
	if r.signed {
		twin, err := c.TwinID(ctx)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.method, r.path, err)
		}
		hc = c.httpClient(c.signing(markNetwork(c.base), c.key, twin, c.scheme, c.now))
	}
	u := *c.baseURL
	u.Path = c.baseURL.Path + r.path
	u.RawQuery = r.query.Encode()
	target := u.String()

	var lastErr error
	for attempt := 1; ; attempt++ {
		if attempt == 1 || r.build != nil {
			if err := encode(); err != nil {
				return err
			}
		}
		v := c.attempt(ctx, hc, r, target, body)
		if v.err == nil {
			return nil
		}
		lastErr = v.err
		if !v.retry || attempt >= c.retry.MaxAttempts {
			return lastErr
		}
		wait := v.retryAfter
		if !v.hasRetryAfter {
			wait = min(max(c.jitter(c.retry.backoffCap(attempt)), 0), c.retry.backoffCap(attempt))
		}
		if r.signed && c.scheme == AuthLegacy && wait < time.Second {
			// X-Auth has a one-second resolution: a retry within the same
			// second would send the very same header, which a replay
			// guard refuses.
			wait = time.Second
		}
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s %s: %w (while waiting to retry after: %v)", r.method, r.path, err, lastErr)
		}
	}
}

// verdict is the outcome of one attempt.
type verdict struct {
	err           error         // nil on success
	retry         bool          // the failure may be retried
	retryAfter    time.Duration // the server's Retry-After, when hasRetryAfter
	hasRetryAfter bool
}

// final is a failure that is not retried.
func final(err error) verdict { return verdict{err: err} }

// retryable is a failure that may be retried after a backoff wait.
func retryable(err error) verdict { return verdict{err: err, retry: true} }

// attempt sends r once.
func (c *Client) attempt(ctx context.Context, hc *http.Client, r request, target string, body []byte) verdict {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, rd)
	if err != nil {
		return final(fmt.Errorf("%s %s: %w", r.method, r.path, err))
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return final(fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err()))
		}
		var ne *networkError
		if !errors.As(err, &ne) {
			// Not the network: the signing layer or the redirect policy.
			return final(fmt.Errorf("%s %s: %w", r.method, r.path, err))
		}
		return retryable(fmt.Errorf("%w at %s: %w", ErrUnreachable, c.Origin(), ne.err))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	resp.Body.Close()
	if err != nil {
		if ctx.Err() != nil {
			return final(fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err()))
		}
		return retryable(fmt.Errorf("%w at %s: reading the answer to %s %s: %w", ErrUnreachable, c.Origin(), r.method, r.path, err))
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if r.out != nil && len(bytes.TrimSpace(data)) > 0 {
			if err := json.Unmarshal(data, r.out); err != nil {
				return final(fmt.Errorf("%w: %s %s: %w", ErrBadResponse, r.method, r.path, err))
			}
		}
		return verdict{}
	}
	apiErr := &APIError{
		Status:  resp.StatusCode,
		Message: errorMessage(resp, data),
		Method:  r.method,
		Path:    c.baseURL.Path + r.path,
	}
	ra, hasRA := parseRetryAfter(resp.Header.Get("Retry-After"), c.now())
	if hasRA {
		apiErr.RetryAfter = ra
	}
	if !retryableStatus(resp.StatusCode) || (hasRA && ra > c.retry.MaxRetryAfter) {
		return final(apiErr)
	}
	return verdict{err: apiErr, retry: true, retryAfter: ra, hasRetryAfter: hasRA}
}

// errorMessage extracts the server's message from an error answer.
func errorMessage(resp *http.Response, data []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(data, &e) == nil && e.Error != "" {
		return e.Error
	}
	if s := strings.TrimSpace(string(data)); s != "" && !strings.HasPrefix(s, "<") {
		if len(s) > 300 {
			s = s[:300] + "…"
		}
		return s
	}
	return http.StatusText(resp.StatusCode)
}

// markNetwork wraps rt so that its errors are marked as network errors.
func markNetwork(rt http.RoundTripper) http.RoundTripper { return networkMarker{rt} }

type networkMarker struct{ rt http.RoundTripper }

func (m networkMarker) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := m.rt.RoundTrip(req)
	if err != nil {
		return nil, &networkError{err}
	}
	return resp, nil
}
