package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wireServer serves h over httptest and counts the connections opened.
func wireServer(t *testing.T, h http.HandlerFunc) (wireEndpoint, *atomic.Int32) {
	t.Helper()
	var conns atomic.Int32
	ts := httptest.NewUnstartedServer(h)
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	ep, err := parseEndpoint(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return ep, &conns
}

// bigBody is larger than net/http's server buffers before it chunks: a
// handler writing it answers with Transfer-Encoding: chunked, as Gin does
// for a page of nodes.
var bigBody = strings.Repeat(`{"node_id":1,"farm_id":2},`, 400)

func TestWireKeepAlive(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	ep, conns := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, strings.Join([]string{r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Auth"), r.Header.Get("Content-Type"), string(body)}, "|"))
		mu.Unlock()
		switch r.URL.Path {
		case "/small":
			w.Write([]byte(`{"version":"v4.1.0"}`))
		case "/big":
			w.Write([]byte(bigBody))
		case "/flushed": // chunks, several
			for range 3 {
				w.Write([]byte("part,"))
				w.(http.Flusher).Flush()
			}
		case "/created":
			w.WriteHeader(http.StatusCreated)
			w.Write(body)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := newWireConn(context.Background(), ep.addr)
	defer c.Close()
	for round := range 3 {
		for _, tc := range []struct {
			method, target string
			header         []string
			body           string
			status         int
			want           string
		}{
			{"GET", "/small", nil, "", 200, `{"version":"v4.1.0"}`},
			{"GET", "/big?size=50", nil, "", 200, bigBody},
			{"GET", "/flushed", nil, "", 200, "part,part,part,"},
			{"POST", "/created", []string{"X-Auth", "twin:sig"}, `{"uptime":1}`, 201, `{"uptime":1}`},
			{"GET", "/empty", nil, "", 204, ""},
		} {
			req := ep.appendRequest(nil, tc.method, tc.target, tc.header, []byte(tc.body))
			status, body, err := c.Do(req)
			if err != nil {
				t.Fatalf("round %d, %s %s: %v", round, tc.method, tc.target, err)
			}
			if status != tc.status || string(body) != tc.want {
				t.Errorf("round %d, %s %s: %d %.60q, want %d %.60q", round, tc.method, tc.target, status, body, tc.status, tc.want)
			}
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 15 requests, want 1 (keep-alive)", n)
	}
	want := []string{
		"GET|/small|" + ep.host + "|||",
		"GET|/big?size=50|" + ep.host + "|||",
		"GET|/flushed|" + ep.host + "|||",
		"POST|/created|" + ep.host + `|twin:sig|application/json|{"uptime":1}`,
		"GET|/empty|" + ep.host + "|||",
	}
	for i, got := range seen {
		if got != want[i%len(want)] {
			t.Errorf("request %d: server saw %q, want %q", i, got, want[i%len(want)])
		}
	}
}

// TestWireChunkedOnWire checks what the server sends: the big answer is
// chunked and the small one has a Content-Length, so that both paths of
// the client are covered above.
func TestWireChunkedOnWire(t *testing.T) {
	ep, _ := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write([]byte(bigBody))
			return
		}
		w.Write([]byte("ok"))
	})
	conn, err := net.Dial("tcp", ep.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for path, chunked := range map[string]bool{"/big": true, "/small": false} {
		conn.Write(ep.appendRequest(nil, "GET", path, nil, nil))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if got := len(res.TransferEncoding) > 0 && res.TransferEncoding[0] == "chunked"; got != chunked {
			t.Errorf("%s: chunked %v, want %v", path, got, chunked)
		}
	}
}

func TestWireConnectionClose(t *testing.T) {
	ep, conns := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	})
	c := newWireConn(context.Background(), ep.addr)
	defer c.Close()
	req := ep.appendRequest(nil, "GET", "/", nil, nil)
	for i := range 3 {
		status, body, err := c.Do(req)
		if err != nil || status != 200 || string(body) != "bye" {
			t.Fatalf("request %d: %d %q %v", i, status, body, err)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Errorf("%d connections, want 3 (one per answer with Connection: close)", n)
	}
}

// rawServer answers each connection with serve, after reading one request
// (serve reads any further requests itself).
func rawServer(t *testing.T, serve func(n int, conn net.Conn, br *bufio.Reader)) wireEndpoint {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for n := 0; ; n++ {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				if req, err := http.ReadRequest(br); err == nil {
					io.Copy(io.Discard, req.Body)
					serve(n, conn, br)
				}
			})
		}
	})
	ep, err := parseEndpoint("http://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// TestWireAnswers covers answers net/http's server does not send the
// client above: interim answers, chunk extensions and trailers, bodies
// delimited by the end of the connection, HTTP/1.0.
func TestWireAnswers(t *testing.T) {
	for _, tc := range []struct {
		name, answer string
		status       int
		body         string
		reuse        bool
	}{
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", true},
		{"chunk extension and trailer", "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n", 200, "abc0123456789", true},
		{"chunked wins over length", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 200, "ok", true},
		{"until close", "HTTP/1.1 200 OK\r\n\r\nall of it", 200, "all of it", false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold", 200, "old", false},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nold", 200, "old", true},
		{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", 404, "", true},
		{"not modified", "HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\n\r\n", 304, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := rawServer(t, func(_ int, conn net.Conn, br *bufio.Reader) {
				for {
					conn.Write([]byte(tc.answer))
					if !tc.reuse {
						return
					}
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
				}
			})
			c := newWireConn(context.Background(), ep.addr)
			defer c.Close()
			for i := range 2 {
				status, body, err := c.Do(ep.appendRequest(nil, "GET", "/", nil, nil))
				if err != nil || status != tc.status || string(body) != tc.body {
					t.Fatalf("request %d: %d %q %v, want %d %q", i, status, body, err, tc.status, tc.body)
				}
				if open := c.conn != nil; open != tc.reuse {
					t.Errorf("request %d: connection open %v, want %v", i, open, tc.reuse)
				}
			}
		})
	}
}

func TestWireErrors(t *testing.T) {
	for _, tc := range []struct{ name, answer, want string }{
		{"closed without answer", "", "connection closed"},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", "malformed status line"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "connection closed"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "bad Content-Length"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"},
		{"chunk without crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokX\r\n0\r\n\r\n", "malformed chunk"},
		{"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "not supported"},
		{"header line", "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"},
		{"long line", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", wireBufferSize) + "\r\n\r\n", "longer than"},
		{"switching", "HTTP/1.1 101 Switching Protocols\r\n\r\n", "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := rawServer(t, func(n int, conn net.Conn, _ *bufio.Reader) {
				if n == 0 {
					conn.Write([]byte(tc.answer))
					return
				}
				conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			})
			c := newWireConn(context.Background(), ep.addr)
			defer c.Close()
			req := ep.appendRequest(nil, "GET", "/", nil, nil)
			if _, _, err := c.Do(req); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			if c.conn != nil {
				t.Error("the connection stays open after an error")
			}
			// The next request opens a new connection.
			if status, body, err := c.Do(req); err != nil || status != 200 || string(body) != "ok" {
				t.Errorf("after the error: %d %q %v", status, body, err)
			}
		})
	}
}

// TestWireStale: a server that closes a kept-alive connection while it is
// idle does not fail the next request, which goes on a new connection.
func TestWireStale(t *testing.T) {
	ep := rawServer(t, func(_ int, conn net.Conn, _ *bufio.Reader) {
		conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
		// and close, without saying so
	})
	c := newWireConn(context.Background(), ep.addr)
	defer c.Close()
	req := ep.appendRequest(nil, "POST", "/", nil, []byte("{}"))
	for i := range 3 {
		time.Sleep(10 * time.Millisecond) // let the close arrive
		if status, body, err := c.Do(req); err != nil || status != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q %v", i, status, body, err)
		}
	}
}

func TestWireDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := newWireConn(context.Background(), addr)
	if _, _, err := c.Do([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err == nil {
		t.Fatal("no error from a closed port")
	}
}

// TestWireCancel: a request in flight fails once the context ends, and
// none is sent after.
func TestWireCancel(t *testing.T) {
	release := make(chan struct{})
	ep, _ := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	c := newWireConn(ctx, ep.addr)
	defer c.Close()
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, _, err := c.Do(ep.appendRequest(nil, "GET", "/", nil, nil))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("returned after %v", d)
	}
	if _, _, err := c.Do(ep.appendRequest(nil, "GET", "/", nil, nil)); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v, want context.Canceled", err)
	}
}

func TestAppendRequest(t *testing.T) {
	ep, err := parseEndpoint("http://127.0.0.1:8080/prefix/")
	if err != nil {
		t.Fatal(err)
	}
	got := string(ep.appendRequest([]byte("x"), "POST", "/api/v1/nodes/7/uptime", []string{"X-Auth", "a:b"}, []byte(`{}`)))
	want := "xPOST /prefix/api/v1/nodes/7/uptime HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: grid4-loadgen\r\n" +
		"X-Auth: a:b\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// net/http's server reads it as meant.
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(got[1:])))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(req.Body)
	if req.Method != "POST" || req.URL.Path != "/prefix/api/v1/nodes/7/uptime" || req.Header.Get("X-Auth") != "a:b" || !bytes.Equal(body, []byte("{}")) {
		t.Errorf("read back as %s %s %v %q", req.Method, req.URL, req.Header, body)
	}
	if ep, err := parseEndpoint("http://localhost"); err != nil || ep.addr != "localhost:80" || ep.host != "localhost" {
		t.Errorf("no port: %+v %v", ep, err)
	}
	for _, bad := range []string{"https://127.0.0.1:1", "127.0.0.1:80", "http://"} {
		if _, err := parseEndpoint(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestRunnerWire runs a phase with the wire client through the runner, as
// the load generator does: every request is sent once, answers are
// checked, transport errors counted.
func TestRunnerWire(t *testing.T) {
	var hits atomic.Int64
	ep, conns := wireServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if r.URL.Query().Get("i") == "13" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		w.Write([]byte("item " + r.URL.Query().Get("i") + " " + strconv.FormatInt(n, 10)))
	})
	r := &runner{cfg: RunConfig{Concurrency: 4}, ep: ep}
	r.wire = func(buf *[]byte, i int) ([]byte, error) {
		*buf = ep.appendRequest((*buf)[:0], "GET", "/?i="+strconv.Itoa(i), nil, nil)
		return *buf, nil
	}
	r.verify = func(status int, body []byte) bool { return status == 200 && bytes.HasPrefix(body, []byte("item ")) }
	st, hitEnd, err := r.phase(context.Background(), 0, 200, time.Time{}, true)
	if err != nil || hitEnd {
		t.Fatalf("phase: %v, hit end %v", err, hitEnd)
	}
	if len(st.lat) != 200 || st.ok != 199 || st.status[http.StatusTeapot] != 1 || st.transport != 0 || hits.Load() != 200 {
		t.Errorf("%d requests, %d ok, statuses %v, %d transport errors, %d hits", len(st.lat), st.ok, st.status, st.transport, hits.Load())
	}
	if !strings.HasPrefix(st.firstErr, "418") {
		t.Errorf("first error %q", st.firstErr)
	}
	if n := conns.Load(); n != 4 {
		t.Errorf("%d connections, want 4 (one per worker)", n)
	}
}
