package devnet

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/grid4/grid4/internal/atomicfile"
	"github.com/grid4/grid4/keys"
)

// identities are the devnet's keys: the registrar's admin and the farmer
// (mnemonics, used as gridctl uses one: sr25519, no derivation path) and
// the hub publisher that signs releases (an ed25519 seed file).
type identities struct {
	admin, farmer, publisher keys.KeyPair
}

// publisherKey is the publisher's public key in hex, as the hub and the
// nodes are given it.
func (i identities) publisherKey() string { return hex.EncodeToString(i.publisher.Public().Key) }

// ensureIdentities reads the devnet's identities, making the missing
// ones.
func ensureIdentities(d Dir) (identities, error) {
	var ids identities
	var err error
	if ids.admin, err = ensureMnemonic(d.Path(adminFile)); err != nil {
		return ids, err
	}
	if ids.farmer, err = ensureMnemonic(d.Path(farmerFile)); err != nil {
		return ids, err
	}
	seed := d.Path(publisherFile)
	ids.publisher, err = keys.ReadSeedFile(seed)
	if errors.Is(err, fs.ErrNotExist) {
		if ids.publisher, err = keys.Generate(keys.Ed25519); err == nil {
			err = keys.WriteSeedFile(seed, ids.publisher)
		}
	}
	if err != nil {
		return ids, fmt.Errorf("publisher %s: %w", seed, err)
	}
	return ids, nil
}

// ensureMnemonic reads the mnemonic in path, or writes a new one there.
func ensureMnemonic(path string) (keys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var m string
		if m, err = keys.NewMnemonic(); err != nil {
			return nil, err
		}
		b = []byte(m + "\n")
		err = atomicfile.WriteFile(path, b, 0o600)
	}
	if err != nil {
		return nil, err
	}
	kp, err := keys.FromMnemonic(keys.Sr25519, strings.TrimSpace(string(b)), "", "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kp, nil
}

// loadIdentities reads the identities of an existing devnet.
func loadIdentities(d Dir) (identities, error) {
	for _, f := range []string{adminFile, farmerFile, publisherFile} {
		if _, err := os.Stat(d.Path(f)); err != nil {
			return identities{}, fmt.Errorf("the devnet's identity: %w", err)
		}
	}
	return ensureIdentities(d)
}
