// Package wstest is a loopback WebSocket server for tests. Its frames are
// read apart from package websocket's, so that it checks what a client
// does rather than trusting the code under test: the handshake, and that
// every frame is masked. It collects the text messages it receives.
package wstest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/websocket"
)

// Opcodes of the frames the server reads and writes.
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// Server collects the text messages of every connection.
type Server struct {
	// Messages receives each text message.
	Messages chan string
	// Pongs receives the payloads of the pongs clients send (the server
	// pings after a connection's first message).
	Pongs chan string
	// DropAfter closes each connection abruptly after that many messages
	// (0: never). Set it before the first connection.
	DropAfter int
	// BadAccept answers handshakes with a wrong Sec-WebSocket-Accept.
	// Set it before the first connection.
	BadAccept bool

	t     testing.TB
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	paths []string
}

// New starts a server on a loopback port, stopped when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, ln: ln, Messages: make(chan string, 1000), Pongs: make(chan string, 10)}
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

// URL is the ws:// URL of path on the server.
func (s *Server) URL(path string) string { return "ws://" + s.ln.Addr().String() + path }

// Paths are the request URIs of the handshakes so far.
func (s *Server) Paths() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

func (s *Server) serve() {
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

func (s *Server) handle(c net.Conn) {
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
		!websocket.HeaderHasToken(req.Header, "Connection", "Upgrade") || req.Header.Get("Sec-WebSocket-Version") != "13" || len(key) != 24 {
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
		return
	}
	accept := websocket.AcceptKey(key)
	if s.BadAccept {
		accept = websocket.AcceptKey("something else")
	}
	io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+accept+"\r\n\r\n")
	n := 0
	for {
		op, payload, err := readClientFrame(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				s.t.Logf("wstest: %v", err)
			}
			return
		}
		switch op {
		case opText:
			s.Messages <- string(payload)
			n++
			if n == 1 {
				c.Write(serverFrame(opPing, []byte("are you there")))
			}
			if s.DropAfter > 0 && n == s.DropAfter {
				return
			}
		case opPong:
			s.Pongs <- string(payload)
		case opClose:
			c.Write(serverFrame(opClose, payload))
			return
		}
	}
}

// readClientFrame reads a frame and insists it is masked and whole.
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
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
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

// Expect fails t unless the next messages are want, in order, each within
// 10 seconds.
func (s *Server) Expect(t testing.TB, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-s.Messages:
			if got != w {
				t.Fatalf("message %q, want %q", trunc(got), trunc(w))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no message, want %q", trunc(w))
		}
	}
}

// ExpectNothing fails t if a message arrives within d.
func (s *Server) ExpectNothing(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case got := <-s.Messages:
		t.Fatalf("unexpected message %q", got)
	case <-time.After(d):
	}
}

// WaitFor returns the first message containing sub, skipping others,
// failing t if none arrives within d.
func (s *Server) WaitFor(t testing.TB, sub string, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case got := <-s.Messages:
			if strings.Contains(got, sub) {
				return got
			}
		case <-deadline:
			t.Fatalf("no message with %q within %s", sub, d)
		}
	}
}

func trunc(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", s[:40], len(s))
	}
	return s
}
