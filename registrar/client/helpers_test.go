package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/auth"
	"github.com/grid4/grid4/keys"
)

// seen is one request as the fake registrar received it.
type seen struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	// Caller is the verified signer; Signed is false for unsigned routes.
	Caller auth.Caller
	Signed bool
}

// fakeRegistrar is an httptest server on loopback that checks signatures
// with the real auth.Verifier, records every request and answers what each
// test's handlers say.
type fakeRegistrar struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux
	v   *auth.Verifier

	mu   sync.Mutex
	keys map[uint64][]byte
	reqs []seen
}

func newFake(t *testing.T) *fakeRegistrar {
	t.Helper()
	f := &fakeRegistrar{t: t, mux: http.NewServeMux(), keys: map[uint64][]byte{}}
	v, err := auth.NewVerifier(auth.Config{
		Keys: auth.TwinKeysFunc(func(_ context.Context, id uint64) ([]byte, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if k, ok := f.keys[id]; ok {
				return k, nil
			}
			return nil, auth.ErrUnknownTwin
		}),
		LegacyReplayGuard: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.v = v
	f.srv = httptest.NewServer(f.mux)
	t.Cleanup(f.srv.Close)
	return f
}

// addTwin makes the verifier know kp as twin id.
func (f *fakeRegistrar) addTwin(id uint64, kp keys.KeyPair) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[id] = kp.Public().Key
}

// handle routes pattern (a ServeMux pattern such as "POST /api/v1/farms")
// to h. When signed, the request must verify or it is refused with the
// verifier's error, as the registrar would.
func (f *fakeRegistrar) handle(pattern string, signed bool, h func(w http.ResponseWriter, r *http.Request, s seen)) {
	f.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s := seen{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Signed: signed}
		if signed {
			c, err := f.v.Verify(r)
			if err != nil {
				f.t.Errorf("%s %s: signature refused: %v", r.Method, r.URL.Path, err)
				auth.WriteError(w, err)
				f.record(s)
				return
			}
			s.Caller = c
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			f.t.Errorf("reading body: %v", err)
		}
		s.Body = body
		f.record(s)
		h(w, r, s)
	})
}

func (f *fakeRegistrar) record(s seen) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, s)
}

// requests returns what was received so far.
func (f *fakeRegistrar) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// last returns the last request received.
func (f *fakeRegistrar) last() seen {
	f.t.Helper()
	r := f.requests()
	if len(r) == 0 {
		f.t.Fatal("no request received")
	}
	return r[len(r)-1]
}

// client returns a client of f with no retry waits.
func (f *fakeRegistrar) client(opts ...Option) *Client {
	f.t.Helper()
	base := []Option{WithSleep(func(ctx context.Context, d time.Duration) error { return ctx.Err() })}
	c, err := New(f.srv.URL, append(base, opts...)...)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// reply writes v as JSON with status.
func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// replyError writes the registrar's error shape.
func replyError(w http.ResponseWriter, status int, msg string) {
	reply(w, status, map[string]string{"error": msg})
}

// mustKey makes a random key pair of scheme.
func mustKey(t *testing.T, scheme keys.Scheme) keys.KeyPair {
	t.Helper()
	kp, err := keys.Generate(scheme)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// decode unmarshals a recorded body into v.
func decode(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
}
