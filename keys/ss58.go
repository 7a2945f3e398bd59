package keys

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/blake2b"
)

// GenericSS58Prefix is the SS58 address prefix of "generic Substrate"
// addresses (the ones starting with 5 for 32-byte keys), which the grid uses
// unless told otherwise.
const GenericSS58Prefix uint16 = 42

// MaxSS58Prefix is the largest SS58 prefix (14 bits).
const MaxSS58Prefix uint16 = 1<<14 - 1

// Errors callers may branch on.
var (
	// ErrInvalidAddress is returned by SS58Decode for anything that is not a
	// valid SS58 address, a checksum failure included.
	ErrInvalidAddress = errors.New("invalid SS58 address")
	// ErrSS58Checksum is returned (wrapped together with ErrInvalidAddress)
	// when the address is well formed but its checksum does not match:
	// usually a typo.
	ErrSS58Checksum = errors.New("SS58 checksum mismatch")
)

// ss58Context is hashed in front of the payload to make the checksum.
const ss58Context = "SS58PRE"

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// SS58Encode encodes a public key as an SS58 address with the given network
// prefix: base58(prefix ‖ pub ‖ checksum), where the checksum is the first
// bytes of blake2b-512("SS58PRE" ‖ prefix ‖ pub). Prefixes below 64 take one
// byte, prefixes 64..16383 two.
//
// pub is normally a 32-byte key (33 bytes for compressed ECDSA keys; both
// get a 2-byte checksum); the 1-, 2-, 4- and 8-byte account indices of the
// SS58 format get a 1-byte checksum. It panics for other lengths or a prefix
// above MaxSS58Prefix: those are programming errors, and silently masking the
// prefix would produce another network's address.
func SS58Encode(pub []byte, prefix uint16) string {
	if prefix > MaxSS58Prefix {
		panic(fmt.Sprintf("keys.SS58Encode: prefix %d is above %d", prefix, MaxSS58Prefix))
	}
	csLen := ss58ChecksumLen(len(pub))
	if csLen == 0 {
		panic(fmt.Sprintf("keys.SS58Encode: %d-byte payload, want 1, 2, 4, 8, 32 or 33 bytes", len(pub)))
	}
	data := appendSS58Prefix(nil, prefix)
	data = append(data, pub...)
	sum := ss58Checksum(data)
	return base58Encode(append(data, sum[:csLen]...))
}

// SS58Decode decodes an SS58 address into its payload (the public key) and
// network prefix, checking the checksum. Non-canonical prefix encodings (a
// two-byte form for a prefix below 64) are rejected so that every key and
// prefix has exactly one address.
func SS58Decode(addr string) (pub []byte, prefix uint16, err error) {
	raw, err := base58Decode(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalidAddress, err)
	}
	if len(raw) == 0 {
		return nil, 0, fmt.Errorf("%w: empty", ErrInvalidAddress)
	}
	var prefixLen int
	switch first := raw[0]; {
	case first < 64:
		prefix, prefixLen = uint16(first), 1
	case first < 128:
		if len(raw) < 2 {
			return nil, 0, fmt.Errorf("%w: too short", ErrInvalidAddress)
		}
		// The 14-bit prefix is packed as: first byte = 01 + bits 2..7,
		// second byte = bits 0..1 in its top two bits + bits 8..13.
		lower := raw[0]<<2 | raw[1]>>6
		upper := raw[1] & 0x3f
		prefix, prefixLen = uint16(lower)|uint16(upper)<<8, 2
		if prefix < 64 {
			return nil, 0, fmt.Errorf("%w: prefix %d in the two-byte form", ErrInvalidAddress, prefix)
		}
	default:
		return nil, 0, fmt.Errorf("%w: reserved prefix byte 0x%02x", ErrInvalidAddress, first)
	}
	body := raw[prefixLen:]
	// The payload length decides the checksum length; try the two-byte
	// checksum forms (public keys) first, then the one-byte ones (indices).
	for _, csLen := range []int{2, 1} {
		n := len(body) - csLen
		if n < 1 || ss58ChecksumLen(n) != csLen {
			continue
		}
		sum := ss58Checksum(raw[:prefixLen+n])
		if !bytes.Equal(body[n:], sum[:csLen]) {
			return nil, 0, fmt.Errorf("%w: %w", ErrInvalidAddress, ErrSS58Checksum)
		}
		return append([]byte(nil), body[:n]...), prefix, nil
	}
	return nil, 0, fmt.Errorf("%w: %d-byte body is not a known SS58 length", ErrInvalidAddress, len(body))
}

// ss58ChecksumLen is the checksum length for a payload of n bytes, or 0 if
// SS58 has no such payload.
func ss58ChecksumLen(n int) int {
	switch n {
	case 1, 2, 4, 8:
		return 1
	case 32, 33:
		return 2
	}
	return 0
}

func appendSS58Prefix(dst []byte, prefix uint16) []byte {
	if prefix < 64 {
		return append(dst, byte(prefix))
	}
	return append(dst,
		byte(prefix&0xfc)>>2|0x40,
		byte(prefix>>8)|byte(prefix&0x03)<<6)
}

func ss58Checksum(data []byte) [64]byte {
	return blake2b.Sum512(append([]byte(ss58Context), data...))
}

// base58Encode is Bitcoin's base58: the bytes as a big-endian number in
// base 58, with one '1' per leading zero byte.
func base58Encode(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	n := new(big.Int).SetBytes(b)
	base, mod := big.NewInt(58), new(big.Int)
	var digits []byte
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		digits = append(digits, base58Alphabet[mod.Int64()])
	}
	out := make([]byte, 0, zeros+len(digits))
	for range zeros {
		out = append(out, '1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		out = append(out, digits[i])
	}
	return string(out)
}

// base58MaxLen bounds the input so a hostile string cannot make decoding
// quadratic in a huge length; real addresses are under 60 characters.
const base58MaxLen = 128

func base58Decode(s string) ([]byte, error) {
	if len(s) > base58MaxLen {
		return nil, fmt.Errorf("%d characters is too long", len(s))
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	n, base := new(big.Int), big.NewInt(58)
	for i := zeros; i < len(s); i++ {
		d := bytes.IndexByte([]byte(base58Alphabet), s[i])
		if d < 0 {
			return nil, fmt.Errorf("character %d (%q) is not base58", i+1, s[i])
		}
		n.Mul(n, base)
		n.Add(n, big.NewInt(int64(d)))
	}
	return append(make([]byte, zeros), n.Bytes()...), nil
}
