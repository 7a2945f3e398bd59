// Package keys provides the grid's cryptographic identities: ed25519 and
// sr25519 key pairs, their public keys, and signature verification.
//
// Every entity on the grid (a node, a farmer, a user) is a twin identified by
// a public key. Both schemes use a 32-byte secret seed (for sr25519, the
// schnorrkel "mini secret key", expanded the way Substrate does it), produce
// 32-byte public keys and 64-byte signatures. sr25519 signatures use the
// "substrate" signing context, so they verify with polkadot.js and subkey.
package keys

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"

	"github.com/grid4/grid4/internal/strictb64"
)

// Scheme names a signature scheme.
type Scheme string

// The schemes the grid accepts.
const (
	Ed25519 Scheme = "ed25519"
	Sr25519 Scheme = "sr25519"
)

// Sizes shared by both schemes.
const (
	SeedSize      = 32
	PublicKeySize = 32
	SignatureSize = 64
)

// sr25519SigningContext is the context Substrate signs messages under.
const sr25519SigningContext = "substrate"

// Errors callers may branch on.
var (
	ErrUnknownScheme = errors.New("unknown key scheme")
	ErrInvalidKey    = errors.New("invalid key")
	// ErrMalformedSignature is returned by ParseSignature for text that is
	// not a 64-byte signature (as opposed to a signature that does not
	// verify, which Verify reports as false).
	ErrMalformedSignature = errors.New("malformed signature")
)

// ParseScheme turns "ed25519" or "sr25519" into a Scheme.
func ParseScheme(s string) (Scheme, error) {
	switch Scheme(s) {
	case Ed25519, Sr25519:
		return Scheme(s), nil
	}
	return "", fmt.Errorf("%w %q (want ed25519 or sr25519)", ErrUnknownScheme, s)
}

// KeyPair is a private key able to sign for its public key.
type KeyPair interface {
	// Scheme is the signature scheme of the pair.
	Scheme() Scheme
	// Public is the public half.
	Public() PublicKey
	// Sign signs msg. sr25519 signatures are randomized; ed25519 ones are not.
	Sign(msg []byte) ([]byte, error)
	// Seed is the 32-byte secret the pair was made from (after derivation,
	// the derived seed), such that FromSeed(Scheme(), Seed()) gives the same
	// key. It is nil for an sr25519 pair whose last derivation step was a
	// soft junction: such a key has no mini secret key.
	Seed() []byte
}

// PublicKey is a public key together with its scheme.
type PublicKey struct {
	Scheme Scheme
	Key    []byte
}

// Verify reports whether sig is a valid signature of msg by p. A key that
// CheckPublicKey refuses verifies nothing.
func (p PublicKey) Verify(msg, sig []byte) bool {
	if len(p.Key) != PublicKeySize || len(sig) != SignatureSize {
		return false
	}
	switch p.Scheme {
	case Ed25519:
		return weakEd25519(p.Key) == nil && ed25519.Verify(ed25519.PublicKey(p.Key), msg, sig)
	case Sr25519:
		return weakSr25519(p.Key) == nil && verifySr25519(p.Key, msg, sig)
	}
	return false
}

// VerifyAny checks sig against a bare 32-byte public key whose scheme is not
// recorded, trying ed25519 first and then sr25519 (the registrar's rule for
// accounts, which store only the key). It returns the scheme that matched.
func VerifyAny(pub, msg, sig []byte) (Scheme, bool) {
	for _, s := range []Scheme{Ed25519, Sr25519} {
		if (PublicKey{Scheme: s, Key: pub}).Verify(msg, sig) {
			return s, true
		}
	}
	return "", false
}

// Generate makes a new random key pair.
func Generate(scheme Scheme) (KeyPair, error) {
	seed := make([]byte, SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return FromSeed(scheme, seed)
}

// FromSeed makes the key pair of a 32-byte seed.
func FromSeed(scheme Scheme, seed []byte) (KeyPair, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrInvalidKey, len(seed), SeedSize)
	}
	s := make([]byte, SeedSize)
	copy(s, seed)
	switch scheme {
	case Ed25519:
		return ed25519Pair{priv: ed25519.NewKeyFromSeed(s), seed: s}, nil
	case Sr25519:
		var raw [SeedSize]byte
		copy(raw[:], s)
		mini, err := schnorrkel.NewMiniSecretKeyFromRaw(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
		}
		return newSr25519Pair(mini.ExpandEd25519(), s)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownScheme, scheme)
}

// newSr25519Pair wraps an expanded sr25519 secret key; seed is its mini
// secret key, or nil when it has none (after soft derivation).
func newSr25519Pair(secret *schnorrkel.SecretKey, seed []byte) (KeyPair, error) {
	pub, err := secret.Public()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	enc := pub.Encode()
	return sr25519Pair{secret: secret, pub: enc[:], seed: seed}, nil
}

type ed25519Pair struct {
	priv ed25519.PrivateKey
	seed []byte
}

func (k ed25519Pair) Scheme() Scheme { return Ed25519 }
func (k ed25519Pair) Seed() []byte   { return append([]byte(nil), k.seed...) }
func (k ed25519Pair) Public() PublicKey {
	return PublicKey{Scheme: Ed25519, Key: append([]byte(nil), k.priv[SeedSize:]...)}
}
func (k ed25519Pair) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(k.priv, msg), nil }

type sr25519Pair struct {
	secret *schnorrkel.SecretKey
	pub    []byte
	seed   []byte
}

func (k sr25519Pair) Scheme() Scheme { return Sr25519 }
func (k sr25519Pair) Seed() []byte   { return append([]byte(nil), k.seed...) }
func (k sr25519Pair) Public() PublicKey {
	return PublicKey{Scheme: Sr25519, Key: append([]byte(nil), k.pub...)}
}
func (k sr25519Pair) Sign(msg []byte) ([]byte, error) {
	sig, err := k.secret.Sign(schnorrkel.NewSigningContext([]byte(sr25519SigningContext), msg))
	if err != nil {
		return nil, fmt.Errorf("sr25519 sign: %w", err)
	}
	enc := sig.Encode()
	return enc[:], nil
}

func verifySr25519(pub, msg, sig []byte) bool {
	var pk [PublicKeySize]byte
	copy(pk[:], pub)
	key, err := schnorrkel.NewPublicKey(pk)
	if err != nil {
		return false
	}
	var sb [SignatureSize]byte
	copy(sb[:], sig)
	var s schnorrkel.Signature
	if err := s.Decode(sb); err != nil {
		return false
	}
	ok, err := key.Verify(&s, schnorrkel.NewSigningContext([]byte(sr25519SigningContext), msg))
	return err == nil && ok
}

// ParsePublicKey parses a 32-byte public key written as hex (with or
// without 0x), standard or URL-safe base64 (padded or not), or an SS58
// address (whose network prefix is ignored). Surrounding whitespace is
// ignored.
func ParsePublicKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, ok := decodeHexOrBase64(s, PublicKeySize); ok {
		return b, nil
	}
	pub, _, err := SS58Decode(s)
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not 32 bytes of hex or base64, nor an SS58 address: %w", ErrInvalidKey, err)
	}
	if len(pub) != PublicKeySize {
		return nil, fmt.Errorf("%w: SS58 address holds %d bytes, want a %d-byte public key", ErrInvalidKey, len(pub), PublicKeySize)
	}
	return pub, nil
}

// ParseSignature parses a 64-byte signature written as hex (with or without
// 0x) or standard or URL-safe base64 (padded or not). Surrounding whitespace
// is ignored.
func ParseSignature(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, ok := decodeHexOrBase64(s, SignatureSize); ok {
		return b, nil
	}
	// Say how long it is, reading it as hex first: hex digits are also
	// base64 characters.
	if b, err := hex.DecodeString(cutHexPrefix(s)); err == nil {
		return nil, fmt.Errorf("%w: %d bytes of hex, want %d", ErrMalformedSignature, len(b), SignatureSize)
	}
	for _, dec := range base64Decoders() {
		if b, err := dec(s); err == nil {
			return nil, fmt.Errorf("%w: %d bytes of base64, want %d", ErrMalformedSignature, len(b), SignatureSize)
		}
	}
	return nil, fmt.Errorf("%w: not hex or base64", ErrMalformedSignature)
}

// base64Decoders are the base64 forms accepted for keys and signatures,
// each in its canonical spelling only.
func base64Decoders() []func(string) ([]byte, error) {
	return []func(string) ([]byte, error){strictb64.Std, strictb64.RawStd, strictb64.URL, strictb64.RawURL}
}

// decodeHexOrBase64 decodes s as exactly n bytes of hex (0x optional) or
// base64. The forms cannot be confused: n bytes are 2n hex digits but about
// 4n/3 base64 characters.
func decodeHexOrBase64(s string, n int) ([]byte, bool) {
	if digits := cutHexPrefix(s); len(digits) == 2*n {
		if b, err := hex.DecodeString(digits); err == nil {
			return b, true
		}
	}
	for _, dec := range base64Decoders() {
		if b, err := dec(s); err == nil && len(b) == n {
			return b, true
		}
	}
	return nil, false
}

// cutHexPrefix removes one leading "0x" or "0X".
func cutHexPrefix(s string) string {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return s[2:]
	}
	return s
}
