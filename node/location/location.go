// Package geo is the node's "location" module: it serves where the node
// is (found by package location: a geoip service over HTTP, or the
// configured fallback) over the bus, and caches the answer so that
// registrar_light's retries do not ask the geoip service each time.
package location

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/geoip"
	"github.com/grid4/grid4/registrar/api"
)

// Object is the bus object the location module serves.
const Object = "location/location@1.0"

// Defaults of the cache.
const (
	// DefaultTTL is how long a geoip answer is reused.
	DefaultTTL = 24 * time.Hour
	// fallbackTTL bounds how long a fallback answer (the geoip service
	// failed) is reused before asking the service again.
	fallbackTTL = 15 * time.Minute
)

// Locator finds the node's location; *geoip.Locator is one.
type Locator interface {
	Locate(ctx context.Context) (api.Location, geoip.Source, error)
}

// Result is the node's location and where it came from.
type Result struct {
	Location api.Location `json:"location"`
	// Source is "geoip" or "fallback: <why the geoip lookup failed>".
	Source string `json:"source"`
	// Fallback is true when Location is the configured fallback.
	Fallback bool `json:"fallback"`
	// At is when it was looked up.
	At time.Time `json:"at"`
}

// Service serves the location, cached.
type Service struct {
	loc   Locator
	clock clock.Clock
	ttl   time.Duration

	mu     sync.Mutex // held during a lookup: concurrent callers share it
	cached *Result
}

// NewService returns a Service that looks up with loc and reuses a geoip
// answer for ttl (DefaultTTL when 0).
func NewService(loc Locator, c clock.Clock, ttl time.Duration) *Service {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if c == nil {
		c = clock.Real{}
	}
	return &Service{loc: loc, clock: c, ttl: ttl}
}

// Location returns the cached location, looking it up when there is none
// or it is too old.
func (s *Service) Location(ctx context.Context) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if s.cached != nil {
		ttl := s.ttl
		if s.cached.Fallback {
			ttl = min(ttl, fallbackTTL)
		}
		if now.Sub(s.cached.At) < ttl {
			return *s.cached, nil
		}
	}
	return s.lookup(ctx, now)
}

// Refresh looks the location up now, ignoring the cache.
func (s *Service) Refresh(ctx context.Context) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookup(ctx, s.clock.Now())
}

func (s *Service) lookup(ctx context.Context, now time.Time) (Result, error) {
	loc, src, err := s.loc.Locate(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("geo: %w", err)
	}
	r := Result{Location: loc, Source: src.String(), Fallback: src.Kind == geoip.FromFallback, At: now}
	s.cached = &r
	return r, nil
}

// Methods returns the bus methods of Object: Location and Refresh.
func (s *Service) Methods() bus.Methods {
	return bus.Methods{
		"Location": bus.Func0(s.Location),
		"Refresh":  bus.Func0(s.Refresh),
	}
}

// Stub calls the location module over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling the location module through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Location returns the node's location.
func (s Stub) Location(ctx context.Context) (Result, error) {
	return bus.Call[Result](ctx, s.c, Object, "Location")
}

// Refresh looks the location up again.
func (s Stub) Refresh(ctx context.Context) (Result, error) {
	return bus.Call[Result](ctx, s.c, Object, "Refresh")
}
