package gridctl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/keys"
)

// MnemonicEnv is the environment variable holding a mnemonic, secret URI or
// 0x hex seed when neither --mnemonic-file nor --seed-file is given.
const MnemonicEnv = "GRID_MNEMONIC"

// defaultScheme is sr25519, the scheme polkadot.js and subkey default to, so
// a mnemonic shows the same address here as in a Substrate wallet.
const defaultScheme = keys.Sr25519

// maxSecretFileSize bounds a mnemonic file: a secret URI is a few hundred
// bytes, so a large file is a mistake (a wrong path), not a secret.
const maxSecretFileSize = 64 << 10

// errNoIdentity is returned when a command needs a key and none was given.
var errNoIdentity = errors.New("no identity: give --mnemonic-file PATH, --seed-file PATH or set " + MnemonicEnv)

// identityFlags are the flags of commands that act as an identity. Secrets
// come only from files or the environment, never from a flag value, which
// would land in shell history and the process list.
type identityFlags struct {
	mnemonicFile string
	seedFile     string
	scheme       string
	path         string
}

func (f *identityFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.mnemonicFile, "mnemonic-file", "", "read the identity from `PATH`: a mnemonic, a secret URI (mnemonic//hard/soft///password) or a 0x hex seed")
	fl.StringVar(&f.seedFile, "seed-file", "", "read the identity from a node seed file at `PATH`")
	fl.StringVar(&f.scheme, "scheme", string(defaultScheme), "signature scheme: ed25519 or sr25519 (a seed file records its own)")
	fl.StringVar(&f.path, "path", "", "derivation path applied to the identity, e.g. //farm//1 (ed25519: hard junctions only)")
	cmd.MarkFlagsMutuallyExclusive("mnemonic-file", "seed-file")
}

// when is f when need is true, else nil: the identity of a command that
// signs, or needs to know its twin, only in some of its forms.
func (f *identityFlags) when(need bool) *identityFlags {
	if need {
		return f
	}
	return nil
}

// load returns the key pair the flags and environment name: --mnemonic-file
// or --seed-file if given, else $GRID_MNEMONIC, then --path applied to it.
func (f *identityFlags) load(cmd *cobra.Command, env Env) (keys.KeyPair, error) {
	scheme, err := keys.ParseScheme(f.scheme)
	if err != nil {
		return nil, err
	}
	var kp keys.KeyPair
	switch {
	case f.seedFile != "":
		if kp, err = keys.ReadSeedFile(f.seedFile); err != nil {
			return nil, err
		}
		if cmd.Flags().Changed("scheme") && kp.Scheme() != scheme {
			return nil, fmt.Errorf("seed file %s holds an %s key, not %s", f.seedFile, kp.Scheme(), scheme)
		}
	case f.mnemonicFile != "":
		secret, err := readSecretFile(f.mnemonicFile)
		if err != nil {
			return nil, err
		}
		if kp, err = keys.FromSecretURI(scheme, secret); err != nil {
			return nil, fmt.Errorf("mnemonic file %s: %w", f.mnemonicFile, err)
		}
	case strings.TrimSpace(env.Getenv(MnemonicEnv)) != "":
		if kp, err = keys.FromSecretURI(scheme, strings.TrimSpace(env.Getenv(MnemonicEnv))); err != nil {
			return nil, fmt.Errorf("%s: %w", MnemonicEnv, err)
		}
	default:
		return nil, errNoIdentity
	}
	junctions, err := keys.ParsePath(f.path)
	if err != nil {
		return nil, fmt.Errorf("--path: %w", err)
	}
	if kp, err = keys.Derive(kp, junctions); err != nil {
		return nil, fmt.Errorf("--path: %w", err)
	}
	return kp, nil
}

// readSecretFile reads a mnemonic file, trimming surrounding whitespace (so a
// trailing newline is fine; a password cannot start or end with spaces).
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("mnemonic file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return "", fmt.Errorf("mnemonic file %s: %w", path, err)
	}
	if len(data) > maxSecretFileSize {
		return "", fmt.Errorf("mnemonic file %s: larger than %d bytes, not a mnemonic", path, maxSecretFileSize)
	}
	secret := strings.TrimSpace(string(data))
	if secret == "" {
		return "", fmt.Errorf("mnemonic file %s is empty", path)
	}
	return secret, nil
}
