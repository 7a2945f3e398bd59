package websocket

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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

// AcceptKey is the Sec-WebSocket-Accept answering a Sec-WebSocket-Key
// (RFC 6455, 4.2.2).
func AcceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// HeaderHasToken reports whether HTTP header name lists token
// (comma-separated, case-insensitive), as Connection: keep-alive, Upgrade.
func HeaderHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// readFrame reads one frame: masked ones from a client, unmasked ones
// from a server (RFC 6455, 5.1), of at most max bytes, with no reserved
// bit and a known opcode.
func readFrame(r io.Reader, masked bool, max uint64) (fin bool, op byte, payload []byte, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return false, 0, nil, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0F
	switch {
	case h[0]&0x70 != 0:
		return false, 0, nil, errors.New("websocket: protocol error: reserved bits set")
	case masked && h[1]&0x80 == 0:
		return false, 0, nil, errors.New("websocket: protocol error: client frame not masked")
	case !masked && h[1]&0x80 != 0:
		return false, 0, nil, errors.New("websocket: protocol error: server sent a masked frame")
	case op > opPong || (op > opBinary && op < opClose):
		return false, 0, nil, fmt.Errorf("websocket: protocol error: unknown opcode %#x", op)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return false, 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > max {
		return false, 0, nil, fmt.Errorf("websocket: protocol error: frame of %d bytes", n)
	}
	var mask [4]byte
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return false, 0, nil, err
		}
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return false, 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i&3]
		}
	}
	return fin, op, payload, nil
}

// encodeFrame is one final frame of op carrying p, masked with mask when
// it is not nil (a client's frames are, a server's are not).
func encodeFrame(op byte, p []byte, mask *[4]byte) []byte {
	f := make([]byte, 0, 14+len(p))
	f = append(f, 0x80|op)
	var m byte
	if mask != nil {
		m = 0x80
	}
	switch n := len(p); {
	case n < 126:
		f = append(f, m|byte(n))
	case n <= 0xFFFF:
		f = append(f, m|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, m|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	if mask == nil {
		return append(f, p...)
	}
	f = append(f, mask[:]...)
	for i, b := range p {
		f = append(f, b^mask[i&3])
	}
	return f
}
