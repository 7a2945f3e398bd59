package load

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/grid4/grid4/keys"
)

// NodeKey returns the key pair of node index i of a benchmark fleet: an
// ed25519 key whose seed is SHA-256("grid4 bench node <i>"). Keys are
// derived, never stored, so any process can sign for any node of a fleet
// seeded earlier.
func NodeKey(i int) (keys.KeyPair, error) {
	return derivedKey("grid4 bench node " + strconv.Itoa(i))
}

// FarmerKey returns the key pair of the twin that owns the fleet's farms.
func FarmerKey() (keys.KeyPair, error) { return derivedKey("grid4 bench farmer") }

func derivedKey(label string) (keys.KeyPair, error) {
	seed := sha256.Sum256([]byte(label))
	k, err := keys.FromSeed(keys.Ed25519, seed[:])
	if err != nil {
		return nil, fmt.Errorf("load: key %q: %w", label, err)
	}
	return k, nil
}

// publicKeyB64 is the account form of k's public key: standard base64.
func publicKeyB64(k keys.KeyPair) string {
	return base64.StdEncoding.EncodeToString(k.Public().Key)
}
