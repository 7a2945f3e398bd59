package keys

import (
	"bytes"
	"crypto/sha512"
	"math/bits"
	"sync"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// Ed25519Key is an ed25519 public key prepared for verifying many
// signatures: the registrar checks every report of a node against the same
// key. Its Verify accepts exactly the signatures crypto/ed25519.Verify
// accepts (and PublicKey.Verify: a weak key verifies nothing), at about
// two thirds of the cost.
//
// Verification computes R' = [s]B - [k]A and compares its encoding with
// the signature's R. crypto/ed25519 decodes A afresh for every signature
// and runs one double-and-add loop over the 253 bits of both scalars. An
// Ed25519Key decodes A once and keeps, besides A, A' = [2^128]A, so that
// k = k0 + 2^128 k1 gives [k]A = [k0]A + [k1]A' (and likewise s with the
// fixed B' = [2^128]B): one loop over 128 bits with four points halves
// the doublings, which are two thirds of the work; the additions stay as
// many. The sum is the same point, so the encoding compared is the same.
// It costs about 2.5 KB and, once, about half a crypto/ed25519
// verification (25 µs against 54 here; Verify then takes 32).
//
// An Ed25519Key is immutable and safe for concurrent use.
type Ed25519Key struct {
	key [PublicKeySize]byte
	// usable: the key is canonical, not of small order and a curve point
	// (otherwise Verify refuses everything, as PublicKey.Verify does).
	usable bool
	// a, a2: the odd multiples 1, 3, ..., 15 of A and of [2^128]A.
	a, a2 [8]cachedPoint
}

// PrepareEd25519 prepares key for Verify. A key of the wrong length, or
// one CheckPublicKey refuses, gives an Ed25519Key that verifies nothing.
func PrepareEd25519(key []byte) *Ed25519Key {
	k := &Ed25519Key{}
	if len(key) != PublicKeySize || weakEd25519(key) != nil {
		return k
	}
	copy(k.key[:], key)
	p, err := new(edwards25519.Point).SetBytes(key)
	if err != nil {
		return k
	}
	a := extFromPoint(p)
	for i, m := range a.oddMultiples(len(k.a)) {
		k.a[i] = m.cached()
	}
	for i, m := range a.timesPow2(128).oddMultiples(len(k.a2)) {
		k.a2[i] = m.cached()
	}
	k.usable = true
	return k
}

// Key returns the 32-byte public key.
func (k *Ed25519Key) Key() []byte { return bytes.Clone(k.key[:]) }

// Verify reports whether sig is a valid ed25519 signature of msg by k,
// with the rules of crypto/ed25519.Verify (RFC 8032 without the cofactor,
// s canonical, R compared as encoded).
func (k *Ed25519Key) Verify(msg, sig []byte) bool {
	if !k.usable || len(sig) != SignatureSize || sig[63]&224 != 0 {
		return false
	}
	s, err := new(edwards25519.Scalar).SetCanonicalBytes(sig[32:])
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.key[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	kh, err := new(edwards25519.Scalar).SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		return false // cannot happen: the digest is 64 bytes
	}
	r := k.sBminuskA(s, kh)
	return bytes.Equal(r.bytes(), sig[:32])
}

// sBminuskA computes [s]B - [kh]A by interleaved windowed NAF over the
// two 128-bit halves of each scalar.
func (k *Ed25519Key) sBminuskA(s, kh *edwards25519.Scalar) *projPoint {
	base := ed25519Base()
	sNAF := wNAF(s.Bytes(), baseWindow)
	kNAF := wNAF(kh.Bytes(), keyWindow)
	top := 127
	for top >= 0 && sNAF[top] == 0 && sNAF[top+128] == 0 && kNAF[top] == 0 && kNAF[top+128] == 0 {
		top--
	}
	acc := projIdentity()
	var (
		c completedPoint
		e extPoint
	)
	for i := top; i >= 0; i-- {
		c.double(acc)
		// [s]B: add; [k]A: subtract.
		if d := sNAF[i]; d != 0 {
			e.fromCompleted(&c)
			c.addAffine(&e, &base.b[abs8(d)/2], d < 0)
		}
		if d := sNAF[i+128]; d != 0 {
			e.fromCompleted(&c)
			c.addAffine(&e, &base.b2[abs8(d)/2], d < 0)
		}
		if d := kNAF[i]; d != 0 {
			e.fromCompleted(&c)
			c.addCached(&e, &k.a[abs8(d)/2], d > 0)
		}
		if d := kNAF[i+128]; d != 0 {
			e.fromCompleted(&c)
			c.addCached(&e, &k.a2[abs8(d)/2], d > 0)
		}
		acc.fromCompleted(&c)
	}
	return acc
}

// Windows of the NAFs: the fixed base points have tables of 64 odd
// multiples (made once), a key 8 (made per key, so kept small).
const (
	baseWindow = 8
	keyWindow  = 5
)

// baseTables are the odd multiples 1, 3, ..., 127 of B and of [2^128]B.
type baseTables struct {
	b, b2 [1 << (baseWindow - 2)]affinePoint
}

// ed25519Base returns the base tables, made on first use.
var ed25519Base = sync.OnceValue(func() *baseTables {
	t := &baseTables{}
	b := extFromPoint(edwards25519.NewGeneratorPoint())
	for i, m := range b.oddMultiples(len(t.b)) {
		t.b[i] = m.affine()
	}
	for i, m := range b.timesPow2(128).oddMultiples(len(t.b2)) {
		t.b2[i] = m.affine()
	}
	return t
})

// ed25519D2 is 2d, d = -121665/121666 the curve constant.
var ed25519D2 = sync.OnceValue(func() *field.Element {
	num := smallElement(121665)
	den := smallElement(121666)
	d := new(field.Element).Multiply(num, new(field.Element).Invert(den))
	d.Negate(d)
	return d.Add(d, d)
})

// smallElement returns n as a field element.
func smallElement(n uint32) *field.Element {
	var b [32]byte
	b[0], b[1], b[2], b[3] = byte(n), byte(n>>8), byte(n>>16), byte(n>>24)
	e, err := new(field.Element).SetBytes(b[:])
	if err != nil {
		panic("keys: small field element: " + err.Error()) // 32 bytes always decode
	}
	return e
}

func abs8(d int8) int8 {
	if d < 0 {
		return -d
	}
	return d
}

// wNAF returns the width-w non-adjacent form of the little-endian 32-byte
// number n (< 2^255): digits d_i, each 0 or odd with |d_i| < 2^(w-1), such
// that n = sum d_i 2^i, and of any w consecutive digits at most one is
// non-zero.
func wNAF(n []byte, w uint) [256]int8 {
	var (
		out   [256]int8
		limbs [5]uint64 // n, with a zero limb so a window may run past the top
	)
	for i := range 4 {
		for j := range 8 {
			limbs[i] |= uint64(n[8*i+j]) << (8 * j)
		}
	}
	// window returns the w bits of n from position pos.
	window := func(pos int) uint64 {
		v := limbs[pos/64] >> (pos % 64)
		if off := pos % 64; off+int(w) > 64 {
			v |= limbs[pos/64+1] << (64 - off)
		}
		return v & (1<<w - 1)
	}
	// carry is 1 when a negative digit was taken: what is left of the
	// number is one more than its bits from pos on say.
	var carry uint64
	for pos := 0; pos < 256; {
		win := window(pos) + carry
		if win&1 == 0 {
			// No digit at pos, nor below the lowest set bit of the
			// window. The bits skipped and the carry sum to 0 or a power
			// of two just above them, so the carry stays as it is.
			if low := win & (1<<w - 1); low == 0 {
				pos += int(w)
			} else {
				pos += bits.TrailingZeros64(low)
			}
			continue
		}
		if win < 1<<(w-1) {
			out[pos] = int8(win)
			carry = 0
		} else {
			// Negative digit: what is left is 2^w above it.
			out[pos] = int8(int64(win) - 1<<w)
			carry = 1
		}
		pos += int(w)
	}
	return out
}
