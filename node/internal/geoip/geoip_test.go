package geoip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// fallback is the configured location the failure tests expect back.
var fallback = api.Location{Country: "Belgium", City: "Lochristi", Latitude: "51.0960", Longitude: "3.8330"}

// serve starts a loopback server answering every request with h.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// answer returns a handler that answers status and body as JSON.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

// newLocator returns a Locator on url with the fallback and a log the test
// can read.
func newLocator(t *testing.T, cfg Config) (*Locator, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	l, err := New(cfg, &http.Client{}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return l, &logs
}

func TestGeoIPFormats(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want api.Location
	}{
		{"primary",
			`{"country": "Belgium", "country_code": "BE", "city": "Ghent", "latitude": 51.0543, "longitude": 3.7174}`,
			api.Location{Country: "Belgium", City: "Ghent", Latitude: "51.0543", Longitude: "3.7174"}},
		{"ZOS geoip (country_name, city_name)",
			`{"longitude": -122.4194, "latitude": 37.7749, "continent": "NA", "country_name": "United States", "country_code": "US", "city_name": "San Francisco"}`,
			api.Location{Country: "United States", City: "San Francisco", Latitude: "37.7749", Longitude: "-122.4194"}},
		{"ip-api.com (lat, lon, countryCode)",
			`{"status": "success", "country": "Egypt", "countryCode": "EG", "city": "Cairo", "lat": 30.0588, "lon": 31.2268, "query": "192.0.2.1"}`,
			api.Location{Country: "Egypt", City: "Cairo", Latitude: "30.0588", Longitude: "31.2268"}},
		{"ipinfo.io (loc, country code only)",
			`{"ip": "192.0.2.1", "city": "Vienna", "region": "Vienna", "country": "AT", "loc": "48.2085,16.3721", "timezone": "Europe/Vienna"}`,
			api.Location{Country: "AT", City: "Vienna", Latitude: "48.2085", Longitude: "16.3721"}},
		{"ipapi.co (country is a code, country_name wins)",
			`{"ip": "192.0.2.1", "city": "Zürich", "country": "CH", "country_name": "Switzerland", "country_code": "CH", "latitude": 47.3667, "longitude": 8.55}`,
			api.Location{Country: "Switzerland", City: "Zürich", Latitude: "47.3667", Longitude: "8.55"}},
		{"ipwho.is (success true)",
			`{"success": true, "country": "Brazil", "country_code": "BR", "city": "São Paulo", "latitude": -23.5505, "longitude": -46.6333}`,
			api.Location{Country: "Brazil", City: "São Paulo", Latitude: "-23.5505", Longitude: "-46.6333"}},
		{"coordinates as strings (get.geojs.io)",
			`{"country": "Japan", "city": "Tokyo", "latitude": "35.6895", "longitude": " 139.6917 "}`,
			api.Location{Country: "Japan", City: "Tokyo", Latitude: "35.6895", Longitude: "139.6917"}},
		{"lng, no city, exponent",
			`{"country_code": "NZ", "lat": -4.1e1, "lng": 1.745e2}`,
			api.Location{Country: "NZ", Latitude: "-41", Longitude: "174.5"}},
		{"country code when the name is empty or null",
			`{"country_name": "", "country": null, "countryCode": "KE", "city": null, "latitude": -1.2864, "longitude": 36.8172}`,
			api.Location{Country: "KE", Latitude: "-1.2864", Longitude: "36.8172"}},
		{"edges of the ranges",
			`{"country": "AQ", "latitude": -90, "longitude": 180}`,
			api.Location{Country: "AQ", Latitude: "-90", Longitude: "180"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var method, accept string
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				method, accept = r.Method, r.Header.Get("Accept")
				answer(200, tc.body)(w, r)
			})
			l, logs := newLocator(t, Config{URL: srv.URL + "/json", Fallback: &fallback})
			loc, src, err := l.Locate(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if loc != tc.want {
				t.Errorf("location = %+v, want %+v", loc, tc.want)
			}
			if src.Kind != FromGeoIP || src.String() != "geoip" || src.Reason != "" || src.Err != nil {
				t.Errorf("source = %+v (%s), want geoip", src, src)
			}
			if method != http.MethodGet || accept != "application/json" {
				t.Errorf("request %s with Accept %q, want GET application/json", method, accept)
			}
			if logs.Len() != 0 {
				t.Errorf("a successful lookup logged: %s", logs)
			}
		})
	}
}

func TestFallbackWithReason(t *testing.T) {
	long := func(n int) string { return strings.Repeat("é", n) }
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		cfg     Config // URL and Fallback are set by the test
		is      error  // errors.Is the source's error
		reason  string // substring of the reason
	}{
		{name: "500", handler: answer(500, `{"error": "boom"}`), is: ErrHTTPStatus, reason: "500 Internal Server Error"},
		{name: "404", handler: answer(404, `not found`), is: ErrHTTPStatus, reason: "404"},
		{name: "429", handler: answer(429, `slow down`), is: ErrHTTPStatus, reason: "429"},
		{name: "garbage", handler: answer(200, `<html>hello</html>`), is: ErrBadAnswer, reason: "not a JSON object"},
		{name: "empty body", handler: answer(200, ``), is: ErrBadAnswer, reason: "not a JSON object"},
		{name: "JSON array", handler: answer(200, `[{"country": "BE"}]`), is: ErrBadAnswer, reason: "not a JSON object"},
		{name: "JSON null", handler: answer(200, `null`), is: ErrBadAnswer, reason: "not a JSON object"},
		{name: "trailing garbage", handler: answer(200, `{"country": "BE", "lat": 1, "lon": 2} x`), is: ErrBadAnswer, reason: "not a JSON object"},
		{name: "oversized", cfg: Config{MaxBodyBytes: 1024},
			handler: answer(200, `{"country": "BE", "lat": 1, "lon": 2, "pad": "`+strings.Repeat("x", 2048)+`"}`),
			is:      ErrTooLarge, reason: "more than 1024 bytes"},
		{name: "oversized at the default limit",
			handler: answer(200, `{"pad": "`+strings.Repeat("x", DefaultMaxBodyBytes)+`"}`),
			is:      ErrTooLarge, reason: "more than 65536 bytes"},
		{name: "latitude above 90", handler: answer(200, `{"country": "BE", "latitude": 90.0001, "longitude": 3}`), is: ErrBadAnswer, reason: "latitude 90.0001 is outside -90..90"},
		{name: "latitude below -90", handler: answer(200, `{"country": "BE", "lat": -91, "lon": 3}`), is: ErrBadAnswer, reason: "latitude -91 is outside"},
		{name: "longitude above 180", handler: answer(200, `{"country": "BE", "latitude": 50, "longitude": 180.5}`), is: ErrBadAnswer, reason: "longitude 180.5 is outside -180..180"},
		{name: "longitude below -180 in loc", handler: answer(200, `{"country": "BE", "loc": "50,-200"}`), is: ErrBadAnswer, reason: "longitude -200 is outside"},
		{name: "huge exponent", handler: answer(200, `{"country": "BE", "lat": 1e400, "lon": 3}`), is: ErrBadAnswer, reason: "not a decimal number"},
		{name: "coordinate not a number", handler: answer(200, `{"country": "BE", "lat": "north", "lon": 3}`), is: ErrBadAnswer, reason: "not a decimal number"},
		{name: "coordinate NaN", handler: answer(200, `{"country": "BE", "lat": "NaN", "lon": 3}`), is: ErrBadAnswer, reason: "not a decimal number"},
		{name: "coordinate object", handler: answer(200, `{"country": "BE", "lat": {"v": 1}, "lon": 3}`), is: ErrBadAnswer, reason: "lat"},
		{name: "loc without comma", handler: answer(200, `{"country": "BE", "loc": "50.1"}`), is: ErrBadAnswer, reason: "lat,long"},
		{name: "null island", handler: answer(200, `{"country": "BE", "latitude": 0, "longitude": 0}`), is: ErrBadAnswer, reason: "0,0"},
		{name: "no coordinates", handler: answer(200, `{"country": "BE", "city": "Ghent"}`), is: ErrBadAnswer, reason: "no coordinates"},
		{name: "one coordinate", handler: answer(200, `{"country": "BE", "latitude": 51}`), is: ErrBadAnswer, reason: "no coordinates"},
		{name: "no country", handler: answer(200, `{"city": "Ghent", "latitude": 51, "longitude": 3}`), is: ErrBadAnswer, reason: "no country"},
		{name: "country not a string", handler: answer(200, `{"country": 56, "latitude": 51, "longitude": 3}`), is: ErrBadAnswer, reason: "country is not a string"},
		{name: "country too long", handler: answer(200, `{"country": "`+long(65)+`", "latitude": 51, "longitude": 3}`), is: ErrBadAnswer, reason: "country is 65 characters, at most 64"},
		{name: "city too long", handler: answer(200, `{"country": "BE", "city": "`+long(129)+`", "latitude": 51, "longitude": 3}`), is: ErrBadAnswer, reason: "city is 129 characters, at most 128"},
		{name: "control character", handler: answer(200, `{"country": "BE", "city": "Gh\u0000ent", "latitude": 51, "longitude": 3}`), is: ErrBadAnswer, reason: "control character"},
		{name: "invalid UTF-8", handler: answer(200, "{\"country\": \"B\xffE\", \"latitude\": 51, \"longitude\": 3}"), is: ErrBadAnswer, reason: "not valid UTF-8"},
		{name: "ip-api failure", handler: answer(200, `{"status": "fail", "message": "private range", "query": "10.0.0.1"}`), is: ErrBadAnswer, reason: "private range"},
		{name: "ipwho.is failure", handler: answer(200, `{"success": false, "message": "Invalid IP address"}`), is: ErrBadAnswer, reason: "Invalid IP address"},
		{name: "ipapi.co failure", handler: answer(200, `{"error": true, "reason": "RateLimited", "country": "BE", "latitude": 1, "longitude": 1}`), is: ErrBadAnswer, reason: "RateLimited"},
		{name: "ipinfo error object", handler: answer(200, `{"error": {"title": "Wrong token", "message": "Please check your token"}}`), is: ErrBadAnswer, reason: "Wrong token Please check your token"},
		{name: "ipinfo bogon", handler: answer(200, `{"ip": "10.0.0.1", "bogon": true}`), is: ErrBadAnswer, reason: "bogon"},
		{name: "timeout before the answer", cfg: Config{Timeout: 100 * time.Millisecond},
			handler: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			is: context.DeadlineExceeded, reason: "no answer within 100ms"},
		{name: "timeout in the body", cfg: Config{Timeout: 200 * time.Millisecond},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(200)
				_, _ = w.Write([]byte(`{"country": "BE", `))
				w.(http.Flusher).Flush()
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			},
			is: context.DeadlineExceeded, reason: "within 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := serve(t, tc.handler)
			cfg := tc.cfg
			cfg.URL, cfg.Fallback = srv.URL, &fallback
			l, logs := newLocator(t, cfg)
			start := time.Now()
			loc, src, err := l.Locate(context.Background())
			if err != nil {
				t.Fatalf("Locate: %v, want the fallback", err)
			}
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Locate took %s", elapsed)
			}
			checkFallback(t, loc, src, logs, tc.is, tc.reason)
		})
	}
}

// checkFallback checks that Locate returned the fallback, said why, and
// logged it.
func checkFallback(t *testing.T, loc api.Location, src Source, logs *bytes.Buffer, is error, reason string) {
	t.Helper()
	t.Logf("source: %s", src)
	if loc != fallback {
		t.Errorf("location = %+v, want the fallback %+v", loc, fallback)
	}
	if src.Kind != FromFallback || src.Reason == "" || src.String() != "fallback: "+src.Reason {
		t.Errorf("source = %+v (%q), want fallback with a reason", src, src)
	}
	if !strings.Contains(src.Reason, reason) {
		t.Errorf("reason %q, want it to contain %q", src.Reason, reason)
	}
	if is != nil && !errors.Is(src.Err, is) {
		t.Errorf("source error %v, want errors.Is %v", src.Err, is)
	}
	if log := logs.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "fallback") {
		t.Errorf("fallback not logged as a warning: %q", log)
	}
}

func TestUnreachableServiceFallsBack(t *testing.T) {
	srv := httptest.NewServer(answer(200, `{}`))
	url := srv.URL
	srv.Close() // nothing listens there any more
	l, logs := newLocator(t, Config{URL: url, Fallback: &fallback})
	loc, src, err := l.Locate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkFallback(t, loc, src, logs, nil, "connect")
}

func TestNoURLUsesFallback(t *testing.T) {
	l, logs := newLocator(t, Config{Fallback: &fallback})
	loc, src, err := l.Locate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkFallback(t, loc, src, logs, ErrNoURL, "no geoip service configured")
	if _, err := l.Lookup(context.Background()); !errors.Is(err, ErrNoURL) {
		t.Errorf("Lookup without a URL = %v, want ErrNoURL", err)
	}
}

func TestNoFallbackFails(t *testing.T) {
	srv := serve(t, answer(503, `down`))
	l, _ := newLocator(t, Config{URL: srv.URL})
	loc, src, err := l.Locate(context.Background())
	if !errors.Is(err, ErrHTTPStatus) || !strings.Contains(err.Error(), "no fallback") {
		t.Errorf("Locate = %v, want ErrHTTPStatus and no fallback", err)
	}
	if loc != (api.Location{}) || src != (Source{}) {
		t.Errorf("Locate returned %+v from %+v along with an error", loc, src)
	}
}

// A caller that gives up gets its context's error, not the fallback.
func TestCanceledCallerGetsNoFallback(t *testing.T) {
	started := make(chan struct{})
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	})
	l, logs := newLocator(t, Config{URL: srv.URL, Fallback: &fallback})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	loc, _, err := l.Locate(ctx)
	if !errors.Is(err, context.Canceled) || loc != (api.Location{}) {
		t.Errorf("Locate = %+v, %v; want context.Canceled", loc, err)
	}
	if logs.Len() != 0 {
		t.Errorf("a canceled call logged a fallback: %s", logs)
	}
}

// Service URLs carry tokens; neither the reason nor the log repeats them.
func TestSecretsStayOutOfReasonsAndLogs(t *testing.T) {
	srv := serve(t, answer(500, `{}`))
	url := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + "/json?token=s3cr3t"
	l, logs := newLocator(t, Config{URL: url, Fallback: &fallback})
	_, src, err := l.Locate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{src.Reason, src.Err.Error(), logs.String()} {
		if strings.Contains(text, "s3cr3t") || strings.Contains(text, "hunter2") {
			t.Errorf("secret leaked: %q", text)
		}
	}
	if !strings.Contains(src.Reason, srv.URL+"/json") {
		t.Errorf("reason %q does not name the endpoint %s/json", src.Reason, srv.URL)
	}

	// A refused connection too: *url.Error would repeat the whole URL.
	srv.Close()
	_, src, _ = l.Locate(context.Background())
	if strings.Contains(src.Reason, "s3cr3t") || strings.Contains(src.Reason, "hunter2") {
		t.Errorf("secret leaked: %q", src.Reason)
	}
}

func TestLocateConcurrently(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n%2 == 0 {
			answer(500, ``)(w, r)
			return
		}
		answer(200, `{"country": "BE", "lat": 51, "lon": 3}`)(w, r)
	})
	l, _ := newLocator(t, Config{URL: srv.URL, Fallback: &fallback})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			loc, src, err := l.Locate(context.Background())
			switch {
			case err != nil:
				errs <- err
			case src.Kind == FromGeoIP && loc.Country != "BE", src.Kind == FromFallback && loc != fallback:
				errs <- fmt.Errorf("%+v from %s", loc, src)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	bad := api.Location{Country: "BE", Latitude: "100", Longitude: "3"}
	half := api.Location{Country: "BE", Latitude: "50"}
	for _, cfg := range []Config{
		{},
		{URL: "ftp://geo.example/json", Fallback: &fallback},
		{URL: "/json", Fallback: &fallback},
		{URL: "http://", Fallback: &fallback},
		{URL: "http://a b/", Fallback: &fallback},
		{URL: "http://127.0.0.1/", Timeout: -1},
		{URL: "http://127.0.0.1/", MaxBodyBytes: -1},
		{URL: "http://127.0.0.1/", Fallback: &bad},
		{URL: "http://127.0.0.1/", Fallback: &half},
	} {
		if _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("New(%+v) = nil error, want one", cfg)
		}
	}
	// A URL alone, or an empty ("unknown") fallback alone, will do.
	for _, cfg := range []Config{{URL: "https://geo.example/json"}, {Fallback: &api.Location{}}} {
		if _, err := New(cfg, nil, nil); err != nil {
			t.Errorf("New(%+v): %v", cfg, err)
		}
	}
}

// New copies the fallback: changing the caller's value later changes
// nothing.
func TestFallbackIsCopied(t *testing.T) {
	fb := fallback
	l, _ := newLocator(t, Config{Fallback: &fb})
	fb.City = "elsewhere"
	if loc, _, _ := l.Locate(context.Background()); loc != fallback {
		t.Errorf("Locate = %+v, want %+v", loc, fallback)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		loc api.Location
		ok  bool
	}{
		{api.Location{}, true},
		{fallback, true},
		{api.Location{Country: "BE"}, true},
		{api.Location{Latitude: "-90", Longitude: "-180"}, true},
		{api.Location{Latitude: "9e1", Longitude: "1.8E2"}, true},
		{api.Location{Latitude: "90.5", Longitude: "0"}, false},
		{api.Location{Latitude: "0", Longitude: "-180.01"}, false},
		{api.Location{Latitude: "1"}, false},
		{api.Location{Longitude: "1"}, false},
		{api.Location{Latitude: "0x10", Longitude: "1"}, false},
		{api.Location{Latitude: "Inf", Longitude: "1"}, false},
		{api.Location{Latitude: "1_0", Longitude: "1"}, false},
		{api.Location{Latitude: " 1", Longitude: "1"}, false},
		{api.Location{Latitude: strings.Repeat("1", 33), Longitude: "1"}, false},
		{api.Location{Country: strings.Repeat("x", 64)}, true},
		{api.Location{Country: strings.Repeat("x", 65)}, false},
		{api.Location{City: strings.Repeat("ü", 128)}, true},
		{api.Location{City: strings.Repeat("ü", 129)}, false},
		{api.Location{City: "a\nb"}, false},
		{api.Location{Country: "\xff"}, false},
	} {
		if err := Validate(tc.loc); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.loc, err, tc.ok)
		}
	}
}
