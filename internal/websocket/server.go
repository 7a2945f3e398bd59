// Package websocket is the part of RFC 6455 that grid4 needs, both sides:
// a client that sends text messages (the node's zlogs streams, Dial) and a
// server that accepts connections and reads them (gridctl's receiver of
// machine logs, Accept). Both answer pings and closes and refuse frames
// the other side may not send (unmasked from a client, masked from a
// server).
package websocket

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
)

// MaxMessage bounds a message a Conn reads (frames put together).
const MaxMessage = 1 << 20

// ErrClosed is returned by ReadMessage once the client closed the
// connection.
var ErrClosed = errors.New("websocket: closed by the client")

// Conn is an accepted connection.
type Conn struct {
	c  net.Conn
	r  *bufio.Reader
	mu sync.Mutex // serialises writes
}

// Accept checks r is a WebSocket handshake and takes over its connection.
// A request that is not one gets 400 with the reason, and an error.
func Accept(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	var bad string
	switch {
	case r.Method != http.MethodGet:
		bad = "a WebSocket handshake is a GET"
	case !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !HeaderHasToken(r.Header, "Connection", "upgrade"):
		bad = "not a WebSocket handshake (Upgrade: websocket missing)"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		bad = "unsupported WebSocket version (want 13)"
	case len(key) != 24:
		bad = "bad Sec-WebSocket-Key"
	}
	if bad != "" {
		http.Error(w, bad, http.StatusBadRequest)
		return nil, fmt.Errorf("websocket: %s", bad)
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "connection cannot be taken over", http.StatusInternalServerError)
		return nil, errors.New("websocket: the response writer cannot hijack")
	}
	c, brw, err := hj.Hijack()
	if err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + AcceptKey(key) + "\r\n\r\n"
	if _, err := c.Write([]byte(resp)); err != nil {
		c.Close()
		return nil, fmt.Errorf("websocket: %w", err)
	}
	return &Conn{c: c, r: brw.Reader}, nil
}

// ReadMessage returns the next text or binary message, answering pings
// and putting fragments together. It returns ErrClosed when the client
// closes, and other errors when the connection breaks or the client
// breaks the protocol (the connection is then closed).
func (c *Conn) ReadMessage() ([]byte, error) {
	var msg []byte
	inMessage := false
	for {
		fin, op, payload, err := c.readFrame()
		if err != nil {
			c.c.Close()
			return nil, err
		}
		switch op {
		case opPing:
			if err := c.write(opPong, payload); err != nil {
				return nil, err
			}
			continue
		case opPong:
			continue
		case opClose:
			code := payload
			if len(code) > 2 {
				code = code[:2]
			}
			_ = c.write(opClose, code)
			c.c.Close()
			return nil, ErrClosed
		case opText, opBinary:
			if inMessage {
				return nil, c.fail("a new message inside a fragmented one")
			}
			msg, inMessage = payload, true
		case opContinuation:
			if !inMessage {
				return nil, c.fail("a continuation frame outside a message")
			}
			msg = append(msg, payload...)
		}
		if len(msg) > MaxMessage {
			return nil, c.fail(fmt.Sprintf("message over %d bytes", MaxMessage))
		}
		if fin {
			return msg, nil
		}
	}
}

func (c *Conn) fail(why string) error {
	c.c.Close()
	return fmt.Errorf("websocket: protocol error: %s", why)
}

// readFrame reads one client frame (masked).
func (c *Conn) readFrame() (fin bool, op byte, payload []byte, err error) {
	return readFrame(c.r, true, MaxMessage)
}

// write sends an unmasked frame (servers do not mask).
func (c *Conn) write(op byte, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.c.Write(encodeFrame(op, p, nil))
	return err
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }
