package load

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The client benchmarks compare the CPU the load generator spends per
// request with net/http's client and with its own (wire.go). The server
// runs in a child process (this test binary again), so that the process
// CPU time measured is the client's alone: the figure reported is
// "client-µs/req", the load generator's user + system CPU per request,
// runtime and garbage collection included, through the same runner code
// the side-by-side runs use (latency recording and answer checks
// included).
//
//	go test -run '^$' -bench Client -benchtime 100000x ./bench/load/

// answerServerEnv makes the test binary serve benchmark answers instead
// of running tests.
const answerServerEnv = "GRID4_BENCH_ANSWER_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(answerServerEnv) == "1" {
		serveAnswers()
		return
	}
	os.Exit(m.Run())
}

// Answers of the benchmark server, shaped like a registrar's: the version
// (small, Content-Length), an uptime report's reply, and a page of 50
// nodes (about 30 kB written at once: chunked, as Gin sends it).
var (
	answerVersion = []byte(`{"version":"v4.1.0","safe_to_upgrade":true}`)
	answerUptime  = []byte(`{"message":"uptime reported successfully"}`)
	answerList    = []byte("[" + strings.TrimSuffix(strings.Repeat(`{"node_id":123456,"farm_id":7,"twin_id":654321,"location":{"country":"Belgium","city":"Ghent","longitude":"3.72","latitude":"51.05"},"resources":{"hru":4398046511104,"sru":1099511627776,"cru":16,"mru":68719476736},"interfaces":[{"name":"eth0","mac":"52:54:00:00:00:01","ips":"10.0.0.2/24"}],"secure_boot":true,"virtualized":false,"serial_number":"SN-1","uptime":[],"approved":false},`, 50), ",") + "]")
)

// serveAnswers serves the answers on a loopback port, writes its address
// to stdout and exits when stdin closes.
func serveAnswers() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/zos/version", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(answerVersion)
	})
	mux.HandleFunc("POST /api/v1/nodes/{id}/uptime", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write(answerUptime)
	})
	mux.HandleFunc("GET /api/v1/nodes", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(answerList)
	})
	http.Serve(ln, mux)
}

// startAnswerServer starts the answer server and returns its base URL.
func startAnswerServer(b *testing.B) string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), answerServerEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + strings.TrimSpace(addr)
}

// BenchmarkClient sends each route's requests through a runner phase with
// net/http's client and with the wire client.
func BenchmarkClient(b *testing.B) {
	base := startAnswerServer(b)
	ep, err := parseEndpoint(base)
	if err != nil {
		b.Fatal(err)
	}
	// A legacy X-Auth header as long as a real one.
	xauth := "12345:" + strings.Repeat("A", 56) + ":" + strings.Repeat("B", 88)
	uptimeBody := []byte(`{"uptime":1234567,"timestamp":1764936000}`)
	routes := []struct {
		name   string
		conc   int
		method string
		target string
		header []string
		body   []byte
		verify func(int, []byte) bool
	}{
		{"version", 8, http.MethodGet, "/api/v1/zos/version", nil, nil,
			func(s int, b []byte) bool { return s == http.StatusOK && len(b) > 2 }},
		{"uptime", 32, http.MethodPost, "/api/v1/nodes/42/uptime", []string{"X-Auth", xauth}, uptimeBody,
			func(s int, _ []byte) bool { return s == http.StatusCreated }},
		{"list", 8, http.MethodGet, "/api/v1/nodes?farm_id=7&size=50", nil, nil,
			func(s int, b []byte) bool { return s == http.StatusOK && bytes.HasPrefix(b, []byte(`[{"`)) }},
	}
	for _, rt := range routes {
		for _, client := range []string{"nethttp", "wire"} {
			b.Run(rt.name+"/"+client, func(b *testing.B) {
				r := &runner{cfg: RunConfig{Concurrency: rt.conc}, ep: ep, verify: rt.verify}
				if client == "nethttp" {
					r.client = newClient(rt.conc)
					defer r.client.CloseIdleConnections()
					// As the side-by-side runs build them: a new request
					// each time.
					r.build = func(ctx context.Context, _ int) (*http.Request, error) {
						var body io.Reader
						if rt.body != nil {
							body = bytes.NewReader(rt.body)
						}
						req, err := http.NewRequestWithContext(ctx, rt.method, base+rt.target, body)
						if err != nil {
							return nil, err
						}
						if rt.body != nil {
							req.Header.Set("Content-Type", "application/json")
						}
						for i := 0; i+1 < len(rt.header); i += 2 {
							req.Header.Set(rt.header[i], rt.header[i+1])
						}
						return req, nil
					}
				} else {
					wire := ep.appendRequest(nil, rt.method, rt.target, rt.header, rt.body)
					r.wire = func(*[]byte, int) ([]byte, error) { return wire, nil }
				}
				// Warm up: net/http keeps its connections for the measured
				// phase; the wire client opens its own per phase (one dial
				// per worker).
				if _, _, err := r.phase(context.Background(), 0, 4*rt.conc, time.Time{}, true); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				cpu0 := selfCPU()
				b.ResetTimer()
				st, _, err := r.phase(context.Background(), 0, b.N, time.Time{}, true)
				b.StopTimer()
				cpu := selfCPU() - cpu0
				if err != nil {
					b.Fatal(err)
				}
				if st.ok != b.N {
					b.Fatalf("%d of %d ok, first error %q", st.ok, b.N, st.firstErr)
				}
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "client-µs/req")
			})
		}
	}
}
