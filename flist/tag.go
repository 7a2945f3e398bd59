package flist

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/grid4/grid4/internal/strictb64"
	"github.com/grid4/grid4/keys"
)

// TagFormat is the value of the "format" member of a tag document.
const TagFormat = "grid4-tag/1"

// Limits of tag documents.
const (
	// MaxTagEntries bounds the flists of one tag.
	MaxTagEntries = 1000
	// MaxTagDocumentSize bounds a tag document.
	MaxTagDocumentSize = 1 << 20
)

// Role says what an flist is to a release.
type Role string

// Roles of tag entries.
const (
	// RoleDependency: a package installed before the main one.
	RoleDependency Role = "dependency"
	// RoleZos: the ZOS package itself, installed last. A tag has at most
	// one, as its last entry.
	RoleZos Role = "zos"
)

// TagEntry is one flist of a tag.
type TagEntry struct {
	// Name names the package within the release (a ValidName): an
	// installer materialises it into a directory of that name.
	Name string
	// Flist is the flist's ID.
	Flist ID
	// Role is RoleDependency or RoleZos.
	Role Role
}

// Tag is a release: a named, ordered set of flists of a publisher's
// repository. Its document is what the publisher signs; it names the
// publisher, repository and tag so that a signed tag cannot be served under
// another name.
type Tag struct {
	// Publisher is the publisher whose key signs the tag.
	Publisher string
	// Repo is the repository, of that publisher, the tag belongs to.
	Repo string
	// Name is the tag's name, e.g. the ZOS version "v4.1.2".
	Name string
	// Created is when it was signed, in Unix seconds.
	Created int64
	// Entries are the flists in installation order: dependencies first,
	// the RoleZos entry (if any) last.
	Entries []TagEntry
}

// Dependencies returns the entries with RoleDependency, in order.
func (t *Tag) Dependencies() []TagEntry {
	var out []TagEntry
	for _, e := range t.Entries {
		if e.Role == RoleDependency {
			out = append(out, e)
		}
	}
	return out
}

// Zos returns the RoleZos entry, if the tag has one.
func (t *Tag) Zos() (TagEntry, bool) {
	for _, e := range t.Entries {
		if e.Role == RoleZos {
			return e, true
		}
	}
	return TagEntry{}, false
}

// Validate checks the tag's rules: valid names, 1 to MaxTagEntries entries
// with distinct names and known roles, at most one RoleZos entry and only
// as the last one, a non-negative creation time. Errors wrap ErrInvalid.
func (t *Tag) Validate() error {
	for _, n := range []struct{ what, v string }{{"publisher", t.Publisher}, {"repo", t.Repo}, {"tag", t.Name}} {
		if err := ValidName(n.v); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalid, n.what, err)
		}
	}
	if t.Created < 0 {
		return fmt.Errorf("%w: tag %s: negative created time", ErrInvalid, t.Name)
	}
	if len(t.Entries) == 0 || len(t.Entries) > MaxTagEntries {
		return fmt.Errorf("%w: tag %s: %d entries, want 1 to %d", ErrInvalid, t.Name, len(t.Entries), MaxTagEntries)
	}
	names := make(map[string]bool, len(t.Entries))
	for i, e := range t.Entries {
		if err := ValidName(e.Name); err != nil {
			return fmt.Errorf("%w: tag %s: entry %d: %w", ErrInvalid, t.Name, i, err)
		}
		if names[e.Name] {
			return fmt.Errorf("%w: tag %s: entry name %q appears twice", ErrInvalid, t.Name, e.Name)
		}
		names[e.Name] = true
		if e.Flist.IsZero() {
			return fmt.Errorf("%w: tag %s: entry %q has no flist", ErrInvalid, t.Name, e.Name)
		}
		switch e.Role {
		case RoleDependency:
		case RoleZos:
			if i != len(t.Entries)-1 {
				return fmt.Errorf("%w: tag %s: the %s entry %q must be the last one", ErrInvalid, t.Name, RoleZos, e.Name)
			}
		default:
			return fmt.Errorf("%w: tag %s: entry %q: role %q, want %s or %s", ErrInvalid, t.Name, e.Name, truncate(string(e.Role)), RoleDependency, RoleZos)
		}
	}
	return nil
}

// Encode returns the canonical tag document (docs/flist.md). It does not
// validate t.
func (t *Tag) Encode() []byte {
	var b bytes.Buffer
	b.WriteString(`{"created":`)
	b.WriteString(strconv.FormatInt(t.Created, 10))
	b.WriteString(`,"entries":[`)
	for i, e := range t.Entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"flist":"`)
		b.WriteString(e.Flist.String())
		b.WriteString(`","name":`)
		writeString(&b, e.Name)
		b.WriteString(`,"role":`)
		writeString(&b, string(e.Role))
		b.WriteByte('}')
	}
	b.WriteString(`],"format":`)
	writeString(&b, TagFormat)
	b.WriteString(`,"publisher":`)
	writeString(&b, t.Publisher)
	b.WriteString(`,"repo":`)
	writeString(&b, t.Repo)
	b.WriteString(`,"tag":`)
	writeString(&b, t.Name)
	b.WriteByte('}')
	return b.Bytes()
}

type wireTag struct {
	Created   int64          `json:"created"`
	Entries   []wireTagEntry `json:"entries"`
	Format    string         `json:"format"`
	Publisher string         `json:"publisher"`
	Repo      string         `json:"repo"`
	Tag       string         `json:"tag"`
}

type wireTagEntry struct {
	Flist ID     `json:"flist"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// ParseTag decodes and validates a tag document, accepting only the
// canonical encoding of a valid tag. Errors wrap ErrInvalid.
func ParseTag(data []byte) (*Tag, error) {
	if len(data) > MaxTagDocumentSize {
		return nil, fmt.Errorf("%w: tag document is %d bytes, limit %d", ErrInvalid, len(data), MaxTagDocumentSize)
	}
	var w wireTag
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("%w: tag document: %w", ErrInvalid, err)
	}
	if w.Format != TagFormat {
		return nil, fmt.Errorf("%w: tag format %q, want %q", ErrInvalid, truncate(w.Format), TagFormat)
	}
	if len(w.Entries) > MaxTagEntries {
		return nil, fmt.Errorf("%w: tag has %d entries, limit %d", ErrInvalid, len(w.Entries), MaxTagEntries)
	}
	t := &Tag{Publisher: w.Publisher, Repo: w.Repo, Name: w.Tag, Created: w.Created, Entries: make([]TagEntry, len(w.Entries))}
	for i, e := range w.Entries {
		t.Entries[i] = TagEntry{Name: e.Name, Flist: e.Flist, Role: Role(e.Role)}
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	if !bytes.Equal(t.Encode(), data) {
		return nil, fmt.Errorf("%w: tag document is not in canonical form (see docs/flist.md)", ErrInvalid)
	}
	return t, nil
}

// SignedTag is a tag document with its publisher's signature over exactly
// those bytes.
type SignedTag struct {
	// Document is the canonical tag document.
	Document []byte
	// Alg is the signature scheme, ed25519 or sr25519.
	Alg keys.Scheme
	// Signature is the 64-byte signature of Document.
	Signature []byte
}

// Hash returns the ID of the release: the SHA-256 of the tag document.
func (st SignedTag) Hash() ID { return Sum(st.Document) }

// Tag parses the document without checking the signature (for display;
// use VerifyTag to trust it).
func (st SignedTag) Tag() (*Tag, error) { return ParseTag(st.Document) }

// SignTag validates t and signs its canonical document with kp.
func SignTag(t *Tag, kp keys.KeyPair) (SignedTag, error) {
	if err := t.Validate(); err != nil {
		return SignedTag{}, err
	}
	doc := t.Encode()
	sig, err := kp.Sign(doc)
	if err != nil {
		return SignedTag{}, fmt.Errorf("flist: signing tag %s: %w", t.Name, err)
	}
	return SignedTag{Document: doc, Alg: kp.Scheme(), Signature: sig}, nil
}

// VerifyTag checks that st's document is a valid, canonical tag signed by
// publicKey, and returns the tag. Errors wrap ErrInvalid (the document) or
// ErrBadSignature. The caller still compares the tag's Publisher, Repo and
// Name with what it asked for.
func VerifyTag(st SignedTag, publicKey []byte) (*Tag, error) {
	t, err := ParseTag(st.Document)
	if err != nil {
		return nil, err
	}
	if st.Alg != keys.Ed25519 && st.Alg != keys.Sr25519 {
		return nil, fmt.Errorf("%w: tag %s/%s:%s: algorithm %q, want ed25519 or sr25519", ErrBadSignature, t.Publisher, t.Repo, t.Name, truncate(string(st.Alg)))
	}
	if len(publicKey) != keys.PublicKeySize {
		return nil, fmt.Errorf("%w: publisher key is %d bytes, want %d", ErrBadSignature, len(publicKey), keys.PublicKeySize)
	}
	if !(keys.PublicKey{Scheme: st.Alg, Key: publicKey}).Verify(st.Document, st.Signature) {
		return nil, fmt.Errorf("%w: tag %s/%s:%s is not signed by the publisher's key", ErrBadSignature, t.Publisher, t.Repo, t.Name)
	}
	return t, nil
}

// wireSignedTag is the JSON form of a SignedTag: the document embedded as
// JSON (its exact bytes), the hash for convenience.
type wireSignedTag struct {
	Alg       keys.Scheme     `json:"alg"`
	Document  json.RawMessage `json:"document"`
	Hash      *ID             `json:"hash,omitempty"`
	Signature string          `json:"signature"`
}

// MarshalJSON encodes st as {"alg", "document", "hash", "signature"}: the
// document as a JSON object (byte for byte), the signature in standard
// base64.
func (st SignedTag) MarshalJSON() ([]byte, error) {
	h := st.Hash()
	doc := st.Document
	if !json.Valid(doc) {
		return nil, fmt.Errorf("%w: tag document is not JSON", ErrInvalid)
	}
	var b bytes.Buffer
	b.WriteString(`{"alg":`)
	writeString(&b, string(st.Alg))
	b.WriteString(`,"document":`)
	// Written by hand: json.Marshal would re-escape the document (HTML
	// escaping), and it must reach the reader byte for byte.
	b.Write(doc)
	b.WriteString(`,"hash":"`)
	b.WriteString(h.String())
	b.WriteString(`","signature":"`)
	b.WriteString(base64.StdEncoding.EncodeToString(st.Signature))
	b.WriteString(`"}`)
	return b.Bytes(), nil
}

// UnmarshalJSON decodes the form MarshalJSON writes. The document keeps
// its exact bytes; a "hash" member, if present, must match them.
func (st *SignedTag) UnmarshalJSON(data []byte) error {
	var w wireSignedTag
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("%w: signed tag: %w", ErrInvalid, err)
	}
	sig, err := strictb64.Std(w.Signature)
	if err != nil || len(sig) != keys.SignatureSize {
		return fmt.Errorf("%w: signed tag: signature is not %d bytes of standard base64", ErrInvalid, keys.SignatureSize)
	}
	doc := []byte(w.Document)
	if w.Hash != nil && *w.Hash != Sum(doc) {
		return fmt.Errorf("%w: signed tag: hash %s does not match its document (%s)", ErrInvalid, *w.Hash, Sum(doc))
	}
	*st = SignedTag{Document: bytes.Clone(doc), Alg: w.Alg, Signature: sig}
	return nil
}
