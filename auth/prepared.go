package auth

import (
	"sync"

	"github.com/grid4/grid4/keys"
)

// maxPreparedKeys bounds the prepared ed25519 keys a Verifier keeps: about
// 2.6 KB each, so at most about 85 MB, for fleets of up to 32,768 signing
// twins before keys are prepared again.
const maxPreparedKeys = 32_768

// preparedKeys keeps ed25519 keys prepared for verification
// (keys.Ed25519Key: 40 % less CPU per signature, after a preparation that
// costs about half a verification). A registrar checks every request of a
// node against the same key, so each key is prepared once, not per request.
// Keys are kept by their bytes: a twin whose key changes gets its new key
// prepared, the old one just ages out.
type preparedKeys struct {
	mu   sync.Mutex
	max  int
	keys map[[keys.PublicKeySize]byte]*keys.Ed25519Key
}

func newPreparedKeys(maxKeys int) *preparedKeys {
	return &preparedKeys{max: maxKeys, keys: make(map[[keys.PublicKeySize]byte]*keys.Ed25519Key)}
}

// get returns pub (32 bytes) prepared, preparing it when it is not kept.
// When full, an arbitrary kept key makes room.
func (p *preparedKeys) get(pub []byte) *keys.Ed25519Key {
	var id [keys.PublicKeySize]byte
	copy(id[:], pub)
	p.mu.Lock()
	k, ok := p.keys[id]
	p.mu.Unlock()
	if ok {
		return k
	}
	k = keys.PrepareEd25519(pub)
	p.mu.Lock()
	if len(p.keys) >= p.max {
		for old := range p.keys {
			delete(p.keys, old)
			break
		}
	}
	p.keys[id] = k
	p.mu.Unlock()
	return k
}

// verifyAny is keys.VerifyAny (ed25519 first, then sr25519) with the
// ed25519 key prepared. pub is 32 bytes (lookupKey checks).
func (v *Verifier) verifyAny(pub, msg, sig []byte) (keys.Scheme, bool) {
	if v.prepared.get(pub).Verify(msg, sig) {
		return keys.Ed25519, true
	}
	if (keys.PublicKey{Scheme: keys.Sr25519, Key: pub}).Verify(msg, sig) {
		return keys.Sr25519, true
	}
	return "", false
}

// verifyScheme is keys.PublicKey.Verify with an ed25519 key prepared.
func (v *Verifier) verifyScheme(scheme keys.Scheme, pub, msg, sig []byte) bool {
	if scheme == keys.Ed25519 {
		return v.prepared.get(pub).Verify(msg, sig)
	}
	return keys.PublicKey{Scheme: scheme, Key: pub}.Verify(msg, sig)
}
