package websocket

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// clientFrame is a masked frame, as a client sends.
func clientFrame(fin bool, op byte, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch {
	case len(p) < 126:
		f = append(f, 0x80|byte(len(p)))
	case len(p) <= 0xFFFF:
		f = append(f, 0x80|126, byte(len(p)>>8), byte(len(p)))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(p)))
	}
	mask := [4]byte{1, 2, 3, 4}
	f = append(f, mask[:]...)
	for i, c := range p {
		f = append(f, c^mask[i&3])
	}
	return f
}

// serve accepts one connection and sends what it reads to got.
func serve(t *testing.T) (addr string, got chan string, errs chan error) {
	got, errs = make(chan string, 10), make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r)
		if err != nil {
			errs <- err
			return
		}
		defer c.Close()
		for {
			m, err := c.ReadMessage()
			if err != nil {
				errs <- err
				return
			}
			got <- string(m)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), got, errs
}

// dial makes the handshake and checks the server's answer.
func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	io.WriteString(c, "GET /logs/vm HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The RFC's own example: this key is answered with this value.
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake answer %s %v", resp.Status, resp.Header)
	}
	return c, br
}

func TestReadMessages(t *testing.T) {
	addr, got, errs := serve(t)
	c, br := dial(t, addr)
	long := strings.Repeat("x", 70000)
	var out bytes.Buffer
	out.Write(clientFrame(true, opText, []byte("line 1")))
	out.Write(clientFrame(false, opText, []byte("frag")))
	out.Write(clientFrame(true, opPing, []byte("hi"))) // between fragments
	out.Write(clientFrame(false, opContinuation, []byte("men")))
	out.Write(clientFrame(true, opContinuation, []byte("ted")))
	out.Write(clientFrame(true, opText, []byte(long)))
	out.Write(clientFrame(true, opClose, []byte{0x03, 0xE8}))
	c.Write(out.Bytes())
	for _, want := range []string{"line 1", "fragmented", long} {
		if m := <-got; m != want {
			t.Fatalf("message %.20q, want %.20q", m, want)
		}
	}
	if err := <-errs; !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	// The pong, then the close echoed.
	want := append([]byte{0x80 | opPong, 2}, "hi"...)
	want = append(want, 0x80|opClose, 2, 0x03, 0xE8)
	b := make([]byte, len(want))
	if _, err := io.ReadFull(br, b); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("server sent %x (%v), want %x", b, err, want)
	}
}

func TestRefusals(t *testing.T) {
	addr, _, errs := serve(t)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("plain GET: %s", resp.Status)
	}
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "not a WebSocket handshake") {
		t.Fatalf("plain GET: %v", err)
	}
	c, _ := dial(t, addr)
	c.Write([]byte{0x81, 0x02, 'h', 'i'}) // unmasked
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "not masked") {
		t.Fatalf("unmasked frame: %v", err)
	}
	c, _ = dial(t, addr)
	c.Write(clientFrame(true, opContinuation, []byte("x")))
	if err := <-errs; err == nil || !strings.Contains(err.Error(), "continuation frame outside a message") {
		t.Fatalf("stray continuation: %v", err)
	}
}

// FuzzReadMessage: whatever a client sends, ReadMessage returns messages
// or an error, never panics, and never returns more than MaxMessage.
func FuzzReadMessage(f *testing.F) {
	f.Add(clientFrame(true, opText, []byte("hello")))
	f.Add(append(clientFrame(false, opText, []byte("a")), clientFrame(true, opContinuation, []byte("b"))...))
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		go func() {
			client.Write(data)
			client.Close()
		}()
		defer server.Close()
		c := &Conn{c: server, r: bufio.NewReader(server)}
		go io.Copy(io.Discard, client) // pongs and closes
		for range 100 {
			m, err := c.ReadMessage()
			if err != nil {
				return
			}
			if len(m) > MaxMessage {
				t.Fatalf("message of %d bytes", len(m))
			}
		}
	})
}
