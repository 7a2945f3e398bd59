package auth

import (
	"sync"

	"github.com/grid4/grid4/keys"
)

// maxPreparedKeys bounds the prepared ed25519 keys a Verifier keeps (about
// 2.6 KB each, so at most about 85 MB) and the keys it remembers having
// seen once (32 bytes each): fleets of up to 32,768 signing twins have all
// their keys prepared.
const maxPreparedKeys = 32_768

// preparedKeys verifies ed25519 signatures, with the keys that sign again
// and again prepared (keys.Ed25519Key: 32 µs per signature against
// crypto/ed25519's 54 on the benchmark machine, after a preparation of
// 25). A registrar checks every request of a node against the same key,
// but preparing pays only for a key used again before it is dropped (a
// key prepared and used once costs 57 µs): so a key is prepared at its
// second use within the last maxKeys first uses (a doorkeeper) and
// verified with crypto/ed25519 before that. In a fleet of up to maxKeys
// signing twins every key is prepared once, from its second request on;
// in a larger one, where a node's next report comes after more than
// maxKeys other keys, keys are not prepared at all. Keys are kept by
// their bytes: a twin whose key changes gets its new key prepared, the
// old one just ages out.
type preparedKeys struct {
	mu   sync.Mutex
	max  int
	keys map[[keys.PublicKeySize]byte]*keys.Ed25519Key
	// seen holds the keys used once and not prepared; ring holds them in
	// the order they came, next is the oldest's slot once ring is full.
	seen map[[keys.PublicKeySize]byte]struct{}
	ring [][keys.PublicKeySize]byte
	next int
}

func newPreparedKeys(maxKeys int) *preparedKeys {
	return &preparedKeys{
		max:  maxKeys,
		keys: make(map[[keys.PublicKeySize]byte]*keys.Ed25519Key),
		seen: make(map[[keys.PublicKeySize]byte]struct{}),
	}
}

// verify reports whether sig is pub's (32 bytes) ed25519 signature of msg,
// with the rules of keys.PublicKey.Verify whichever way it is checked.
func (p *preparedKeys) verify(pub, msg, sig []byte) bool {
	if k := p.get(pub); k != nil {
		return k.Verify(msg, sig)
	}
	return keys.PublicKey{Scheme: keys.Ed25519, Key: pub}.Verify(msg, sig)
}

// get returns pub prepared when it is kept or used for the second time
// since it was remembered, and nil at its first use (remembered in place
// of the oldest first use). When full, an arbitrary kept key makes room.
func (p *preparedKeys) get(pub []byte) *keys.Ed25519Key {
	var id [keys.PublicKeySize]byte
	copy(id[:], pub)
	p.mu.Lock()
	if k, ok := p.keys[id]; ok {
		p.mu.Unlock()
		return k
	}
	if _, ok := p.seen[id]; !ok {
		if len(p.ring) < p.max {
			p.ring = append(p.ring, id)
		} else {
			delete(p.seen, p.ring[p.next])
			p.ring[p.next] = id
			p.next = (p.next + 1) % p.max
		}
		p.seen[id] = struct{}{}
		p.mu.Unlock()
		return nil
	}
	delete(p.seen, id)
	p.mu.Unlock()

	k := keys.PrepareEd25519(pub)
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

// verifyAny is keys.VerifyAny (ed25519 first, then sr25519) with
// ed25519 keys prepared. pub is 32 bytes (lookupKey checks).
func (v *Verifier) verifyAny(pub, msg, sig []byte) (keys.Scheme, bool) {
	if v.prepared.verify(pub, msg, sig) {
		return keys.Ed25519, true
	}
	if (keys.PublicKey{Scheme: keys.Sr25519, Key: pub}).Verify(msg, sig) {
		return keys.Sr25519, true
	}
	return "", false
}

// verifyScheme is keys.PublicKey.Verify with ed25519 keys prepared.
func (v *Verifier) verifyScheme(scheme keys.Scheme, pub, msg, sig []byte) bool {
	if scheme == keys.Ed25519 {
		return v.prepared.verify(pub, msg, sig)
	}
	return keys.PublicKey{Scheme: scheme, Key: pub}.Verify(msg, sig)
}
