package auth

import (
	"bytes"
	"testing"

	"github.com/grid4/grid4/keys"
)

// TestPreparedKeysBounded: the kept keys never exceed the bound, and each
// key handed out verifies its own signatures, kept or prepared afresh.
func TestPreparedKeysBounded(t *testing.T) {
	p := newPreparedKeys(2)
	msg := []byte("1733432000:7")
	for round := range 2 {
		for i := range 5 {
			kp, err := keys.FromSeed(keys.Ed25519, bytes.Repeat([]byte{byte(i + 1)}, 32))
			if err != nil {
				t.Fatal(err)
			}
			sig, err := kp.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			k := p.get(kp.Public().Key)
			if !bytes.Equal(k.Key(), kp.Public().Key) || !k.Verify(msg, sig) {
				t.Fatalf("round %d key %d: prepared key does not verify its signature", round, i)
			}
			if n := len(p.keys); n > 2 {
				t.Fatalf("%d keys kept, bound 2", n)
			}
		}
	}
}
