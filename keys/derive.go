package keys

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	schnorrkel "github.com/ChainSafe/go-schnorrkel"
	"golang.org/x/crypto/blake2b"
)

// ChainCodeSize is the size of a derivation junction's chain code.
const ChainCodeSize = 32

// Errors callers may branch on.
var (
	// ErrInvalidPath is returned for a malformed derivation path.
	ErrInvalidPath = errors.New("invalid derivation path")
	// ErrInvalidSecretURI is returned for a secret URI that cannot be parsed.
	ErrInvalidSecretURI = errors.New("invalid secret URI")
	// ErrSoftDerivation is returned when a soft junction is applied to an
	// ed25519 key: ed25519 has no soft derivation.
	ErrSoftDerivation = errors.New("soft derivation is not supported for ed25519 (use //hard junctions)")
)

// ed25519HDKDPrefix is SCALE("Ed25519HDKD"): the compact length 11 (one
// byte, 11 << 2 = 0x2c) and the bytes, the domain separator Substrate hashes
// in front of the seed.
const ed25519HDKDPrefix = "\x2cEd25519HDKD"

// Junction is one step of a derivation path: "//name" (hard) or "/name"
// (soft), reduced to its 32-byte chain code.
type Junction struct {
	// Hard is true for a hard ("//") junction.
	Hard bool
	// ChainCode is the junction's chain code, computed the Substrate way
	// (see NewJunction).
	ChainCode [ChainCodeSize]byte
}

// NewJunction makes the junction for one path segment (without its slashes).
//
// Like Substrate, a segment that parses as an unsigned 64-bit decimal number
// is encoded as that number, little-endian; anything else is SCALE-encoded as
// a string (compact length prefix then the bytes). The encoding is the chain
// code, zero-padded to 32 bytes, or its blake2b-256 hash when longer.
func NewJunction(segment string, hard bool) Junction {
	var enc []byte
	if n, ok := parseJunctionNumber(segment); ok {
		enc = binary.LittleEndian.AppendUint64(nil, n)
	} else {
		enc = appendSCALEBytes(nil, []byte(segment))
	}
	j := Junction{Hard: hard}
	if len(enc) > ChainCodeSize {
		j.ChainCode = blake2b.Sum256(enc)
	} else {
		copy(j.ChainCode[:], enc)
	}
	return j
}

// parseJunctionNumber accepts what Rust's u64::from_str accepts (Substrate
// uses it to tell numbers from names): decimal digits with an optional
// leading '+', leading zeros allowed, no overflow.
func parseJunctionNumber(s string) (uint64, bool) {
	digits := strings.TrimPrefix(s, "+")
	if digits == "" || digits[0] < '0' || digits[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// appendSCALEBytes appends the SCALE encoding of a byte string: its compact
// length, then the bytes.
func appendSCALEBytes(dst, b []byte) []byte {
	return append(appendCompact(dst, uint64(len(b))), b...)
}

// appendCompact appends SCALE's compact encoding of n.
func appendCompact(dst []byte, n uint64) []byte {
	switch {
	case n < 1<<6:
		return append(dst, byte(n<<2))
	case n < 1<<14:
		return binary.LittleEndian.AppendUint16(dst, uint16(n<<2|1))
	case n < 1<<30:
		return binary.LittleEndian.AppendUint32(dst, uint32(n<<2|2))
	}
	le := binary.LittleEndian.AppendUint64(nil, n)
	for len(le) > 4 && le[len(le)-1] == 0 {
		le = le[:len(le)-1]
	}
	return append(append(dst, byte(len(le)-4)<<2|3), le...)
}

// ParsePath parses a derivation path such as "//grid//0/1": hard junctions
// start with "//", soft ones with "/". The empty path is valid and has no
// junctions. A path cannot carry a password ("///").
func ParsePath(path string) ([]Junction, error) {
	var out []Junction
	rest := path
	for rest != "" {
		if rest[0] != '/' {
			// The path is not echoed: in a secret URI it is part of the secret.
			return nil, fmt.Errorf("%w: junctions start with / or //", ErrInvalidPath)
		}
		hard := strings.HasPrefix(rest, "//")
		if hard {
			rest = rest[2:]
		} else {
			rest = rest[1:]
		}
		seg := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seg, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		if seg == "" {
			return nil, fmt.Errorf("%w: empty junction", ErrInvalidPath)
		}
		out = append(out, NewJunction(seg, hard))
	}
	return out, nil
}

// Derive applies the junctions to kp the way Substrate does and returns the
// derived pair.
//
// ed25519 supports hard junctions only: the new seed is
// blake2b-256(SCALE("Ed25519HDKD") ‖ seed ‖ chain code). sr25519 supports
// both: a hard junction is schnorrkel's hard derivation of a mini secret key
// (expanded in Ed25519 mode), a soft one schnorrkel's soft derivation of the
// secret key. After a soft sr25519 junction there is no mini secret key, so
// the result's Seed is nil until a later hard junction makes a new one.
//
// kp must come from this package (FromSeed, FromMnemonic, ...).
func Derive(kp KeyPair, path []Junction) (KeyPair, error) {
	switch k := kp.(type) {
	case ed25519Pair:
		seed := k.seed
		for _, j := range path {
			if !j.Hard {
				return nil, ErrSoftDerivation
			}
			msg := make([]byte, 0, len(ed25519HDKDPrefix)+SeedSize+ChainCodeSize)
			msg = append(append(append(msg, ed25519HDKDPrefix...), seed...), j.ChainCode[:]...)
			sum := blake2b.Sum256(msg)
			seed = sum[:]
		}
		return FromSeed(Ed25519, seed)
	case sr25519Pair:
		secret, seed := k.secret, k.seed
		for _, j := range path {
			if j.Hard {
				// Substrate: secret.hard_derive_mini_secret_key(Some(cc), b"")
				// then expand in Ed25519 mode.
				mini, _, err := secret.HardDeriveMiniSecretKey(nil, j.ChainCode)
				if err != nil {
					return nil, fmt.Errorf("sr25519 hard derivation: %w", err)
				}
				enc := mini.Encode()
				seed = enc[:]
				secret = mini.ExpandEd25519()
				continue
			}
			// Substrate: secret.derived_key_simple(cc, b"").
			ext, err := schnorrkel.DeriveKeySimple(secret, nil, j.ChainCode)
			if err != nil {
				return nil, fmt.Errorf("sr25519 soft derivation: %w", err)
			}
			if secret, err = ext.Secret(); err != nil {
				return nil, fmt.Errorf("sr25519 soft derivation: %w", err)
			}
			seed = nil
		}
		return newSr25519Pair(secret, seed)
	}
	return nil, fmt.Errorf("%w: cannot derive from a %T", ErrInvalidKey, kp)
}

// FromMnemonic derives a key pair from a BIP-39 mnemonic, an optional
// password (the "///password" part of a secret URI; empty for none) and an
// optional derivation path such as "//grid//0".
func FromMnemonic(scheme Scheme, mnemonic, password, path string) (KeyPair, error) {
	junctions, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	seed, err := SeedFromMnemonic(mnemonic, password)
	if err != nil {
		return nil, err
	}
	root, err := FromSeed(scheme, seed)
	if err != nil {
		return nil, err
	}
	return Derive(root, junctions)
}

// FromSecretURI derives a key pair from a secret URI as subkey and
// polkadot.js write them:
//
//	<phrase>[//hard|/soft]...[///password]
//
// where <phrase> is a BIP-39 mnemonic or a 0x-prefixed 32-byte hex seed. The
// password only applies to mnemonics; giving one with a hex seed is an error
// (Substrate silently ignores it, which hides mistakes). Unlike subkey, an
// empty phrase does not default to DevPhrase: a missing secret must not turn
// into a well-known key. The URI is used exactly as given, as Substrate
// does: trim a trailing newline read from a file first, or it becomes part
// of the last junction or the password.
func FromSecretURI(scheme Scheme, suri string) (KeyPair, error) {
	phrase, path, password, hasPassword := splitSecretURI(suri)
	if strings.TrimSpace(phrase) == "" {
		return nil, fmt.Errorf("%w: no mnemonic or seed before the path", ErrInvalidSecretURI)
	}
	junctions, err := ParsePath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSecretURI, err)
	}
	var seed []byte
	if trimmed := strings.TrimSpace(phrase); strings.HasPrefix(trimmed, "0x") {
		if hasPassword {
			return nil, fmt.Errorf("%w: a password only applies to a mnemonic, not to a hex seed", ErrInvalidSecretURI)
		}
		if seed, err = ParseSeedHex(trimmed); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidSecretURI, err)
		}
	} else {
		if _, err := ParseSeedHex(trimmed); err == nil {
			return nil, fmt.Errorf("%w: a hex seed needs the 0x prefix", ErrInvalidSecretURI)
		}
		if seed, err = SeedFromMnemonic(phrase, password); err != nil {
			return nil, err
		}
	}
	root, err := FromSeed(scheme, seed)
	if err != nil {
		return nil, err
	}
	return Derive(root, junctions)
}

// splitSecretURI cuts a secret URI into phrase, path and password. The phrase
// runs to the first '/'; the password follows the first "///" after it (a
// path never contains "///", since junctions are not empty), and may itself
// contain slashes.
func splitSecretURI(suri string) (phrase, path, password string, hasPassword bool) {
	phrase, path = suri, ""
	if i := strings.IndexByte(suri, '/'); i >= 0 {
		phrase, path = suri[:i], suri[i:]
	}
	if i := strings.Index(path, "///"); i >= 0 {
		path, password, hasPassword = path[:i], path[i+3:], true
	}
	return phrase, path, password, hasPassword
}
