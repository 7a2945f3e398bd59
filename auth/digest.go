package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// HeaderContentDigest is the RFC 9530 field carrying the digest of the body.
const HeaderContentDigest = "Content-Digest"

// Digest algorithms accepted in Content-Digest (RFC 9530 section 5).
const (
	DigestSHA256 = "sha-256"
	DigestSHA512 = "sha-512"
)

func newDigestHash(alg string) (hash.Hash, int) {
	switch alg {
	case DigestSHA256:
		return sha256.New(), sha256.Size
	case DigestSHA512:
		return sha512.New(), sha512.Size
	}
	return nil, 0
}

// ContentDigest returns the Content-Digest field value for body using
// sha-256: `sha-256=:<standard base64 of SHA-256(body)>:`. An empty or nil
// body gives the digest of the empty string.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	d := sfDict{{key: DigestSHA256, item: sfItem{bare: sfBytesOf(sum[:])}}}
	s, _ := d.serialize() // cannot fail: fixed key, byte sequence
	return s
}

// ParseContentDigest parses a Content-Digest field value (an RFC 8941
// dictionary of byte sequences) and returns the digests of the algorithms
// this package knows, keyed by algorithm name ("sha-256", "sha-512").
// Members with other algorithm names are ignored, as RFC 9530 allows. It
// fails with ErrMalformed when the field is not a valid dictionary, when a
// known algorithm's value is not a byte sequence of the right length, or
// when no known algorithm is present.
func ParseContentDigest(v string) (map[string][]byte, error) {
	d, err := parseSFDictionary(v)
	if err != nil {
		return nil, fmt.Errorf("%w: Content-Digest: %w", ErrMalformed, err)
	}
	out := make(map[string][]byte, 2)
	for _, m := range d {
		_, size := newDigestHash(m.key)
		if size == 0 {
			continue
		}
		if m.isInner || m.item.bare.kind != sfBytes {
			return nil, fmt.Errorf("%w: Content-Digest: %s is not a byte sequence", ErrMalformed, m.key)
		}
		if len(m.item.bare.b) != size {
			return nil, fmt.Errorf("%w: Content-Digest: %s digest is %d bytes, want %d", ErrMalformed, m.key, len(m.item.bare.b), size)
		}
		out[m.key] = m.item.bare.b
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: Content-Digest has no %s or %s member", ErrMalformed, DigestSHA256, DigestSHA512)
	}
	return out, nil
}

// VerifyContentDigest checks body against a Content-Digest field value.
// Every known algorithm present must match. It returns an error wrapping
// ErrMalformed for an unusable field and ErrDigestMismatch when a digest
// does not match the body.
func VerifyContentDigest(field string, body []byte) error {
	digests, err := ParseContentDigest(field)
	if err != nil {
		return err
	}
	return checkDigests(digests, body)
}

// checkDigests compares parsed digests with body.
func checkDigests(digests map[string][]byte, body []byte) error {
	for alg, want := range digests {
		h, _ := newDigestHash(alg)
		h.Write(body)
		if subtle.ConstantTimeCompare(h.Sum(nil), want) != 1 {
			return fmt.Errorf("%w: %s of the body does not match Content-Digest", ErrDigestMismatch, alg)
		}
	}
	return nil
}
