package websocket

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
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

// This file is the client side: enough to send text messages (zlogs'
// streams to a log collector). It performs the opening handshake, masks
// every frame it sends (section 5.3), answers pings with pongs and closes
// cleanly; it ignores the data frames a server sends.

// maxServerFrame bounds a frame the server sends: a client only expects
// control frames (at most 125 bytes), anything big is dropped by closing.
const maxServerFrame = 1 << 20

// ErrHandshake is wrapped when the server does not accept the upgrade.
var ErrHandshake = errors.New("websocket handshake failed")

// Client is a client WebSocket connection.
type Client struct {
	conn net.Conn
	br   *bufio.Reader

	wmu sync.Mutex // one frame at a time on the wire
	// writeTimeout bounds every frame write.
	writeTimeout time.Duration

	done    chan struct{} // closed when the read loop ends
	doneErr error
}

// Dial opens a WebSocket to a ws:// or wss:// URL. tlsConfig (nil for
// defaults) is used for wss. userAgent names the program to the server.
func Dial(ctx context.Context, rawURL string, tlsConfig *tls.Config, userAgent string) (*Client, error) {
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
	c, err := handshake(conn, u, userAgent)
	if err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return c, nil
}

func handshake(conn net.Conn, u *url.URL, userAgent string) (*Client, error) {
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
		"User-Agent: " + userAgent + "\r\n\r\n"
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
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !HeaderHasToken(resp.Header, "Connection", "upgrade") {
		return nil, fmt.Errorf("%w: answer is not a websocket upgrade", ErrHandshake)
	}
	if resp.Header.Get("Sec-WebSocket-Accept") != AcceptKey(key) {
		return nil, fmt.Errorf("%w: wrong Sec-WebSocket-Accept", ErrHandshake)
	}
	// We asked for no extension or subprotocol, so none may be in use.
	if resp.Header.Get("Sec-WebSocket-Extensions") != "" || resp.Header.Get("Sec-WebSocket-Protocol") != "" {
		return nil, fmt.Errorf("%w: server selected an extension or subprotocol we did not offer", ErrHandshake)
	}
	c := &Client{conn: conn, br: br, writeTimeout: 10 * time.Second, done: make(chan struct{})}
	go c.readLoop()
	return c, nil
}

// WriteText sends p as one text message.
func (c *Client) WriteText(p []byte) error { return c.writeFrame(opText, p) }

// writeFrame sends one final frame, masked with a fresh key.
func (c *Client) writeFrame(op byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.done:
		return c.err()
	default:
	}
	var mask [4]byte
	if _, err := rand.Read(mask[:]); err != nil {
		return err
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	_, err := c.conn.Write(encodeFrame(op, payload, &mask))
	return err
}

// readLoop reads what the server sends: pings are answered, a close is
// echoed and ends the connection, data is ignored.
func (c *Client) readLoop() {
	err := c.readFrames()
	c.doneErr = err
	close(c.done)
	c.conn.Close()
}

func (c *Client) readFrames() error {
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
func (c *Client) readFrame() (byte, []byte, error) {
	fin, op, payload, err := readFrame(c.br, false, maxServerFrame)
	if err != nil {
		return 0, nil, err
	}
	if op&0x8 != 0 && (len(payload) > 125 || !fin) {
		return 0, nil, errors.New("websocket: bad control frame")
	}
	return op, payload, nil
}

// Done is closed when the connection ended.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) err() error {
	if c.doneErr != nil {
		return c.doneErr
	}
	return net.ErrClosed
}

// Close sends a normal-closure frame and closes the connection without
// waiting for the server's echo (a log stream has nothing more to read).
func (c *Client) Close() error {
	_ = c.writeFrame(opClose, []byte{0x03, 0xE8})
	err := c.conn.Close()
	<-c.done
	if errors.Is(err, net.ErrClosed) {
		err = nil // the read loop closed it first (the server's close)
	}
	return err
}
