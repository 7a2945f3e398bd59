package auth

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/grid4/grid4/keys"
)

func testKey(t *testing.T, i int) keys.KeyPair {
	t.Helper()
	kp, err := keys.FromSeed(keys.Ed25519, bytes.Repeat([]byte{byte(i + 1)}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// TestPreparedKeys: a key is verified with crypto/ed25519 at its first
// use and prepared at its second; both ways accept its signatures and
// refuse others'; the kept and remembered keys never exceed the bound.
func TestPreparedKeys(t *testing.T) {
	p := newPreparedKeys(3)
	msg := []byte("1733432000:7")
	other := testKey(t, 99)
	for round := range 3 {
		for i := range 3 {
			kp := testKey(t, i)
			sig, err := kp.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			bad, _ := other.Sign(msg)
			_, kept := p.keys[[32]byte(kp.Public().Key)]
			if want := round >= 1; kept != want { // its two calls of round 0 prepare it
				t.Errorf("round %d key %d: prepared %v before the call, want %v", round, i, kept, want)
			}
			if !p.verify(kp.Public().Key, msg, sig) {
				t.Fatalf("round %d key %d: its signature refused", round, i)
			}
			// The same key, another's signature: refused, whichever way
			// (its second call of the round may prepare it).
			if p.verify(kp.Public().Key, msg, bad) {
				t.Fatalf("round %d key %d: another key's signature accepted", round, i)
			}
			if len(p.keys) > 3 || len(p.seen) > 3 || len(p.ring) > 3 {
				t.Fatalf("%d kept, %d remembered, bound 3", len(p.keys), len(p.seen))
			}
		}
	}
}

// TestPreparedKeysLargeFleet: keys that come back only after more than the
// bound of other keys are never prepared (preparing would not pay).
func TestPreparedKeysLargeFleet(t *testing.T) {
	p := newPreparedKeys(4)
	msg := []byte("1733432000:7")
	for range 3 {
		for i := range 9 {
			kp := testKey(t, i)
			sig, _ := kp.Sign(msg)
			if !p.verify(kp.Public().Key, msg, sig) {
				t.Fatalf("key %d: its signature refused", i)
			}
		}
	}
	if len(p.keys) != 0 {
		t.Errorf("%d keys prepared in a fleet over the bound", len(p.keys))
	}
}

// TestPreparedKeysWeak: a small-order key verifies nothing, at its first
// use (crypto/ed25519 would accept this signature) or prepared.
func TestPreparedKeysWeak(t *testing.T) {
	p := newPreparedKeys(4)
	identity := make([]byte, 32)
	identity[0] = 1
	sig := append(bytes.Clone(identity), make([]byte, 32)...) // R = identity, s = 0
	for use := range 3 {
		if p.verify(identity, []byte("anything"), sig) {
			t.Fatalf("use %d: the identity key verified a signature", use)
		}
	}
}

// BenchmarkPreparedKeys: the CPU per ed25519 verification of a Verifier
// over a fleet whose keys sign in turn, small enough for every key to be
// kept prepared or twice the bound (never prepared), against
// crypto/ed25519 (keys.PublicKey.Verify) on the same signatures.
//
//	go test -run '^$' -bench PreparedKeys ./auth/
func BenchmarkPreparedKeys(b *testing.B) {
	msg := []byte("1733432000:7")
	for _, fleet := range []int{1_000, 2 * maxPreparedKeys} {
		pubs, sigs := make([][]byte, fleet), make([][]byte, fleet)
		for i := range fleet {
			var seed [32]byte
			seed[0], seed[1], seed[2] = byte(i), byte(i>>8), byte(i>>16)
			kp, err := keys.FromSeed(keys.Ed25519, seed[:])
			if err != nil {
				b.Fatal(err)
			}
			pubs[i] = kp.Public().Key
			if sigs[i], err = kp.Sign(msg); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("fleet=%d/verifier", fleet), func(b *testing.B) {
			p := newPreparedKeys(maxPreparedKeys)
			for i := range 2 * fleet { // warm: every key used twice
				p.verify(pubs[i%fleet], msg, sigs[i%fleet])
			}
			i := 0
			for b.Loop() {
				if !p.verify(pubs[i%fleet], msg, sigs[i%fleet]) {
					b.Fatal("refused")
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("fleet=%d/crypto-ed25519", fleet), func(b *testing.B) {
			i := 0
			for b.Loop() {
				if !(keys.PublicKey{Scheme: keys.Ed25519, Key: pubs[i%fleet]}).Verify(msg, sigs[i%fleet]) {
					b.Fatal("refused")
				}
				i++
			}
		})
	}
}
