package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var errSecret = errors.New("secret detail")

func testServer() *Server {
	type echo struct {
		Say string `json:"say"`
	}
	return &Server{Methods: map[string]Method{
		"echo": func(_ context.Context, params json.RawMessage) (any, error) {
			var p echo
			if err := DecodeParams(params, &p); err != nil {
				return nil, err
			}
			return p.Say, nil
		},
		"fail":   func(context.Context, json.RawMessage) (any, error) { return nil, errSecret },
		"mapped": func(context.Context, json.RawMessage) (any, error) { return nil, errors.New("mapped") },
		"coded": func(context.Context, json.RawMessage) (any, error) {
			return nil, Errorf(-32042, "own code")
		},
	}, ErrorOf: func(err error) *Error {
		if err.Error() == "mapped" {
			return Errorf(-32001, "mapped error")
		}
		return nil
	}}
}

// TestServerAnswers: requests, notifications, batches and every kind of
// bad input get the answer JSON-RPC 2.0 prescribes; internal errors keep
// their details to the server.
func TestServerAnswers(t *testing.T) {
	var observed []string
	s := testServer()
	s.Observe = func(m string, code int, _ time.Duration) { observed = append(observed, m) }
	for _, c := range []struct{ in, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"echo","params":{"say":"hi"}}`, `{"jsonrpc":"2.0","id":1,"result":"hi"}`},
		{`{"jsonrpc":"2.0","id":"a","method":"echo","params":{"bad":1}}`, `{"jsonrpc":"2.0","id":"a","error":{"code":-32602,"message":"params: json: unknown field \"bad\""}}`},
		{`{"jsonrpc":"2.0","id":2,"method":"echo","params":[1]}`, `{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"params must be an object (by-name parameters)"}}`},
		{`{"jsonrpc":"2.0","id":3,"method":"nope"}`, `{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"method not found: nope"}}`},
		{`{"jsonrpc":"2.0","id":4,"method":"fail"}`, `{"jsonrpc":"2.0","id":4,"error":{"code":-32603,"message":"internal error"}}`},
		{`{"jsonrpc":"2.0","id":5,"method":"mapped"}`, `{"jsonrpc":"2.0","id":5,"error":{"code":-32001,"message":"mapped error"}}`},
		{`{"jsonrpc":"2.0","id":6,"method":"coded"}`, `{"jsonrpc":"2.0","id":6,"error":{"code":-32042,"message":"own code"}}`},
		{`{"jsonrpc":"1.0","id":7,"method":"echo"}`, `{"jsonrpc":"2.0","id":7,"error":{"code":-32600,"message":"a request needs \"jsonrpc\": \"2.0\" and a method"}}`},
		{`{"jsonrpc":"2.0","id":{},"method":"echo"}`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"id must be a string, a number or null"}}`},
		{`{"jsonrpc":`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"not a JSON-RPC request: unexpected end of JSON input"}}`},
		{`[]`, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"empty batch"}}`},
		{`[{"jsonrpc":"2.0","id":1,"method":"echo","params":{"say":"a"}},{"jsonrpc":"2.0","method":"echo"}]`, `[{"jsonrpc":"2.0","id":1,"result":"a"}]`},
	} {
		b, err := json.Marshal(s.Answer(context.Background(), []byte(c.in)))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("%s\n got  %s\n want %s", c.in, b, c.want)
		}
	}
	if got := s.Answer(context.Background(), []byte(`{"jsonrpc":"2.0","method":"echo"}`)); got != nil {
		t.Errorf("notification answered %v", got)
	}
	if len(observed) == 0 || observed[3] != "unknown" {
		t.Errorf("observed %v", observed)
	}
}

// TestClient: results, JSON-RPC errors and HTTP refusals come back as
// their types.
func TestClient(t *testing.T) {
	s := testServer()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Refuse") != "" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"no signature"}`))
			return
		}
		s.ServeHTTP(w, r)
	}))
	defer ts.Close()
	c := &Client{Endpoint: ts.URL}
	var out string
	if err := c.Call(context.Background(), "echo", map[string]string{"say": "hello"}, &out); err != nil || out != "hello" {
		t.Fatalf("echo: %q %v", out, err)
	}
	var re *Error
	if err := c.Call(context.Background(), "mapped", nil, nil); !errors.As(err, &re) || re.Code != -32001 {
		t.Fatalf("mapped: %v", err)
	}
	c = &Client{Endpoint: ts.URL, Header: http.Header{"X-Refuse": {"1"}}}
	err := c.Call(context.Background(), "echo", nil, nil)
	var he *HTTPError
	if !errors.As(err, &he) || he.Message != "no signature" || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("refused: %v", err)
	}
	if !strings.Contains(err.Error(), "401") {
		t.Fatalf("message %q", err)
	}
}

// FuzzAnswer: no input makes the server panic, and every answer is JSON.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"echo","params":{"say":"x"}}`, `[{"jsonrpc":"2.0","method":"fail"}]`, `[`, `{"id":[]}`} {
		f.Add([]byte(s))
	}
	s := testServer()
	f.Fuzz(func(t *testing.T, body []byte) {
		out := s.Answer(context.Background(), body)
		if out == nil {
			return
		}
		if _, err := json.Marshal(out); err != nil {
			t.Fatalf("%q: answer not JSON: %v", body, err)
		}
	})
}
