package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"math/big"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

// stdVerify is the reference: PublicKey.Verify for ed25519 (weak keys
// refused, then crypto/ed25519.Verify).
func stdVerify(pub, msg, sig []byte) bool {
	return PublicKey{Scheme: Ed25519, Key: pub}.Verify(msg, sig)
}

// checkSame fails t unless the prepared key and the reference agree on
// msg and sig, and returns their answer.
func checkSame(t *testing.T, k *Ed25519Key, pub, msg, sig []byte) bool {
	t.Helper()
	want := stdVerify(pub, msg, sig)
	if got := k.Verify(msg, sig); got != want {
		t.Fatalf("Verify(pub %x, msg %x, sig %x) = %v, crypto/ed25519 says %v", pub, msg, sig, got, want)
	}
	return want
}

// TestEd25519KeyAgrees checks the prepared verification against
// crypto/ed25519 on valid signatures and on every kind of change to them.
func TestEd25519KeyAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], rng.Uint64())
		seed[8] = byte(i)
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := []byte(priv.Public().(ed25519.PublicKey))
		k := PrepareEd25519(pub)
		if !bytes.Equal(k.Key(), pub) {
			t.Fatalf("Key() = %x, want %x", k.Key(), pub)
		}
		msg := make([]byte, rng.IntN(100))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		if !checkSame(t, k, pub, msg, sig) {
			t.Fatal("a valid signature does not verify")
		}
		// One bit flipped anywhere in the signature or the message.
		for range 8 {
			bad := bytes.Clone(sig)
			bad[rng.IntN(len(bad))] ^= 1 << rng.IntN(8)
			if checkSame(t, k, pub, msg, bad) {
				t.Fatal("a changed signature verifies")
			}
		}
		if len(msg) > 0 {
			other := bytes.Clone(msg)
			other[rng.IntN(len(other))] ^= 1
			checkSame(t, k, pub, other, sig)
		}
		checkSame(t, k, pub, append(bytes.Clone(msg), 0), sig)
		// s + L: the same scalar, not canonical; high bits set.
		checkSame(t, k, pub, msg, withSPlusL(sig))
		hi := bytes.Clone(sig)
		hi[63] |= 0x80
		checkSame(t, k, pub, msg, hi)
		checkSame(t, k, pub, msg, sig[:63])
		checkSame(t, k, pub, msg, append(bytes.Clone(sig), 0))
		// Another key's signature.
		other := ed25519.NewKeyFromSeed(append(seed[1:], 1))
		checkSame(t, k, pub, msg, ed25519.Sign(other, msg))
	}
}

// withSPlusL returns sig with s replaced by s + L (the group order).
func withSPlusL(sig []byte) []byte {
	l, _ := new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)
	s := new(big.Int).SetBytes(reverse(sig[32:]))
	s.Add(s, l)
	out := bytes.Clone(sig)
	b := reverse(s.FillBytes(make([]byte, 32)))
	copy(out[32:], b)
	return out
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}

// TestEd25519KeyTorsion uses keys with a small-order component, A = [a]B + T
// with T of order 8, where the cofactorless equation crypto/ed25519 checks
// holds only when [k]T is the identity: the prepared verification must
// agree in both cases, which it does only if its arithmetic is exact on
// the whole group, not just on multiples of B.
func TestEd25519KeyTorsion(t *testing.T) {
	t8, err := new(edwards25519.Point).SetBytes(ed25519SmallOrder[3]) // order 8
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	var accepted, refused int
	for i := 0; accepted < 4 || refused < 4; i++ {
		if i > 1000 {
			t.Fatalf("after %d tries: %d accepted, %d refused", i, accepted, refused)
		}
		a := randomScalar(rng)
		pubPt := new(edwards25519.Point).Add(new(edwards25519.Point).ScalarBaseMult(a), t8)
		pub := pubPt.Bytes()
		r := randomScalar(rng)
		R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
		msg := []byte{byte(i), byte(i >> 8)}
		h := sha512.New()
		h.Write(R)
		h.Write(pub)
		h.Write(msg)
		k, _ := new(edwards25519.Scalar).SetUniformBytes(h.Sum(nil))
		// s = r + k a: [s]B - [k]A = [r]B - [k]T.
		s := new(edwards25519.Scalar).MultiplyAdd(k, a, r)
		sig := append(bytes.Clone(R), s.Bytes()...)
		if checkSame(t, PrepareEd25519(pub), pub, msg, sig) {
			accepted++
		} else {
			refused++
		}
	}
}

func randomScalar(rng *rand.Rand) *edwards25519.Scalar {
	var b [64]byte
	for i := range 8 {
		binary.LittleEndian.PutUint64(b[8*i:], rng.Uint64())
	}
	s, _ := new(edwards25519.Scalar).SetUniformBytes(b[:])
	return s
}

// TestEd25519KeyRefusesBadKeys: keys CheckPublicKey refuses, and bytes
// that are no key, verify nothing, as in PublicKey.Verify.
func TestEd25519KeyRefusesBadKeys(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(make([]byte, 32))
	msg := []byte("m")
	sig := ed25519.Sign(priv, msg)
	bad := append([][]byte{nil, make([]byte, 31), ed25519P}, ed25519SmallOrder...)
	// A y with no x on the curve.
	for y := byte(2); ; y++ {
		enc := make([]byte, 32)
		enc[0] = y
		if _, err := new(edwards25519.Point).SetBytes(enc); err != nil {
			bad = append(bad, enc)
			break
		}
	}
	for _, pub := range bad {
		k := PrepareEd25519(pub)
		if k.Verify(msg, sig) {
			t.Fatalf("key %x verifies", pub)
		}
		// The identity accepts R = [s]B for every message in
		// crypto/ed25519; the prepared key refuses like PublicKey.Verify.
		s := randomScalar(rand.New(rand.NewPCG(5, 6)))
		forged := append(new(edwards25519.Point).ScalarBaseMult(s).Bytes(), s.Bytes()...)
		if k.Verify(msg, forged) {
			t.Fatalf("key %x verifies a forgery", pub)
		}
	}
}

// TestWNAF checks the digits add up to the number and keep their spacing.
func TestWNAF(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 2000 {
		n := make([]byte, 32)
		for j := range n {
			n[j] = byte(rng.Uint32())
		}
		n[31] &= 0x1f // below 2^253, as scalars are
		switch i {
		case 0:
			clear(n)
		case 1:
			for j := range n {
				n[j] = 0xff
			}
			n[31] = 0x1f
		}
		for _, w := range []uint{5, 8} {
			digits := wNAF(n, w)
			sum := new(big.Int)
			last := -1000
			for pos := 255; pos >= 0; pos-- {
				d := digits[pos]
				if d == 0 {
					continue
				}
				if di := int(d); di%2 == 0 || di >= 1<<(w-1) || di <= -(1<<(w-1)) {
					t.Fatalf("w=%d: digit %d at %d", w, d, pos)
				}
				if last-pos < int(w) && last >= 0 {
					t.Fatalf("w=%d: digits at %d and %d of %x: %v", w, pos, last, n, digits[240:])
				}
				last = pos
				sum.Add(sum, new(big.Int).Lsh(big.NewInt(int64(d)), uint(pos)))
			}
			if want := new(big.Int).SetBytes(reverse(n)); sum.Cmp(want) != 0 {
				t.Fatalf("w=%d: digits of %x sum to %x", w, n, sum)
			}
		}
	}
}

// FuzzEd25519Key compares the prepared verification with crypto/ed25519
// on any key, message and signature.
func FuzzEd25519Key(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	pub := []byte(priv.Public().(ed25519.PublicKey))
	sig := ed25519.Sign(priv, []byte("hello"))
	f.Add(pub, []byte("hello"), sig)
	f.Add(pub, []byte("hello"), withSPlusL(sig))
	f.Add(ed25519SmallOrder[0], []byte("x"), make([]byte, 64))
	f.Add(ed25519P, []byte{}, sig)
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		k := PrepareEd25519(pub)
		want := len(pub) == PublicKeySize && stdVerify(pub, msg, sig)
		if got := k.Verify(msg, sig); got != want {
			t.Fatalf("Verify(pub %x, msg %x, sig %x) = %v, crypto/ed25519 says %v", pub, msg, sig, got, want)
		}
	})
}

// BenchmarkEd25519Verify compares crypto/ed25519.Verify with a prepared
// key's Verify and with preparing a key.
//
//	go test -run '^$' -bench Ed25519 ./keys/
func BenchmarkEd25519Verify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	pub := priv.Public().(ed25519.PublicKey)
	msg := []byte("1733432000:12345")
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("prepared", func(b *testing.B) {
		k := PrepareEd25519(pub)
		for b.Loop() {
			if !k.Verify(msg, sig) {
				b.Fatal("does not verify")
			}
		}
	})
	b.Run("prepare", func(b *testing.B) {
		for b.Loop() {
			PrepareEd25519(pub)
		}
	})
}
