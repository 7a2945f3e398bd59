// Package location finds where a node is: it asks a geoip service over
// HTTP and, when that fails, falls back to a location from the node's
// configuration, saying why. This is the "location" module of docs/node.md;
// the registrar stores the result with the node.
//
// # The geoip answer
//
// The service is asked with GET <URL> (the service finds the caller's
// address itself) and must answer 200 with a JSON object. The primary
// format is
//
//	{"country": "Belgium", "country_code": "BE", "city": "Ghent",
//	 "latitude": 51.0543, "longitude": 3.7174}
//
// and the field names of the common public services are accepted too:
//
//   - country: "country_name", then "country", then "country_code", then
//     "countryCode" (the first present wins, so a name is preferred to a
//     code);
//   - city: "city", then "city_name";
//   - latitude and longitude: "latitude"/"lat" and
//     "longitude"/"lon"/"lng", as JSON numbers or decimal strings, or
//     "loc": "lat,long" (ipinfo.io);
//   - an answer the service itself marks as failed ("status": "fail",
//     "success": false, "error": true, "bogon": true) is a failure, with
//     its "message" or "reason".
//
// Unknown fields are ignored. An answer must have a country and both
// coordinates (0,0 is what services answer when they do not know, so it
// counts as none); the city may be missing. Coordinates are returned as
// decimal strings without exponent ("51.0543").
//
// # Validation and fallback
//
// What the service says is checked as the registrar checks it: latitude
// within -90..90, longitude within -180..180, country at most 64 and city
// at most 128 characters of valid UTF-8 without control characters. A
// transport error, a timeout, a status other than 200, a body over the size
// limit, a body that is not such an object or data that fails the checks
// all make Locate return the configured fallback, with a Source that says
// "fallback: <reason>". Locate does not retry: when to ask again is the
// caller's business.
package geoip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

const (
	// DefaultTimeout bounds one geoip request when Config.Timeout is 0.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxBodyBytes bounds a geoip answer when Config.MaxBodyBytes is
	// 0. Real answers are well under 2 KiB.
	DefaultMaxBodyBytes = 64 << 10
)

// Errors a geoip lookup wraps, for errors.Is. Transport errors (refused
// connection, DNS, context.DeadlineExceeded on a timeout) are wrapped as
// they come.
var (
	// ErrNoURL: no geoip URL is configured.
	ErrNoURL = errors.New("no geoip URL configured")
	// ErrHTTPStatus: the service answered with a status other than 200.
	ErrHTTPStatus = errors.New("error status")
	// ErrTooLarge: the answer is larger than the configured limit.
	ErrTooLarge = errors.New("answer too large")
	// ErrBadAnswer: the answer is not a usable location: not a JSON
	// object, marked as failed by the service, incomplete or out of range.
	ErrBadAnswer = errors.New("bad answer")
)

// Doer sends HTTP requests; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Config configures a Locator.
type Config struct {
	// URL is the geoip service's endpoint (http or https). Empty means no
	// service: Locate always returns the fallback.
	URL string
	// Timeout bounds one request, from connecting to the end of the body;
	// 0 means DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes bounds the answer; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Fallback is where the node is when the service fails, from the
	// node's configuration. Nil means there is none, and Locate fails when
	// the service does. A zero Location is a valid fallback: "unknown",
	// which the registrar accepts.
	Fallback *api.Location
}

// SourceKind says where a location came from.
type SourceKind string

const (
	// FromGeoIP: the geoip service's answer.
	FromGeoIP SourceKind = "geoip"
	// FromFallback: the configured fallback.
	FromFallback SourceKind = "fallback"
)

// Source says where the location Locate returned came from, and why the
// fallback was used when it was.
type Source struct {
	// Kind is FromGeoIP or FromFallback.
	Kind SourceKind `json:"kind"`
	// Reason is why the geoip lookup failed; empty for FromGeoIP.
	Reason string `json:"reason,omitempty"`
	// Err is the lookup's error, for errors.Is; nil for FromGeoIP.
	Err error `json:"-"`
}

// String returns "geoip" or "fallback: <reason>".
func (s Source) String() string {
	if s.Kind == FromFallback {
		return string(s.Kind) + ": " + s.Reason
	}
	return string(s.Kind)
}

// Locator finds the node's location. It keeps no state between calls and
// is safe for concurrent use.
type Locator struct {
	url      string
	endpoint string // url without query or credentials, for messages
	timeout  time.Duration
	maxBody  int64
	fallback *api.Location
	client   Doer
	log      *slog.Logger
}

// New returns a Locator for cfg that sends its requests with client (nil:
// a new http.Client) and logs fallbacks to log (nil: nowhere). It fails
// when the URL is not an absolute http or https URL, a limit is negative,
// the fallback does not pass Validate, or there is neither a URL nor a
// fallback.
func New(cfg Config, client Doer, log *slog.Logger) (*Locator, error) {
	l := &Locator{
		url:     cfg.URL,
		timeout: cfg.Timeout,
		maxBody: cfg.MaxBodyBytes,
		client:  client,
		log:     log,
	}
	if cfg.URL != "" {
		u, err := url.Parse(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("location: geoip URL: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("location: geoip URL %q is not an absolute http or https URL", cfg.URL)
		}
		// Service URLs often carry an API token in the query or user info;
		// messages and logs name the endpoint without them.
		l.endpoint = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	if l.timeout < 0 || l.maxBody < 0 {
		return nil, fmt.Errorf("location: negative timeout or body limit")
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.maxBody == 0 {
		l.maxBody = DefaultMaxBodyBytes
	}
	if cfg.Fallback != nil {
		if err := Validate(*cfg.Fallback); err != nil {
			return nil, fmt.Errorf("location: fallback: %w", err)
		}
		fb := *cfg.Fallback
		l.fallback = &fb
	}
	if cfg.URL == "" && l.fallback == nil {
		return nil, fmt.Errorf("location: neither a geoip URL nor a fallback location is configured")
	}
	if l.client == nil {
		l.client = &http.Client{}
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

// Locate returns the node's location from the geoip service, or the
// configured fallback when the service fails, with a Source that says
// which and why. It fails when the service fails and there is no
// fallback, or when ctx ends: a caller that gave up wants no answer, not
// the fallback.
func (l *Locator) Locate(ctx context.Context) (api.Location, Source, error) {
	loc, err := l.Lookup(ctx)
	if err == nil {
		return loc, Source{Kind: FromGeoIP}, nil
	}
	if ctx.Err() != nil {
		return api.Location{}, Source{}, fmt.Errorf("location: %w", err)
	}
	if l.fallback == nil {
		return api.Location{}, Source{}, fmt.Errorf("location: %w (and no fallback location is configured)", err)
	}
	src := Source{Kind: FromFallback, Reason: reason(err), Err: err}
	l.log.Warn("geoip lookup failed; using the configured fallback location",
		"service", l.endpoint, "reason", src.Reason,
		"country", l.fallback.Country, "city", l.fallback.City)
	return *l.fallback, src, nil
}

// Lookup asks the geoip service alone, without fallback. Errors wrap
// ErrNoURL, ErrHTTPStatus, ErrTooLarge, ErrBadAnswer or the transport's
// error.
func (l *Locator) Lookup(ctx context.Context) (api.Location, error) {
	if l.url == "" {
		return api.Location{}, ErrNoURL
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		return api.Location{}, fmt.Errorf("geoip %s: %w", l.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := l.client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL, token included; keep the cause.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return api.Location{}, fmt.Errorf("geoip %s: no answer within %s: %w", l.endpoint, l.timeout, err)
		}
		return api.Location{}, fmt.Errorf("geoip %s: %w", l.endpoint, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return api.Location{}, fmt.Errorf("geoip %s: %w: %s", l.endpoint, ErrHTTPStatus, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, l.maxBody+1))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return api.Location{}, fmt.Errorf("geoip %s: answer not read within %s: %w", l.endpoint, l.timeout, err)
		}
		return api.Location{}, fmt.Errorf("geoip %s: reading the answer: %w", l.endpoint, err)
	}
	if int64(len(body)) > l.maxBody {
		return api.Location{}, fmt.Errorf("geoip %s: %w: more than %d bytes", l.endpoint, ErrTooLarge, l.maxBody)
	}
	loc, err := decode(body)
	if err != nil {
		return api.Location{}, fmt.Errorf("geoip %s: %w", l.endpoint, err)
	}
	return loc, nil
}

// reason is err as one line for a Source and a log.
func reason(err error) string {
	if errors.Is(err, ErrNoURL) {
		return "no geoip service configured"
	}
	return err.Error()
}
