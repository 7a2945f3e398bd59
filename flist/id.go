package flist

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// ID is a SHA-256 digest: the identity of a block (of its uncompressed
// bytes), of an flist (of its canonical document) or of a tag document.
type ID [sha256.Size]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(sha256.Sum256(data)) }

// String returns the ID as 64 lowercase hexadecimal digits, the only form
// used on the wire and on disk.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// IsZero reports whether id is the zero value (no ID).
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText implements encoding.TextMarshaler (lowercase hex).
func (id ID) MarshalText() ([]byte, error) {
	b := make([]byte, hex.EncodedLen(len(id)))
	hex.Encode(b, id[:])
	return b, nil
}

// UnmarshalText implements encoding.TextUnmarshaler; see ParseID.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseID parses 64 lowercase hexadecimal digits. Uppercase is refused so
// that every ID has exactly one spelling (IDs are file names and map keys).
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("%w: id %q: want %d lowercase hex digits", ErrInvalid, truncate(s), 2*len(id))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return id, fmt.Errorf("%w: id %q: want %d lowercase hex digits", ErrInvalid, truncate(s), 2*len(id))
		}
	}
	_, _ = hex.Decode(id[:], []byte(s))
	return id, nil
}

// truncate shortens s for error messages (input may be large or hostile).
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
