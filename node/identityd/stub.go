package identityd

import (
	"context"
	"fmt"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/keys"
)

// Stub calls identityd over the bus.
type Stub struct{ c *bus.Client }

// NewStub returns a stub calling identityd through c.
func NewStub(c *bus.Client) Stub { return Stub{c: c} }

// Info describes the identity.
func (s Stub) Info(ctx context.Context) (Info, error) {
	return bus.Call[Info](ctx, s.c, Object, "Info")
}

// Address returns the node's SS58 address.
func (s Stub) Address(ctx context.Context) (string, error) {
	return bus.Call[string](ctx, s.c, Object, "Address")
}

// PublicKey returns the node's public key.
func (s Stub) PublicKey(ctx context.Context) ([]byte, error) {
	return bus.Call[[]byte](ctx, s.c, Object, "PublicKey")
}

// Scheme returns the node key's scheme.
func (s Stub) Scheme(ctx context.Context) (string, error) {
	return bus.Call[string](ctx, s.c, Object, "Scheme")
}

// FarmID returns the node's farm.
func (s Stub) FarmID(ctx context.Context) (uint64, error) {
	return bus.Call[uint64](ctx, s.c, Object, "FarmID")
}

// Sign signs msg with the node key (SignerObject: only the modules allowed
// to sign may call it; others get bus.ErrNotAllowed).
func (s Stub) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	return bus.Call[[]byte](ctx, s.c, SignerObject, "Sign", msg)
}

// Verify checks a signature by the node key.
func (s Stub) Verify(ctx context.Context, msg, sig []byte) (bool, error) {
	return bus.Call[bool](ctx, s.c, Object, "Verify", msg, sig)
}

// SignTimeout bounds one signature made through RemoteKey: keys.KeyPair's
// Sign has no context, and a request must not hang on a dead identityd.
const SignTimeout = 10 * time.Second

// RemoteKey is a keys.KeyPair whose secret stays in identityd: Sign asks
// identityd over the bus. registrar_gateway signs its registrar requests
// with it. Seed returns nil (the seed never leaves identityd).
type RemoteKey struct {
	stub   Stub
	public keys.PublicKey
}

// NewRemoteKey asks identityd for the node's public key and scheme and
// returns a key pair that signs through it.
func NewRemoteKey(ctx context.Context, s Stub) (*RemoteKey, error) {
	pub, err := s.PublicKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity: public key from identityd: %w", err)
	}
	scheme, err := s.Scheme(ctx)
	if err != nil {
		return nil, fmt.Errorf("identity: key scheme from identityd: %w", err)
	}
	sc, err := keys.ParseScheme(scheme)
	if err != nil {
		return nil, fmt.Errorf("identity: identityd: %w", err)
	}
	if len(pub) != keys.PublicKeySize {
		return nil, fmt.Errorf("identity: identityd returned a %d-byte public key", len(pub))
	}
	return &RemoteKey{stub: s, public: keys.PublicKey{Scheme: sc, Key: pub}}, nil
}

// Scheme returns the key's scheme.
func (k *RemoteKey) Scheme() keys.Scheme { return k.public.Scheme }

// Public returns the public key.
func (k *RemoteKey) Public() keys.PublicKey {
	return keys.PublicKey{Scheme: k.public.Scheme, Key: append([]byte(nil), k.public.Key...)}
}

// Sign signs msg through identityd, within SignTimeout.
func (k *RemoteKey) Sign(msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), SignTimeout)
	defer cancel()
	sig, err := k.stub.Sign(ctx, msg)
	if err != nil {
		return nil, fmt.Errorf("identity: sign through identityd: %w", err)
	}
	return sig, nil
}

// Seed returns nil: the seed stays in identityd.
func (k *RemoteKey) Seed() []byte { return nil }
