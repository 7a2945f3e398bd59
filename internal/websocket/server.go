// Package websocket is the server side of RFC 6455 that grid4's tools
// need: accept a connection and read the text messages a client sends
// (gridctl's receiver of machine logs). It answers pings and closes, and
// refuses what the RFC forbids a client (unmasked frames).
package websocket

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
)

// Opcodes (RFC 6455, 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
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

// AcceptKey is the Sec-WebSocket-Accept answering a Sec-WebSocket-Key
// (RFC 6455, 4.2.2).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// Accept checks r is a WebSocket handshake and takes over its connection.
// A request that is not one gets 400 with the reason, and an error.
func Accept(w http.ResponseWriter, r *http.Request) (*Conn, error) {
	key := r.Header.Get("Sec-WebSocket-Key")
	var bad string
	switch {
	case r.Method != http.MethodGet:
		bad = "a WebSocket handshake is a GET"
	case !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !hasToken(r.Header, "Connection", "upgrade"):
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

// hasToken reports whether header name lists token (case-insensitive).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
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
		default:
			return nil, c.fail(fmt.Sprintf("unknown opcode %#x", op))
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

// readFrame reads one frame; client frames must be masked.
func (c *Conn) readFrame() (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	if h[1]&0x80 == 0 {
		return false, 0, nil, errors.New("websocket: protocol error: client frame not masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > MaxMessage {
		return false, 0, nil, fmt.Errorf("websocket: protocol error: frame of %d bytes", n)
	}
	var mask [4]byte
	if _, err := io.ReadFull(c.r, mask[:]); err != nil {
		return false, 0, nil, err
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.r, payload); err != nil {
		return false, 0, nil, err
	}
	for i := range payload {
		payload[i] ^= mask[i&3]
	}
	return fin, op, payload, nil
}

// write sends an unmasked frame (servers do not mask).
func (c *Conn) write(op byte, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	frame := []byte{0x80 | op}
	switch {
	case len(p) < 126:
		frame = append(frame, byte(len(p)))
	case len(p) <= 0xFFFF:
		frame = append(frame, 126, byte(len(p)>>8), byte(len(p)))
	default:
		frame = append(frame, 127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(len(p)))
	}
	_, err := c.c.Write(append(frame, p...))
	return err
}

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }
