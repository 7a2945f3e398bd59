package keys

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/grid4/grid4/internal/atomicfile"
)

// Seed file errors callers may branch on.
var (
	// ErrCorruptSeedFile is returned for a seed file that exists but cannot
	// be trusted: truncated, corrupted, garbage, an unknown version, or not a
	// regular file. Callers must stop rather than make a new identity: the
	// old one may still be recoverable, and replacing it would silently
	// change who the node is.
	ErrCorruptSeedFile = errors.New("corrupt seed file")
	// ErrInsecureSeedFile is returned for a seed file that group or others
	// may access (like ssh, we refuse a secret others could have read).
	ErrInsecureSeedFile = errors.New("seed file is accessible by group or others (want mode 0600)")
	// ErrNoSeed is returned when writing a key pair that has no seed (an
	// sr25519 key whose last derivation step was soft).
	ErrNoSeed = errors.New("key pair has no seed (its last derivation step was a soft junction)")
)

// SeedFileVersion is the seed file format version this package writes and
// reads.
const SeedFileVersion = 1

// maxSeedFileSize bounds what ReadSeedFile reads: a version 1 file is about
// 150 bytes, so anything much bigger is not a seed file.
const maxSeedFileSize = 4096

// seedFileChecksumDomain separates the seed file checksum from any other
// SHA-256 of the same bytes.
const seedFileChecksumDomain = "grid4 seed file v1"

// seedFileV1 is the JSON document of a version 1 seed file. Field order is
// the order written.
type seedFileV1 struct {
	Version  int    `json:"version"`
	Scheme   Scheme `json:"scheme"`
	Seed     string `json:"seed"`
	Checksum string `json:"checksum"`
}

// WriteSeedFile stores kp's seed at path, the node identity file.
//
// Format, version 1: one JSON object followed by a newline,
//
//	{"version":1,"scheme":"ed25519","seed":"<64 lowercase hex>","checksum":"<16 lowercase hex>"}
//
// where checksum is the hex of the first 8 bytes of
// SHA-256("grid4 seed file v1" ‖ 0x00 ‖ scheme ‖ 0x00 ‖ seed bytes). JSON
// catches truncation, the checksum catches a changed seed or scheme, and the
// version lets a later format be told apart rather than misread.
//
// The file is written atomically with mode 0600: a temporary file in the same
// directory is written and fsynced, renamed over path, and the directory is
// fsynced, so a crash leaves either no file or the whole file. WriteSeedFile
// refuses to replace an existing file (the error wraps fs.ErrExist): an
// identity is not something to overwrite by accident. The check and the
// rename are not one atomic step, so callers must not race two writers.
func WriteSeedFile(path string, kp KeyPair) error {
	data, err := marshalSeedFile(kp)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("writing seed file %s: refusing to replace it: %w", path, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing seed file: %w", err)
	}
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		if errors.Is(err, atomicfile.ErrNotDurable) {
			return fmt.Errorf("writing seed file %s: %w", path, err)
		}
		return fmt.Errorf("writing seed file: %w", err)
	}
	return nil
}

// ReadSeedFile loads the key pair stored at path by WriteSeedFile.
//
// A missing file gives an error wrapping fs.ErrNotExist: the one case where a
// caller may create a new identity. Any other failure is an error the caller
// must surface: ErrCorruptSeedFile for content that is not a valid seed file
// (truncated, corrupted, unknown version, not a regular file),
// ErrInsecureSeedFile when group or others can access it, and the underlying
// error (such as fs.ErrPermission) when it cannot be read.
func ReadSeedFile(path string) (KeyPair, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading seed file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading seed file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("reading seed file %s: %w: not a regular file (%s)", path, ErrCorruptSeedFile, info.Mode().Type())
	}
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("reading seed file %s: %w: mode is %04o", path, ErrInsecureSeedFile, info.Mode().Perm())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSeedFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading seed file %s: %w", path, err)
	}
	kp, err := parseSeedFile(data)
	if err != nil {
		return nil, fmt.Errorf("reading seed file %s: %w", path, err)
	}
	return kp, nil
}

// marshalSeedFile encodes kp in the version 1 format.
func marshalSeedFile(kp KeyPair) ([]byte, error) {
	seed := kp.Seed()
	if seed == nil {
		return nil, fmt.Errorf("writing seed file: %w", ErrNoSeed)
	}
	// Check that the seed really is this key's, so a KeyPair from elsewhere
	// cannot store a seed that loads as another identity.
	again, err := FromSeed(kp.Scheme(), seed)
	if err != nil {
		return nil, fmt.Errorf("writing seed file: %w", err)
	}
	if !bytes.Equal(again.Public().Key, kp.Public().Key) {
		return nil, fmt.Errorf("writing seed file: %w: seed does not give the pair's public key", ErrInvalidKey)
	}
	doc := seedFileV1{
		Version:  SeedFileVersion,
		Scheme:   kp.Scheme(),
		Seed:     hex.EncodeToString(seed),
		Checksum: seedFileChecksum(kp.Scheme(), seed),
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("writing seed file: %w", err)
	}
	return append(data, '\n'), nil
}

// parseSeedFile decodes a seed file's content. Every error wraps
// ErrCorruptSeedFile.
func parseSeedFile(data []byte) (KeyPair, error) {
	if len(data) > maxSeedFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrCorruptSeedFile, maxSeedFileSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorruptSeedFile)
	}
	// Read the version alone first, so a newer format is reported as such
	// rather than as unknown fields.
	var head struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object (truncated?): %w", ErrCorruptSeedFile, err)
	}
	if head.Version == nil {
		return nil, fmt.Errorf("%w: no version", ErrCorruptSeedFile)
	}
	if *head.Version != SeedFileVersion {
		return nil, fmt.Errorf("%w: unsupported version %d (this build reads version %d)", ErrCorruptSeedFile, *head.Version, SeedFileVersion)
	}
	var doc seedFileV1
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSeedFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrCorruptSeedFile)
	}
	if doc.Scheme != Ed25519 && doc.Scheme != Sr25519 {
		return nil, fmt.Errorf("%w: unknown scheme %q", ErrCorruptSeedFile, doc.Scheme)
	}
	seed, err := hex.DecodeString(doc.Seed)
	if err != nil || len(seed) != SeedSize {
		return nil, fmt.Errorf("%w: seed is not %d bytes of hex", ErrCorruptSeedFile, SeedSize)
	}
	if doc.Checksum != seedFileChecksum(doc.Scheme, seed) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorruptSeedFile)
	}
	kp, err := FromSeed(doc.Scheme, seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptSeedFile, err)
	}
	return kp, nil
}

func seedFileChecksum(scheme Scheme, seed []byte) string {
	h := sha256.New()
	h.Write([]byte(seedFileChecksumDomain))
	h.Write([]byte{0})
	h.Write([]byte(scheme))
	h.Write([]byte{0})
	h.Write(seed)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ParseSeedHex parses a 32-byte seed written as 64 hex digits, with or
// without a 0x prefix.
func ParseSeedHex(s string) ([]byte, error) {
	digits := cutHexPrefix(s)
	if len(digits) != 2*SeedSize {
		return nil, fmt.Errorf("%w: hex seed has %d digits, want %d", ErrInvalidKey, len(digits), 2*SeedSize)
	}
	seed, err := hex.DecodeString(digits)
	if err != nil {
		// Do not wrap hex's error: it quotes the offending secret byte.
		return nil, fmt.Errorf("%w: hex seed contains a non-hex character", ErrInvalidKey)
	}
	return seed, nil
}
