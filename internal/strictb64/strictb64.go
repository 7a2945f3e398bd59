// Package strictb64 decodes base64 with exactly one accepted spelling per
// byte string.
//
// encoding/base64 is lenient by default: it ignores CR and LF anywhere in
// the input and accepts non-zero bits in the padding of the last group, so
// one byte string has many spellings ("QQ==", "QR==", "QS==" … all decode to
// "A"). A server that remembers what it has seen by its text (a replay
// guard, a cache key, a uniqueness check) can be walked around by
// re-spelling. Every base64 grid4 reads from the network or from a file
// goes through this package, so the text a peer sends is the canonical one
// or is refused. Encoders (base64.StdEncoding.EncodeToString and every
// public Grid client) always write the canonical spelling, so nothing
// legitimate is refused.
package strictb64

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrNotCanonical is wrapped by every error of this package.
var ErrNotCanonical = errors.New("not canonical base64")

var (
	std    = base64.StdEncoding.Strict()
	rawStd = base64.RawStdEncoding.Strict()
	url    = base64.URLEncoding.Strict()
	rawURL = base64.RawURLEncoding.Strict()
)

// Std decodes s as standard base64 with padding (RFC 4648 section 4), the
// form grid4 and the public registrar write.
func Std(s string) ([]byte, error) { return decode(std, s) }

// RawStd decodes s as standard base64 without padding.
func RawStd(s string) ([]byte, error) { return decode(rawStd, s) }

// URL decodes s as URL-safe base64 with padding (RFC 4648 section 5).
func URL(s string) ([]byte, error) { return decode(url, s) }

// RawURL decodes s as URL-safe base64 without padding.
func RawURL(s string) ([]byte, error) { return decode(rawURL, s) }

func decode(enc *base64.Encoding, s string) ([]byte, error) {
	// Strict mode still skips CR and LF; refuse them so that the text is
	// the only spelling of its bytes.
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return nil, fmt.Errorf("%w: line break at offset %d", ErrNotCanonical, i)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCanonical, err)
	}
	return b, nil
}

// Respellings returns the other texts that a lenient standard-base64
// decoder maps to the same bytes as the padded text s: the unused low bits
// of its last character set to every other value. Std refuses each of them.
// Tests use it to show that a re-spelled credential is refused.
func Respellings(s string) []string {
	want, err := base64.StdEncoding.DecodeString(s)
	pad := strings.Count(s, "=")
	if err != nil || pad == 0 {
		return nil
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := len(s) - pad - 1
	var out []string
	for _, c := range alphabet {
		v := s[:i] + string(c) + s[i+1:]
		if got, err := base64.StdEncoding.DecodeString(v); v != s && err == nil && string(got) == string(want) {
			out = append(out, v)
		}
	}
	return out
}
