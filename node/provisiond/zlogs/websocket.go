package zlogs

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// This file is a minimal RFC 6455 WebSocket client: enough to send text
// messages to a log collector. It performs the opening handshake, masks
// every frame it sends (section 5.3), answers pings with pongs and closes
// cleanly; it ignores the data frames a server sends.

// webSocketGUID is the fixed GUID of the handshake (RFC 6455 section 1.3).
const webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Frame opcodes (section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxServerFrame bounds a frame the server sends us: we only expect control
// frames (at most 125 bytes), anything big is dropped by closing.
const maxServerFrame = 1 << 20

// ErrHandshake is wrapped when the server does not accept the upgrade.
var ErrHandshake = errors.New("websocket handshake failed")

// wsConn is a client WebSocket connection.
type wsConn struct {
	conn net.Conn
	br   *bufio.Reader

	wmu sync.Mutex // one frame at a time on the wire
	// writeTimeout bounds every frame write.
	writeTimeout time.Duration

	done    chan struct{} // closed when the read loop ends
	doneErr error
}

// acceptKey is the Sec-WebSocket-Accept value for key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + webSocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dialWebSocket opens a WebSocket to a ws:// or wss:// URL. tlsConfig
// (nil for defaults) is used for wss.
func dialWebSocket(ctx context.Context, rawURL string, tlsConfig *tls.Config) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	host := u.Host
	if u.Port() == "" {
		switch u.Scheme {
		case "ws":
			host = net.JoinHostPort(u.Hostname(), "80")
		case "wss":
			host = net.JoinHostPort(u.Hostname(), "443")
		}
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return nil, fmt.Errorf("%w: scheme %q is not ws or wss", ErrHandshake, u.Scheme)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	if u.Scheme == "wss" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if tlsConfig != nil {
			cfg = tlsConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	// The handshake shares the caller's deadline.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := handshake(conn, u)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func handshake(conn net.Conn, u *url.URL) (*wsConn, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	key := base64.StdEncoding.EncodeToString(nonce)
	target := u.RequestURI()
	req := "GET " + target + " HTTP/1.1\r\n" +
		"Host: " + u.Host + "\r\n" +
		"Upgrade: websocket\r\n" +
		"Connection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\n" +
		"Sec-WebSocket-Version: 13\r\n" +
		"User-Agent: grid4-zlogs\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		return nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		return nil, fmt.Errorf("%w: reading the answer: %v", ErrHandshake, err)
	}
	// A 101 has no body; anything else is a refusal whose body we skip.
	if resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: server answered %s", ErrHandshake, resp.Status)
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
		return nil, fmt.Errorf("%w: answer is not a websocket upgrade", ErrHandshake)
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		return nil, fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrHandshake)
	}
	// We asked for no extension or subprotocol, so none may be in use.
	if resp.Header.Get("Sec-WebSocket-Extensions") != "" || resp.Header.Get("Sec-WebSocket-Protocol") != "" {
		return nil, fmt.Errorf("%w: server selected an extension or subprotocol we did not offer", ErrHandshake)
	}
	c := &wsConn{conn: conn, br: br, writeTimeout: 10 * time.Second, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// WriteText sends p as one text message.
func (c *wsConn) WriteText(p []byte) error { return c.writeFrame(opText, p) }

// writeFrame sends one final frame, masked with a fresh key.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return c.err()
	default:
	}
	hdr := make([]byte, 2, 14)
	hdr[0] = 0x80 | op // FIN
	n := len(payload)
	switch {
	case n < 126:
		hdr[1] = 0x80 | byte(n)
	case n <= 0xFFFF:
		hdr[1] = 0x80 | 126
		hdr = binary.BigEndian.AppendUint16(hdr, uint16(n))
	default:
		hdr[1] = 0x80 | 127
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	if _, err := rand.Read(mask[:]); err != nil {
		return err
	}
	hdr = append(hdr, mask[:]...)
	buf := make([]byte, len(hdr)+n)
	copy(buf, hdr)
	for i, b := range payload {
		buf[len(hdr)+i] = b ^ mask[i&3]
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	_, err := c.conn.Write(buf)
	return err
}

// readLoop reads what the server sends: pings are answered, a close is
// echoed and ends the connection, data is ignored.
func (c *wsConn) readLoop() {
	err := c.readFrames()
	c.doneErr = err
	close(c.done)
	c.conn.Close()
}

func (c *wsConn) readFrames() error {
	for {
		op, payload, err := c.readFrame()
		if err != nil {
			return err
		}
		switch op {
		case opPing:
			if err := c.writeFrame(opPong, payload); err != nil {
				return err
			}
		case opClose:
			code := []byte{0x03, 0xE8} // 1000 normal closure
			if len(payload) >= 2 {
				code = payload[:2]
			}
			_ = c.writeFrame(opClose, code)
			return errors.New("websocket closed by the server")
		}
	}
}

// readFrame reads one server frame (never masked, RFC 6455 section 5.1).
func (c *wsConn) readFrame() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	fin, rsv, op := h[0]&0x80 != 0, h[0]&0x70, h[0]&0x0F
	masked, n := h[1]&0x80 != 0, uint64(h[1]&0x7F)
	if rsv != 0 {
		return 0, nil, errors.New("websocket: reserved bits set")
	}
	if masked {
		return 0, nil, errors.New("websocket: server sent a masked frame")
	}
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(c.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	isControl := op&0x8 != 0
	switch {
	case isControl && (n > 125 || !fin):
		return 0, nil, errors.New("websocket: bad control frame")
	case op != opContinuation && op != opText && op != opBinary && !isControl, op > opPong:
		return 0, nil, fmt.Errorf("websocket: unknown opcode %d", op)
	case n > maxServerFrame:
		return 0, nil, fmt.Errorf("websocket: %d-byte frame from the server", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return op, payload, nil
}

// Done is closed when the connection ended.
func (c *wsConn) Done() <-chan struct{} { return c.done }

func (c *wsConn) err() error {
	if c.doneErr != nil {
		return c.doneErr
	}
	return net.ErrClosed
}

// Close sends a normal-closure frame and closes the connection without
// waiting for the server's echo (a log stream has nothing more to read).
func (c *wsConn) Close() error {
	_ = c.writeFrame(opClose, []byte{0x03, 0xE8})
	err := c.conn.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil // the read loop closed it first (the server's close)
	}
	return err
}
