package identityd

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/keys"
)

// Object is the bus object identityd serves for everything but
// signatures: what the identity is, and checking signatures.
const Object = "identityd/manager@1.0"

// SignerObject is the bus object that signs with the node key. It is an
// object of its own so that the bus's access rules (one right per object
// queue) can let every module read the identity and only the modules
// that must speak as the node sign (registrar_gateway).
const SignerObject = "identityd/signer@1.0"

// Info describes the node's identity, for status displays.
type Info struct {
	// Address is the SS58 address (prefix 42) of the public key: the
	// node's identifier (the seed: "the public key serves as the node's
	// unique identifier").
	Address string `json:"address"`
	// PublicKey is the hex of the 32-byte public key.
	PublicKey string `json:"public_key"`
	// Scheme is ed25519 or sr25519.
	Scheme string `json:"scheme"`
	// FarmID is the farm the node belongs to.
	FarmID uint64 `json:"farm_id"`
	// Origin says whether the identity was loaded, created or recovered.
	Origin Origin `json:"origin"`
	// From is the copy it was recovered from.
	From string `json:"from,omitempty"`
	// File is the primary seed file.
	File string `json:"file"`
	// Copies are the copies on the data disks.
	Copies []Copy `json:"copies"`
}

// Manager serves the identity Open returned. It is safe for concurrent
// use.
type Manager struct {
	key    keys.KeyPair
	farmID uint64
	info   Info
}

// NewManager returns a Manager serving res's key as a node of farm farmID;
// file is the primary seed file (for Info).
func NewManager(res Result, farmID uint64, file string) *Manager {
	copies := res.Copies
	if copies == nil {
		copies = []Copy{}
	}
	return &Manager{
		key:    res.Key,
		farmID: farmID,
		info: Info{
			Address:   Address(res.Key),
			PublicKey: hex.EncodeToString(res.Key.Public().Key),
			Scheme:    string(res.Key.Scheme()),
			FarmID:    farmID,
			Origin:    res.Origin,
			From:      res.From,
			File:      file,
			Copies:    copies,
		},
	}
}

// Methods returns the bus methods of Object.
func (m *Manager) Methods() bus.Methods {
	return bus.Methods{
		"Info":      bus.Func0(m.Info),
		"Address":   bus.Func0(m.Address),
		"PublicKey": bus.Func0(m.PublicKey),
		"Scheme":    bus.Func0(m.Scheme),
		"FarmID":    bus.Func0(m.FarmID),
		"Verify":    bus.Func2(m.Verify),
	}
}

// SignerMethods returns the bus methods of SignerObject.
func (m *Manager) SignerMethods() bus.Methods {
	return bus.Methods{"Sign": bus.Func1(m.Sign)}
}

// Serve serves Object and SignerObject on c until ctx ends.
func (m *Manager) Serve(ctx context.Context, c *bus.Client) error {
	srv := bus.NewServer(c, bus.ServerOptions{})
	if err := srv.Handle(Object, m.Methods()); err != nil {
		return err
	}
	if err := srv.Handle(SignerObject, m.SignerMethods()); err != nil {
		return err
	}
	return srv.Serve(ctx)
}

// Info describes the identity.
func (m *Manager) Info(context.Context) (Info, error) { return m.info, nil }

// Address returns the SS58 address of the public key.
func (m *Manager) Address(context.Context) (string, error) { return m.info.Address, nil }

// PublicKey returns the 32-byte public key.
func (m *Manager) PublicKey(context.Context) ([]byte, error) { return m.key.Public().Key, nil }

// Scheme returns the key's signature scheme.
func (m *Manager) Scheme(context.Context) (string, error) { return string(m.key.Scheme()), nil }

// FarmID returns the node's farm.
func (m *Manager) FarmID(context.Context) (uint64, error) { return m.farmID, nil }

// Sign signs msg with the node key.
func (m *Manager) Sign(_ context.Context, msg []byte) ([]byte, error) {
	sig, err := m.key.Sign(msg)
	if err != nil {
		return nil, fmt.Errorf("identity: sign: %w", err)
	}
	return sig, nil
}

// Verify checks a signature of msg by the node key.
func (m *Manager) Verify(_ context.Context, msg, sig []byte) (bool, error) {
	return m.key.Public().Verify(msg, sig), nil
}
