package zlogs

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/provisiond"
)

// wsServer is a loopback WebSocket server written from RFC 6455 for these
// tests: it checks the client's handshake and framing (every frame
// masked), and collects the text messages.
type wsServer struct {
	t        *testing.T
	ln       net.Listener
	messages chan string
	// dropAfter closes each connection abruptly after that many messages
	// (0: never).
	dropAfter int
	// badAccept answers the handshake with a wrong Sec-WebSocket-Accept.
	badAccept bool
	// pongs receives the payloads of pongs the client sends.
	pongs chan string

	mu    sync.Mutex
	conns []net.Conn
	paths []string
}

func newWSServer(t *testing.T) *wsServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &wsServer{t: t, ln: ln, messages: make(chan string, 1000), pongs: make(chan string, 10)}
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *wsServer) url(path string) string { return "ws://" + s.ln.Addr().String() + path }

func (s *wsServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, c)
		s.mu.Unlock()
		go s.handle(c)
	}
}

func (s *wsServer) handle(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.paths = append(s.paths, req.URL.RequestURI())
	s.mu.Unlock()
	key := req.Header.Get("Sec-WebSocket-Key")
	if req.Method != "GET" || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") ||
		!headerHasToken(req.Header, "Connection", "Upgrade") || req.Header.Get("Sec-WebSocket-Version") != "13" || len(key) != 24 {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		return
	}
	accept := acceptKey(key)
	if s.badAccept {
		accept = acceptKey("something else")
	}
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+accept+"\r\n\r\n")
	n := 0
	for {
		op, payload, err := readClientFrame(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.t.Logf("server: %v", err)
			}
			return
		}
		switch op {
		case opText:
			s.messages <- string(payload)
			n++
			if n == 1 {
				// Ping after the first message; the client must pong.
				c.Write(serverFrame(opPing, []byte("are you there")))
			}
			if s.dropAfter > 0 && n == s.dropAfter {
				return
			}
		case opPong:
			s.pongs <- string(payload)
		case opClose:
			c.Write(serverFrame(opClose, payload))
			return
		}
	}
}

// readClientFrame reads a frame and insists it is masked.
func readClientFrame(r *bufio.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0]&0x80 == 0 {
		return 0, nil, errors.New("fragmented frame")
	}
	if h[1]&0x80 == 0 {
		return 0, nil, errors.New("client frame not masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	if _, err := io.ReadFull(r, mask[:]); err != nil {
		return 0, nil, err
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	for i := range p {
		p[i] ^= mask[i&3]
	}
	return h[0] & 0x0F, p, nil
}

func serverFrame(op byte, p []byte) []byte {
	return append([]byte{0x80 | op, byte(len(p))}, p...)
}

func (s *wsServer) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-s.messages:
			if got != w {
				t.Fatalf("message %q, want %q", trunc(got), trunc(w))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no message, want %q", trunc(w))
		}
	}
}

func (s *wsServer) expectNothing(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-s.messages:
		t.Fatalf("unexpected message %q", got)
	case <-time.After(d):
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", s[:40], len(s))
	}
	return s
}

func TestWebSocketClient(t *testing.T) {
	srv := newWSServer(t)
	ctx := context.Background()
	c, err := dialWebSocket(ctx, srv.url("/logs?machine=vm"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Short, 16-bit and 64-bit lengths.
	long16 := strings.Repeat("a", 300)
	long64 := strings.Repeat("b", 70000)
	for _, m := range []string{"hello", long16, long64, ""} {
		if err := c.WriteText([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	srv.expect(t, "hello", long16, long64, "")
	select {
	case p := <-srv.pongs:
		if p != "are you there" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	path := srv.paths[0]
	srv.mu.Unlock()
	if path != "/logs?machine=vm" {
		t.Fatalf("request target %q", path)
	}
}

func TestWebSocketHandshakeRefused(t *testing.T) {
	srv := newWSServer(t)
	srv.badAccept = true
	_, err := dialWebSocket(context.Background(), srv.url("/"), nil)
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "Sec-WebSocket-Accept") {
		t.Fatalf("bad accept: %v", err)
	}
	// A plain HTTP server refuses the upgrade.
	hs := &http.Server{Handler: http.NotFoundHandler()}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go hs.Serve(ln)
	defer hs.Close()
	_, err = dialWebSocket(context.Background(), "ws://"+ln.Addr().String()+"/", nil)
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}

func task(machine, output string) provisiond.Task {
	data, _ := json.Marshal(gridtypes.ZLogsData{ZMachine: machine, Output: output})
	return provisiond.Task{TwinID: 7, DeploymentID: 3, Workload: gridtypes.Workload{Name: "logs", Type: gridtypes.ZLogsType, Data: data},
		Siblings: map[string]gridtypes.Result{machine: {State: gridtypes.StateOk}}}
}

// TestMachineNotRunning: a stream of a machine that failed, or was lost
// at a restart, is refused with the machine's reason: it would read ok
// and carry nothing.
func TestMachineNotRunning(t *testing.T) {
	m, err := New(Config{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tk := task("vm", "ws://127.0.0.1:9/logs")
	tk.Siblings["vm"] = gridtypes.Result{State: gridtypes.StateError, Message: "no hypervisor"}
	if _, err := m.Provision(context.Background(), tk); err == nil || !strings.Contains(err.Error(), `machine "vm" is in state error: no hypervisor`) {
		t.Errorf("Provision: %v", err)
	}
	tk.State = gridtypes.StateOk
	if err := m.Restore(context.Background(), tk); err == nil || !strings.Contains(err.Error(), "no hypervisor") {
		t.Errorf("Restore: %v", err)
	}
	delete(tk.Siblings, "vm")
	if err := m.Restore(context.Background(), tk); err == nil {
		t.Error("Restore of a stream without its machine succeeded")
	}
	if m.Streaming(tk.ID()) {
		t.Error("a refused stream runs")
	}
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStreamsMachineLog(t *testing.T) {
	srv := newWSServer(t)
	srv.dropAfter = 3 // the collector drops the connection after 3 lines
	dir := t.TempDir()
	m, err := New(Config{LogDir: dir, Poll: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	tk := task("vm", srv.url("/collect"))
	logFile := m.LogFile(tk, "vm")
	if logFile != filepath.Join(dir, "7-3-vm.log") {
		t.Fatalf("log file %s", logFile)
	}
	// Lines written before the stream starts are sent too.
	appendLines(t, logFile, "boot 1", "boot 2")
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(Result); r.Source != logFile || r.Output != srv.url("/collect") {
		t.Fatalf("result %+v", r)
	}
	srv.expect(t, "boot 1", "boot 2")
	// The third line ends the first connection. Lines sent into the dead
	// connection before the client notices are lost (WebSocket has no
	// acknowledgements); once it notices, it reconnects and goes on.
	appendLines(t, logFile, "line 3")
	srv.expect(t, "line 3")
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		appendLines(t, logFile, fmt.Sprintf("probe %d", i))
		select {
		case m := <-srv.messages:
			if !strings.HasPrefix(m, "probe ") {
				t.Fatalf("unexpected %q", m)
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the stream did not reconnect")
			}
			continue
		}
		break
	}
	// Drain the probes still in flight.
	for drained := false; !drained; {
		select {
		case <-srv.messages:
		case <-time.After(100 * time.Millisecond):
			drained = true
		}
	}
	// A partial line waits for its newline.
	f, _ := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("half")
	srv.expectNothing(t, 100*time.Millisecond)
	f.WriteString(" and half\n")
	f.Close()
	srv.expect(t, "half and half")

	// Paused: nothing goes out; resumed: new lines only.
	if err := m.Pause(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if m.Streaming(tk.ID()) {
		t.Fatal("still streaming while paused")
	}
	appendLines(t, logFile, "while paused")
	srv.expectNothing(t, 100*time.Millisecond)
	if err := m.Resume(ctx, tk); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the resumed stream starts at the end
	appendLines(t, logFile, "after resume")
	srv.expect(t, "after resume")

	// Truncated (log rotated in place): read from the start again.
	if err := os.Truncate(logFile, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	appendLines(t, logFile, "rotated")
	srv.expect(t, "rotated")

	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	appendLines(t, logFile, "after delete")
	srv.expectNothing(t, 100*time.Millisecond)
}

func TestProvisionFailsWhenTargetIsDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	m, _ := New(Config{LogDir: t.TempDir(), DialTimeout: time.Second})
	_, err := m.Provision(context.Background(), task("vm", "ws://"+addr+"/x"))
	if err == nil || !strings.Contains(err.Error(), "zlogs: cannot connect to ws://"+addr+"/x") {
		t.Fatalf("error %v", err)
	}
	if m.Streaming(task("vm", "").ID()) {
		t.Fatal("a failed provision left a stream")
	}
}

func TestRestoreSkipsPaused(t *testing.T) {
	srv := newWSServer(t)
	dir := t.TempDir()
	m, _ := New(Config{LogDir: dir, Poll: 10 * time.Millisecond})
	defer m.Close()
	tk := task("vm", srv.url("/"))
	tk.State = gridtypes.StatePaused
	if err := m.Restore(context.Background(), tk); err != nil || m.Streaming(tk.ID()) {
		t.Fatalf("restored a paused stream: %v", err)
	}
	tk.State = gridtypes.StateOk
	// A stream that never recorded a position sends the whole log.
	appendLines(t, m.LogFile(tk, "vm"), "old")
	if err := m.Restore(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	appendLines(t, m.LogFile(tk, "vm"), "new")
	srv.expect(t, "old", "new")
}

// TestRestoreCarriesOn: a stream restored after the node stopped sends
// what the machine wrote meanwhile, and not again what it had sent; a
// resumed one only what comes after; Deprovision forgets the position.
func TestRestoreCarriesOn(t *testing.T) {
	srv := newWSServer(t)
	dir := t.TempDir()
	cfg := Config{LogDir: dir, Poll: 10 * time.Millisecond}
	m, _ := New(cfg)
	ctx := context.Background()
	tk := task("vm", srv.url("/"))
	logFile := m.LogFile(tk, "vm")
	appendLines(t, logFile, "boot")
	if _, err := m.Provision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	srv.expect(t, "boot")
	appendLines(t, logFile, "up")
	srv.expect(t, "up")
	m.Close() // the node stops
	appendLines(t, logFile, "while down 1", "while down 2")

	m, _ = New(cfg)
	defer m.Close()
	if err := m.Restore(ctx, tk); err != nil {
		t.Fatal(err)
	}
	srv.expect(t, "while down 1", "while down 2")
	srv.expectNothing(t, 100*time.Millisecond)

	// A log replaced while the node was down is sent from its start.
	m.Close()
	if err := os.Remove(logFile); err != nil {
		t.Fatal(err)
	}
	appendLines(t, logFile, "new log")
	if err := m.Restore(ctx, tk); err != nil {
		t.Fatal(err)
	}
	srv.expect(t, "new log")

	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.positionFile(tk.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("position left after deprovision: %v", err)
	}
}
