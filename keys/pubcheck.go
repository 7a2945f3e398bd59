package keys

import (
	"bytes"
	"encoding/hex"
	"fmt"

	"filippo.io/edwards25519"
	schnorrkel "github.com/ChainSafe/go-schnorrkel"
)

// CheckPublicKey refuses public keys that would let anybody sign as their
// owner, or that have more than one encoding:
//
//   - ed25519: the bytes must be the canonical encoding of a curve point
//     (y < p; no "negative zero" x), and the point must not be of small
//     order. For the identity point and the other seven points of order
//     dividing 8, [S]B = R + [k]A has solutions without the private key
//     (for the identity, R = [S]B verifies every message), so a twin with
//     such a key could be impersonated by anybody.
//   - sr25519: the bytes must be a valid ristretto255 encoding (canonical
//     by construction) other than the identity, for the same reason.
//
// Errors wrap ErrInvalidKey. PublicKey.Verify refuses the same weak keys,
// so one that reached a store before this check existed verifies nothing.
func CheckPublicKey(scheme Scheme, key []byte) error {
	if len(key) != PublicKeySize {
		return fmt.Errorf("%w: %s public key is %d bytes, want %d", ErrInvalidKey, scheme, len(key), PublicKeySize)
	}
	switch scheme {
	case Ed25519:
		if err := weakEd25519(key); err != nil {
			return err
		}
		if _, err := new(edwards25519.Point).SetBytes(key); err != nil {
			return fmt.Errorf("%w: ed25519 public key is not a curve point", ErrInvalidKey)
		}
		return nil
	case Sr25519:
		if err := weakSr25519(key); err != nil {
			return err
		}
		var pk [PublicKeySize]byte
		copy(pk[:], key)
		if _, err := schnorrkel.NewPublicKey(pk); err != nil {
			return fmt.Errorf("%w: sr25519 public key is not a ristretto255 point", ErrInvalidKey)
		}
		return nil
	}
	return fmt.Errorf("%w %q", ErrUnknownScheme, scheme)
}

// CheckAnyPublicKey is CheckPublicKey for a key whose scheme is not
// recorded (the registrar's accounts): it passes when the key is sound for
// at least one scheme, and returns ed25519's complaint otherwise.
func CheckAnyPublicKey(key []byte) error {
	errEd := CheckPublicKey(Ed25519, key)
	if errEd == nil || CheckPublicKey(Sr25519, key) == nil {
		return nil
	}
	return errEd
}

// Field and curve constants for weakEd25519, little-endian like the
// encodings. p = 2^255 - 19. The points of small order have y in {1, -1}
// (orders 1 and 2, x = 0), y = 0 (order 4) or y = ±c8 (order 8).
var (
	ed25519P          = mustDecodeHex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	ed25519SmallOrder = [][]byte{
		mustDecodeHex("0000000000000000000000000000000000000000000000000000000000000000"),
		mustDecodeHex("0100000000000000000000000000000000000000000000000000000000000000"),
		mustDecodeHex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
		mustDecodeHex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
		mustDecodeHex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
	}
)

func mustDecodeHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// weakEd25519 is the part of the ed25519 check that needs no point
// arithmetic (about 50 ns, so Verify can afford it on every call): y, the
// encoding without its sign bit, must be below p, and must not be the y of
// a point of small order. A non-canonical "negative zero" x exists only for
// y = ±1, which is refused as small order. Whether the encoding is a curve
// point at all is left to the caller (ed25519.Verify decodes it anyway).
func weakEd25519(key []byte) error {
	var y [PublicKeySize]byte
	copy(y[:], key)
	y[31] &= 0x7f
	if lessOrEqualLE(ed25519P, y[:]) {
		return fmt.Errorf("%w: ed25519 public key is not canonically encoded (y >= p)", ErrInvalidKey)
	}
	for _, s := range ed25519SmallOrder {
		if bytes.Equal(y[:], s) {
			return fmt.Errorf("%w: ed25519 public key is a point of small order", ErrInvalidKey)
		}
	}
	return nil
}

// lessOrEqualLE reports a <= b for equal-length little-endian numbers.
func lessOrEqualLE(a, b []byte) bool {
	for i := len(a) - 1; i >= 0; i-- {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return true
}

// weakSr25519 refuses the ristretto255 identity, whose only encoding is 32
// zero bytes.
func weakSr25519(key []byte) error {
	if bytes.Equal(key, make([]byte, PublicKeySize)) {
		return fmt.Errorf("%w: sr25519 public key is the identity point", ErrInvalidKey)
	}
	return nil
}
