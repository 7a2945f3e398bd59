package gridtypes

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxCanonicalDepth bounds the nesting of canonicalized JSON so a hostile
// document cannot exhaust the stack.
const maxCanonicalDepth = 32

// Canonical returns the RFC 8785 (JSON Canonicalization Scheme) form of
// the JSON value in data: object members sorted by the UTF-16 code units
// of their names, no whitespace, strings with only the mandatory escapes.
// Numbers must be integers (no fraction or exponent): no workload schema
// has other numbers, and integers are the one case where every language
// writes the same digits. Duplicate member names and invalid UTF-8 are
// errors.
func Canonical(data []byte) ([]byte, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("canonical JSON: invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := canonicalValue(dec, &buf, 0); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("canonical JSON: data after the value")
	}
	return buf.Bytes(), nil
}

func canonicalValue(dec *json.Decoder, buf *bytes.Buffer, depth int) error {
	if depth > maxCanonicalDepth {
		return fmt.Errorf("nested deeper than %d", maxCanonicalDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return canonicalObject(dec, buf, depth)
		case '[':
			buf.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					buf.WriteByte(',')
				}
				if err := canonicalValue(dec, buf, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil { // ']'
				return err
			}
			buf.WriteByte(']')
			return nil
		}
		return fmt.Errorf("unexpected %q", v)
	case string:
		writeCanonicalString(buf, v)
	case json.Number:
		n, err := canonicalInteger(string(v))
		if err != nil {
			return err
		}
		buf.WriteString(n)
	case bool:
		if v {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	}
	return nil
}

func canonicalObject(dec *json.Decoder, buf *bytes.Buffer, depth int) error {
	type member struct {
		key   string
		units []uint16
		value []byte
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return fmt.Errorf("object key %v is not a string", tok)
		}
		var vb bytes.Buffer
		if err := canonicalValue(dec, &vb, depth+1); err != nil {
			return err
		}
		members = append(members, member{key: key, units: utf16.Encode([]rune(key)), value: vb.Bytes()})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return err
	}
	slices.SortFunc(members, func(a, b member) int { return slices.Compare(a.units, b.units) })
	buf.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			if m.key == members[i-1].key {
				return fmt.Errorf("duplicate member %q", m.key)
			}
			buf.WriteByte(',')
		}
		writeCanonicalString(buf, m.key)
		buf.WriteByte(':')
		buf.Write(m.value)
	}
	buf.WriteByte('}')
	return nil
}

// canonicalInteger checks that a JSON number literal is an integer and
// returns its canonical spelling ("-0" becomes "0").
func canonicalInteger(s string) (string, error) {
	if strings.ContainsAny(s, ".eE") {
		return "", fmt.Errorf("number %s is not an integer", s)
	}
	if len(s) > 20 {
		return "", fmt.Errorf("number %s is too long", s)
	}
	if s == "-0" {
		return "0", nil
	}
	return s, nil
}

// writeCanonicalString writes s as RFC 8785 does: '"' and '\' escaped, the
// control characters as \b \t \n \f \r or \u00xx, everything else as is.
func writeCanonicalString(buf *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	buf.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			buf.WriteString(`\"`)
		case c == '\\':
			buf.WriteString(`\\`)
		case c == '\b':
			buf.WriteString(`\b`)
		case c == '\t':
			buf.WriteString(`\t`)
		case c == '\n':
			buf.WriteString(`\n`)
		case c == '\f':
			buf.WriteString(`\f`)
		case c == '\r':
			buf.WriteString(`\r`)
		case c < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[c>>4])
			buf.WriteByte(hexDigits[c&0xf])
		default:
			buf.WriteByte(c)
		}
	}
	buf.WriteByte('"')
}

// hashView is the signed part of a deployment: every member always
// present, workload data as sent, no results and no signatures.
type hashView struct {
	ID                   uint64             `json:"id"`
	TwinID               uint64             `json:"twin_id"`
	Version              uint32             `json:"version"`
	Metadata             string             `json:"metadata"`
	Description          string             `json:"description"`
	SignatureRequirement hashRequirement    `json:"signature_requirement"`
	Workloads            []hashWorkloadView `json:"workloads"`
}

type hashRequirement struct {
	Requests       []SignatureRequest `json:"requests"`
	WeightRequired uint32             `json:"weight_required"`
}

type hashWorkloadView struct {
	Name        string          `json:"name"`
	Type        WorkloadType    `json:"type"`
	Version     uint32          `json:"version"`
	Data        json.RawMessage `json:"data"`
	Metadata    string          `json:"metadata"`
	Description string          `json:"description"`
}

// Hash returns the SHA-256 of the deployment's canonical form: the RFC 8785
// serialization of the object
//
//	{"id", "twin_id", "version", "metadata", "description",
//	 "signature_requirement": {"requests": [{"twin_id","required","weight"}...], "weight_required"},
//	 "workloads": [{"name","type","version","data","metadata","description"}...]}
//
// with every member present (empty strings, zeros, false and [] included),
// workloads and requests in the deployment's order, and each workload's data
// as sent. Signatures, results and ContractID are not covered (the
// contract is made for the hash before its id is known).
func (d *Deployment) Hash() ([32]byte, error) {
	v := hashView{
		ID: d.ID, TwinID: d.TwinID, Version: d.Version, Metadata: d.Metadata, Description: d.Description,
		SignatureRequirement: hashRequirement{
			Requests:       d.SignatureRequirement.Requests,
			WeightRequired: d.SignatureRequirement.WeightRequired,
		},
		Workloads: make([]hashWorkloadView, len(d.Workloads)),
	}
	if v.SignatureRequirement.Requests == nil {
		v.SignatureRequirement.Requests = []SignatureRequest{}
	}
	for i, w := range d.Workloads {
		data := w.Data
		if len(data) == 0 {
			data = json.RawMessage("null")
		}
		v.Workloads[i] = hashWorkloadView{Name: w.Name, Type: w.Type, Version: w.Version, Data: data, Metadata: w.Metadata, Description: w.Description}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return [32]byte{}, fmt.Errorf("deployment hash: %w", err)
	}
	c, err := Canonical(raw)
	if err != nil {
		return [32]byte{}, fmt.Errorf("deployment hash: %w", err)
	}
	return sha256.Sum256(c), nil
}

// HashHex is Hash in lowercase hex: the text that twins sign.
func (d *Deployment) HashHex() (string, error) {
	h, err := d.Hash()
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h[:]), nil
}

// DataHash identifies what a workload asks of the node: its type and
// data, not its name, version, metadata or description. The engine
// compares the DataHash of two versions of a workload to decide whether
// the node has anything to do.
func (w *Workload) DataHash() (string, error) { return w.contentHash(false) }

// contentHash identifies what a workload is, independently of its name and
// version. With meta, metadata and description count too: a workload
// whose contentHash(true) changed needs a new version; one whose
// contentHash(false) changed needs an operation on the node.
func (w *Workload) contentHash(meta bool) (string, error) {
	data := w.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	v := struct {
		Type        WorkloadType    `json:"type"`
		Data        json.RawMessage `json:"data"`
		Metadata    string          `json:"metadata"`
		Description string          `json:"description"`
	}{Type: w.Type, Data: data}
	if meta {
		v.Metadata, v.Description = w.Metadata, w.Description
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	c, err := Canonical(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}
