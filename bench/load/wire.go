package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A minimal HTTP/1.1 client for the load generator. On two cores shared
// with the registrar and its database, net/http's client took about 0.6
// of a core at the request rates measured; this one does only what a
// benchmark needs: requests serialized to bytes beforehand (presigned
// uptime reports, GETs) and written with one Write on a keep-alive
// connection, answers parsed for the status line, Content-Length,
// Transfer-Encoding: chunked, Connection: close and the body. It is not a
// general client: no proxies, TLS, redirects, compression or HTTP/2.

// Limits of what wireConn accepts from a server.
const (
	// wireBufferSize is the read buffer: a status or header line longer
	// than this is an error.
	wireBufferSize = 16 << 10
	// wireMaxBody bounds a body.
	wireMaxBody = 64 << 20
	// wireTimeout bounds one request, connection, write and answer (as
	// the net/http client's Timeout did).
	wireTimeout = 30 * time.Second
	// wireDialTimeout bounds connecting.
	wireDialTimeout = 5 * time.Second
)

// wireEndpoint is where requests for a base URL go: the address to dial,
// the Host header and the path prefix of every request target.
type wireEndpoint struct {
	addr, host, prefix string
}

// parseEndpoint parses an http:// base URL.
func parseEndpoint(base string) (wireEndpoint, error) {
	u, err := url.Parse(base)
	if err != nil {
		return wireEndpoint{}, fmt.Errorf("load: target URL: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return wireEndpoint{}, fmt.Errorf("load: target URL %q: want http://HOST:PORT", base)
	}
	e := wireEndpoint{addr: u.Host, host: u.Host, prefix: strings.TrimSuffix(u.EscapedPath(), "/")}
	if u.Port() == "" {
		e.addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return e, nil
}

// appendRequest appends an HTTP/1.1 request to dst: method, the target
// (path and query, after the endpoint's prefix), header name/value pairs
// and body. A request with a body (or a POST, PUT or PATCH) carries its
// Content-Length and Content-Type: application/json.
func (e wireEndpoint) appendRequest(dst []byte, method, target string, header []string, body []byte) []byte {
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, e.prefix...)
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, e.host...)
	dst = append(dst, "\r\nUser-Agent: grid4-loadgen\r\n"...)
	for i := 0; i+1 < len(header); i += 2 {
		dst = append(dst, header[i]...)
		dst = append(dst, ": "...)
		dst = append(dst, header[i+1]...)
		dst = append(dst, "\r\n"...)
	}
	if len(body) > 0 || method == "POST" || method == "PUT" || method == "PATCH" {
		dst = append(dst, "Content-Type: application/json\r\nContent-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// wireConn is one keep-alive connection to an endpoint, used by one
// goroutine. It connects on first use and again after an error or an
// answer with Connection: close.
type wireConn struct {
	ctx  context.Context
	addr string

	conn net.Conn
	br   *bufio.Reader
	// stop unregisters the context watch of conn.
	stop func() bool
	// used counts the requests sent on conn.
	used int
	// body holds the last answer's body; reused.
	body []byte
}

// newWireConn returns a connection to addr, opened on first use. Once ctx
// ends, a request in flight fails and no new one is sent.
func newWireConn(ctx context.Context, addr string) *wireConn {
	return &wireConn{ctx: ctx, addr: addr}
}

// Close closes the connection, if open.
func (c *wireConn) Close() {
	if c.conn != nil {
		c.stop()
		c.conn.Close()
		c.conn = nil
	}
}

// connect opens the connection. A canceled context sets a deadline in the
// past, so that a blocked read or write returns.
func (c *wireConn) connect() error {
	d := net.Dialer{Timeout: wireDialTimeout}
	conn, err := d.DialContext(c.ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.conn, c.used = conn, 0
	c.stop = context.AfterFunc(c.ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, wireBufferSize)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

// errStale marks a failure on a reused connection before the server
// answered anything: the server closed it while idle, and the request may
// be sent again on a new one.
var errStale = errors.New("load: connection closed before the answer")

// Do sends req, a whole serialized request, and reads the answer. The
// body is valid until the next call. An error closes the connection; the
// next call opens a new one. A request that fails on a reused connection
// before any byte of the answer arrives (the server closed the idle
// connection) is sent once more on a new connection.
func (c *wireConn) Do(req []byte) (status int, body []byte, err error) {
	status, body, err = c.roundTrip(req)
	if errors.Is(err, errStale) {
		status, body, err = c.roundTrip(req)
	}
	return status, body, err
}

func (c *wireConn) roundTrip(req []byte) (int, []byte, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, nil, err
	}
	if c.conn == nil {
		if err := c.connect(); err != nil {
			return 0, nil, err
		}
	}
	reused := c.used > 0
	c.used++
	if err := c.conn.SetDeadline(time.Now().Add(wireTimeout)); err != nil {
		c.Close()
		return 0, nil, err
	}
	if err := c.ctx.Err(); err != nil { // canceled before the deadline was set
		c.Close()
		return 0, nil, err
	}
	if _, err := c.conn.Write(req); err != nil {
		c.Close()
		if reused && !isTimeout(err) {
			return 0, nil, fmt.Errorf("%w: %v", errStale, err)
		}
		return 0, nil, err
	}
	status, keep, err := c.readResponse(reused)
	if err != nil {
		c.Close()
		if cerr := c.ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return 0, nil, err
	}
	if !keep {
		c.Close()
	}
	return status, c.body, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readResponse reads one answer (after any 1xx) into c.body, and tells
// whether the connection stays open.
func (c *wireConn) readResponse(reused bool) (status int, keep bool, err error) {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			if reused && len(line) == 0 && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
				return 0, false, fmt.Errorf("%w: %v", errStale, err)
			}
			return 0, false, wireReadErr("status line", err)
		}
		reused = false
		status, keep, err = parseStatusLine(line)
		if err != nil {
			return 0, false, err
		}
		var h wireHeader
		if err := c.readHeader(&h); err != nil {
			return 0, false, err
		}
		if status == 101 {
			return 0, false, errors.New("load: answer 101 Switching Protocols: not supported")
		}
		if status >= 100 && status < 200 {
			continue // 100 Continue, 103 Early Hints: the answer follows
		}
		if h.close {
			keep = false
		} else if h.keepAlive {
			keep = true
		}
		c.body = c.body[:0]
		switch {
		case status == 204 || status == 304:
			// no body
		case h.chunked:
			err = c.readChunked()
		case h.length >= 0:
			err = c.readN(h.length)
		default: // delimited by the end of the connection
			keep = false
			err = c.readToEOF()
		}
		return status, keep, err
	}
}

// parseStatusLine parses "HTTP/1.x SSS reason\r\n" (the reason may be
// missing), and tells whether the protocol keeps connections open by
// default (1.1).
func parseStatusLine(line []byte) (status int, keep bool, err error) {
	l := trimCRLF(line)
	if len(l) < 12 || !bytes.HasPrefix(l, []byte("HTTP/1.")) || l[8] != ' ' || (len(l) > 12 && l[12] != ' ') {
		return 0, false, fmt.Errorf("load: malformed status line %q", truncate(string(line), 80))
	}
	for _, d := range l[9:12] {
		if d < '0' || d > '9' {
			return 0, false, fmt.Errorf("load: malformed status line %q", truncate(string(line), 80))
		}
		status = status*10 + int(d-'0')
	}
	if status < 100 {
		return 0, false, fmt.Errorf("load: malformed status line %q", truncate(string(line), 80))
	}
	return status, l[7] == '1', nil
}

// wireHeader is what an answer's header says about its body and the
// connection.
type wireHeader struct {
	length           int // -1: none given
	chunked          bool
	close, keepAlive bool
}

// readHeader reads header lines up to the empty line.
func (c *wireConn) readHeader(h *wireHeader) error {
	h.length = -1
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return wireReadErr("header", err)
		}
		line = trimCRLF(line)
		if len(line) == 0 {
			return nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(name) == 0 {
			return fmt.Errorf("load: malformed header line %q", truncate(string(line), 80))
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, ok := parseDecimal(value)
			if !ok || (h.length >= 0 && h.length != n) {
				return fmt.Errorf("load: bad Content-Length %q", truncate(string(value), 40))
			}
			h.length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			if !bytes.EqualFold(value, []byte("chunked")) {
				return fmt.Errorf("load: Transfer-Encoding %q: not supported", truncate(string(value), 40))
			}
			h.chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for tok := range bytes.SplitSeq(value, []byte(",")) {
				tok = bytes.TrimSpace(tok)
				if bytes.EqualFold(tok, []byte("close")) {
					h.close = true
				} else if bytes.EqualFold(tok, []byte("keep-alive")) {
					h.keepAlive = true
				}
			}
		}
	}
}

// readN reads a body of n bytes.
func (c *wireConn) readN(n int) error {
	if n > wireMaxBody {
		return fmt.Errorf("load: body of %d bytes: more than %d", n, wireMaxBody)
	}
	c.body = grow(c.body, n)
	_, err := io.ReadFull(c.br, c.body[len(c.body)-n:])
	return wireReadErr("body", err)
}

// readChunked reads a chunked body and its trailer.
func (c *wireConn) readChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return wireReadErr("chunk size", err)
		}
		size, _, _ := bytes.Cut(trimCRLF(line), []byte(";")) // chunk extensions ignored
		n, ok := parseHex(bytes.TrimSpace(size))
		if !ok {
			return fmt.Errorf("load: malformed chunk size %q", truncate(string(line), 40))
		}
		if n == 0 {
			for { // trailer
				line, err := c.br.ReadSlice('\n')
				if err != nil {
					return wireReadErr("trailer", err)
				}
				if len(trimCRLF(line)) == 0 {
					return nil
				}
			}
		}
		if len(c.body)+n > wireMaxBody {
			return fmt.Errorf("load: chunked body of more than %d bytes", wireMaxBody)
		}
		if err := c.readN(n); err != nil {
			return err
		}
		crlf, err := c.br.ReadSlice('\n')
		if err != nil {
			return wireReadErr("chunk", err)
		}
		if len(trimCRLF(crlf)) != 0 {
			return errors.New("load: malformed chunk: no CRLF after its data")
		}
	}
}

// readToEOF reads a body that ends with the connection.
func (c *wireConn) readToEOF() error {
	buf := bytes.NewBuffer(c.body)
	_, err := buf.ReadFrom(io.LimitReader(c.br, wireMaxBody+1))
	c.body = buf.Bytes()
	if err == nil && len(c.body) > wireMaxBody {
		return fmt.Errorf("load: body of more than %d bytes", wireMaxBody)
	}
	return wireReadErr("body", err)
}

// wireReadErr names what was being read when err happened.
func wireReadErr(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case err == io.EOF, err == io.ErrUnexpectedEOF:
		return fmt.Errorf("load: reading the %s: connection closed (%w)", what, io.ErrUnexpectedEOF)
	case err == bufio.ErrBufferFull:
		return fmt.Errorf("load: reading the %s: line longer than %d bytes", what, wireBufferSize)
	}
	return fmt.Errorf("load: reading the %s: %w", what, err)
}

// grow extends b by n bytes.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func trimCRLF(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// parseDecimal parses a non-negative decimal of up to 12 digits.
func parseDecimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 12 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		if d < '0' || d > '9' {
			return 0, false
		}
		n = n*10 + int(d-'0')
	}
	return n, true
}

// parseHex parses a chunk size.
func parseHex(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, d := range b {
		switch {
		case d >= '0' && d <= '9':
			d -= '0'
		case d >= 'a' && d <= 'f':
			d -= 'a' - 10
		case d >= 'A' && d <= 'F':
			d -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int(d)
	}
	return n, true
}
