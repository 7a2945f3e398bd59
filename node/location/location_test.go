package location

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/clock"
	"github.com/grid4/grid4/node/internal/geoip"
	"github.com/grid4/grid4/registrar/api"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

type locator struct {
	calls    atomic.Int32
	fallback atomic.Bool
	err      error
}

func (l *locator) Locate(context.Context) (api.Location, geoip.Source, error) {
	l.calls.Add(1)
	if l.err != nil {
		return api.Location{}, geoip.Source{}, l.err
	}
	if l.fallback.Load() {
		return api.Location{Country: "Egypt"}, geoip.Source{Kind: geoip.FromFallback, Reason: "timeout"}, nil
	}
	return api.Location{Country: "Belgium", City: "Ghent"}, geoip.Source{Kind: geoip.FromGeoIP}, nil
}

func TestCache(t *testing.T) {
	l := &locator{}
	c := clock.NewFake(t0)
	s := NewService(l, c, time.Hour)
	ctx := context.Background()
	r, err := s.Location(ctx)
	if err != nil || r.Location.City != "Ghent" || r.Source != "geoip" || r.Fallback || !r.At.Equal(t0) {
		t.Fatalf("first: %+v %v", r, err)
	}
	c.Advance(59 * time.Minute)
	s.Location(ctx)
	if n := l.calls.Load(); n != 1 {
		t.Errorf("looked up %d times within the TTL", n)
	}
	c.Advance(time.Minute)
	s.Location(ctx)
	if n := l.calls.Load(); n != 2 {
		t.Errorf("not looked up again after the TTL (%d)", n)
	}
	if _, err := s.Refresh(ctx); err != nil || l.calls.Load() != 3 {
		t.Errorf("Refresh: %v, %d calls", err, l.calls.Load())
	}
}

// TestFallbackRetriedSooner: a fallback answer is reused for 15 minutes at
// most, so the geoip service is asked again soon.
func TestFallbackRetriedSooner(t *testing.T) {
	l := &locator{}
	l.fallback.Store(true)
	c := clock.NewFake(t0)
	s := NewService(l, c, 0)
	r, _ := s.Location(context.Background())
	if !r.Fallback || r.Source != "fallback: timeout" || r.Location.Country != "Egypt" {
		t.Fatalf("fallback: %+v", r)
	}
	c.Advance(fallbackTTL)
	l.fallback.Store(false)
	if r, _ := s.Location(context.Background()); r.Fallback || l.calls.Load() != 2 {
		t.Errorf("after %v: %+v, %d calls", fallbackTTL, r, l.calls.Load())
	}
}

func TestError(t *testing.T) {
	s := NewService(&locator{err: errors.New("no fallback")}, nil, 0)
	if _, err := s.Location(context.Background()); err == nil {
		t.Error("no error")
	}
}

// TestOverBus: the location module over the bus, with a geoip service on
// loopback.
func TestOverBus(t *testing.T) {
	service := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"country":"Belgium","city":"Ghent","latitude":51.05,"longitude":3.72}`))
	}))
	defer service.Close()
	loc, err := geoip.New(geoip.Config{URL: service.URL, Fallback: &api.Location{}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := bustest.New(t)
	bustest.Serve(t, c, Object, NewService(loc, nil, 0).Methods())
	r, err := NewStub(c).Location(context.Background())
	if err != nil || r.Location != (api.Location{Country: "Belgium", City: "Ghent", Latitude: "51.05", Longitude: "3.72"}) || r.Source != "geoip" {
		t.Errorf("Location: %+v %v", r, err)
	}
	service.Close()
	r, err = NewStub(c).Refresh(context.Background())
	if err != nil || !r.Fallback {
		t.Errorf("Refresh with geoip down: %+v %v", r, err)
	}
}
