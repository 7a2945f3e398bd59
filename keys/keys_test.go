package keys

import (
	"bytes"
	"testing"
)

func TestSignVerifyBothSchemes(t *testing.T) {
	for _, s := range []Scheme{Ed25519, Sr25519} {
		t.Run(string(s), func(t *testing.T) {
			kp, err := Generate(s)
			if err != nil {
				t.Fatal(err)
			}
			msg := []byte("1700000000:42")
			sig, err := kp.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if !kp.Public().Verify(msg, sig) {
				t.Fatal("own signature does not verify")
			}
			if kp.Public().Verify([]byte("1700000000:43"), sig) {
				t.Fatal("signature verifies for another message")
			}
			got, ok := VerifyAny(kp.Public().Key, msg, sig)
			if !ok || got != s {
				t.Fatalf("VerifyAny = %v, %v; want %v, true", got, ok, s)
			}
			again, err := FromSeed(s, kp.Seed())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Public().Key, kp.Public().Key) {
				t.Fatal("same seed gave another public key")
			}
		})
	}
}

func TestFromSeedRejectsBadInput(t *testing.T) {
	if _, err := FromSeed(Ed25519, make([]byte, 31)); err == nil {
		t.Fatal("31-byte seed accepted")
	}
	if _, err := FromSeed("rsa", make([]byte, 32)); err == nil {
		t.Fatal("unknown scheme accepted")
	}
	if _, err := ParseScheme("ed448"); err == nil {
		t.Fatal("ParseScheme accepted ed448")
	}
}
