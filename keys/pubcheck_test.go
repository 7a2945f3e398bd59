package keys

import (
	"bytes"
	"encoding/hex"
	mrand "math/rand/v2"

	"crypto/ed25519"
	"errors"
	"filippo.io/edwards25519"
	"testing"
)

// ed25519 encodings of the eight points of small order, and non-canonical
// encodings of some of them.
var weakEd25519Vectors = map[string]string{
	"identity":                      "0100000000000000000000000000000000000000000000000000000000000000",
	"order 2 (y = -1)":              "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"order 4 (y = 0)":               "0000000000000000000000000000000000000000000000000000000000000000",
	"order 4 (y = 0, x negative)":   "0000000000000000000000000000000000000000000000000000000000000080",
	"order 8":                       "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
	"order 8, x negative":           "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
	"order 8 (other y)":             "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
	"order 8 (other y), x neg.":     "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
	"identity, y = p + 1":           "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"identity, negative zero x":     "0100000000000000000000000000000000000000000000000000000000000080",
	"not on the curve (y = 2)":      "0200000000000000000000000000000000000000000000000000000000000000",
	"order 2, y = -1 + p (> 2^255)": "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
}

func TestCheckPublicKeyRefusesWeakEd25519(t *testing.T) {
	for name, h := range weakEd25519Vectors {
		if err := CheckPublicKey(Ed25519, mustHex(t, h)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: CheckPublicKey = %v, want ErrInvalidKey", name, err)
		}
	}
}

func TestCheckPublicKeyAcceptsRealKeys(t *testing.T) {
	for _, s := range []Scheme{Ed25519, Sr25519} {
		for range 50 {
			k, err := Generate(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckPublicKey(s, k.Public().Key); err != nil {
				t.Fatalf("%s key %x: %v", s, k.Public().Key, err)
			}
			if err := CheckAnyPublicKey(k.Public().Key); err != nil {
				t.Fatalf("%s key %x: CheckAnyPublicKey: %v", s, k.Public().Key, err)
			}
		}
	}
}

// TestIdentityKeyForgery shows why the check exists: with the identity as
// public key, one fixed signature verifies every message under the bare
// ed25519 primitive, and never under PublicKey.Verify.
func TestIdentityKeyForgery(t *testing.T) {
	msgs := [][]byte{[]byte("1700000000:7"), []byte("anything at all")}

	// ed25519: R = B (the base point), S = 1: [1]B = R + [k]identity.
	edPub := mustHex(t, weakEd25519Vectors["identity"])
	edSig := mustHex(t, "5866666666666666666666666666666666666666666666666666666666666666"+
		"0100000000000000000000000000000000000000000000000000000000000000")
	// sr25519: R = the ristretto255 base point, s = 1 (with schnorrkel's
	// marker bit). go-schnorrkel v1.1.0 refuses the identity key itself;
	// keys does not rely on that.
	srPub := make([]byte, PublicKeySize)
	srSig := mustHex(t, "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"+
		"0100000000000000000000000000000000000000000000000000000000000080")

	for _, m := range msgs {
		if !ed25519.Verify(ed25519.PublicKey(edPub), m, edSig) {
			t.Fatal("the ed25519 forgery does not work on crypto/ed25519: the test is wrong")
		}
		if (PublicKey{Scheme: Ed25519, Key: edPub}).Verify(m, edSig) {
			t.Errorf("Verify accepted the ed25519 identity key forgery on %q", m)
		}
		if (PublicKey{Scheme: Sr25519, Key: srPub}).Verify(m, srSig) {
			t.Errorf("Verify accepted the sr25519 identity key forgery on %q", m)
		}
		if s, ok := VerifyAny(edPub, m, edSig); ok {
			t.Errorf("VerifyAny accepted the ed25519 forgery as %s", s)
		}
		if s, ok := VerifyAny(srPub, m, srSig); ok {
			t.Errorf("VerifyAny accepted the sr25519 forgery as %s", s)
		}
	}
	if err := CheckPublicKey(Sr25519, srPub); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("sr25519 identity: %v", err)
	}
	if err := CheckAnyPublicKey(srPub); err == nil {
		t.Error("CheckAnyPublicKey accepted all zeros")
	}
	if err := CheckAnyPublicKey(edPub); err == nil {
		t.Error("CheckAnyPublicKey accepted the ed25519 identity")
	}
}

func TestCheckPublicKeyRefusesInvalidSr25519(t *testing.T) {
	// A non-canonical field element (all ones) is no ristretto255 encoding.
	bad := mustHex(t, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	if err := CheckPublicKey(Sr25519, bad); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("CheckPublicKey = %v", err)
	}
	if err := CheckPublicKey(Sr25519, bad[:31]); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("short key: %v", err)
	}
}

func BenchmarkCheckPublicKey(b *testing.B) {
	k, _ := Generate(Ed25519)
	pub := k.Public().Key
	for b.Loop() {
		_ = CheckPublicKey(Ed25519, pub)
	}
}

func BenchmarkVerifyEd25519(b *testing.B) {
	k, _ := Generate(Ed25519)
	msg := []byte("1700000000:7")
	sig, _ := k.Sign(msg)
	for b.Loop() {
		_ = k.Public().Verify(msg, sig)
	}
}

// TestWeakEd25519MatchesPointArithmetic checks the byte-level check against
// the definition, computed with point arithmetic, on random points, on the
// small-order ones and on their neighbours.
func TestWeakEd25519MatchesPointArithmetic(t *testing.T) {
	check := func(key []byte) {
		p, err := new(edwards25519.Point).SetBytes(key)
		if err != nil {
			return // not a point: ed25519.Verify refuses it anyway
		}
		canonical := bytes.Equal(p.Bytes(), key)
		small := new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
		want := !canonical || small
		if got := weakEd25519(key) != nil; got != want {
			t.Errorf("%x: weakEd25519 refuses = %v, want %v (canonical %v, small order %v)", key, got, want, canonical, small)
		}
	}
	for _, h := range weakEd25519Vectors {
		k := mustHex(t, h)
		check(k)
		for i := range 32 {
			for _, d := range []byte{1, 0xff} {
				n := bytes.Clone(k)
				n[i] += d
				check(n)
			}
		}
	}
	for i := range 20 {
		// Every y from p to 2^255-1 with both signs, and p - 1 - i.
		y := bytes.Clone(ed25519P)
		y[0] += byte(i)
		check(y)
		y[31] |= 0x80
		check(y)
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	for range 20000 {
		k := make([]byte, 32)
		for i := range k {
			k[i] = byte(r.Uint32())
		}
		check(k)
	}
}

// FuzzWeakEd25519 compares weakEd25519 with point arithmetic on any bytes.
func FuzzWeakEd25519(f *testing.F) {
	for _, h := range weakEd25519Vectors {
		b, _ := hex.DecodeString(h)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		if len(key) != 32 {
			return
		}
		p, err := new(edwards25519.Point).SetBytes(key)
		if err != nil {
			return
		}
		want := !bytes.Equal(p.Bytes(), key) || new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1
		if got := weakEd25519(key) != nil; got != want {
			t.Fatalf("%x: weakEd25519 refuses = %v, want %v", key, got, want)
		}
	})
}
