package registrar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of a request body. The deepest body of
// the API (a node's interface addresses) has four levels.
const maxJSONDepth = 32

// maxInteger is the largest integer a body, path or query may carry: ids
// are signed 64-bit integers in both stores, and no other count or size
// comes near it.
const maxInteger = math.MaxInt64

// readBody reads r's body in full. Bodies above the server's limit are
// refused with 413 (the limit is enforced by a MaxBytesReader installed by
// the server's middleware).
func readBody(r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, badRequest("request body is required (JSON)")
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newHTTPError(http.StatusRequestEntityTooLarge, "request body too large: limit is %d bytes", mbe.Limit)
		}
		return nil, badRequest("reading request body: " + err.Error())
	}
	return data, nil
}

// decodeBody reads r's JSON body into dst strictly (see decodeJSON).
func decodeBody(r *http.Request, dst any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeJSON(data, dst)
}

// decodeJSON decodes data into dst strictly: one JSON value and nothing
// after it; member names exactly as dst's JSON tags spell them (Go's
// encoding/json would also take "FARM_NAME" for "farm_name"), each at most
// once in an object; text valid UTF-8, neither raw nor escaped into lone
// surrogates (encoding/json would silently replace it); integers at most
// maxInteger. Every refusal is a 400 naming the field. The spellings
// existing clients send beside the documented ones are fields of dst too
// (see nodeBody), so they need no exception here.
func decodeJSON(data []byte, dst any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("request body is required (JSON)")
	}
	if err := checkJSON(data, reflect.TypeOf(dst)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return badRequest(describeJSONError(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("invalid request body: data after the JSON value")
	}
	return nil
}

// checkJSON walks the JSON text data alongside the Go type t it is about
// to be decoded into and refuses what encoding/json would let through (see
// decodeJSON). Type mismatches are left to the decoder, which names them.
func checkJSON(data []byte, t reflect.Type) error {
	c := jsonChecker{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	c.dec.UseNumber()
	if err := c.value("", t, 0); err != nil {
		return err
	}
	// What follows the value is reported by the decoder.
	return nil
}

// jsonChecker is one walk of checkJSON.
type jsonChecker struct {
	data []byte
	dec  *json.Decoder
}

// token returns the next token and the bytes it was read from (possibly
// preceded by white space, ':' or ',').
func (c *jsonChecker) token() (json.Token, []byte, error) {
	start := c.dec.InputOffset()
	tok, err := c.dec.Token()
	if err != nil {
		return nil, nil, badRequest(describeJSONError(err))
	}
	return tok, c.data[start:c.dec.InputOffset()], nil
}

// value checks the next value, to be decoded into t (nil: anything) at
// path ("" for the body, "location.city", "interfaces[0]").
func (c *jsonChecker) value(path string, t reflect.Type, depth int) error {
	if depth > maxJSONDepth {
		return badRequest(fmt.Sprintf("invalid request body: nested deeper than %d levels", maxJSONDepth))
	}
	tok, raw, err := c.token()
	if err != nil {
		return err
	}
	t = checkedType(t)
	if tok == nil && depth == 0 && t != nil && t.Kind() == reflect.Struct {
		// encoding/json would take null for an empty object, and a merge
		// patch of null would clear everything.
		return badRequest("invalid request body: expected a JSON object, got null")
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			for i := 0; c.dec.More(); i++ {
				if err := c.value(fmt.Sprintf("%s[%d]", path, i), elem, depth+1); err != nil {
					return err
				}
			}
		} else if err := c.object(path, t, depth); err != nil {
			return err
		}
		_, _, err := c.token() // the closing delimiter
		return err
	case string:
		if !validJSONString(raw) {
			return invalid(fieldName(path), "not valid UTF-8 text")
		}
	case json.Number:
		if t != nil && isInteger(t.Kind()) && !inIntegerRange(string(v)) {
			return outOfRange(fieldName(path), string(v))
		}
	}
	return nil
}

// object checks the members of an object whose '{' was read: names as t
// spells them (any name when t is not a struct), none twice, and those t
// requires present and not null.
func (c *jsonChecker) object(path string, t reflect.Type, depth int) error {
	var fields map[string]reflect.Type
	var required []string
	var elem reflect.Type
	switch {
	case t == nil:
	case t.Kind() == reflect.Struct:
		fields, required = structFields(t), requiredFields(t)
	case t.Kind() == reflect.Map:
		elem = t.Elem()
	}
	seen := map[string]bool{}
	for c.dec.More() {
		tok, raw, err := c.token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if !validJSONString(raw) {
			if path == "" {
				return badRequest("invalid request body: a field name is not valid UTF-8 text")
			}
			return badRequest(fmt.Sprintf("invalid request body: a field name in %q is not valid UTF-8 text", path))
		}
		full := name
		if path != "" {
			full = path + "." + name
		}
		if seen[name] {
			return badRequest(fmt.Sprintf("invalid request body: duplicate field %q", full))
		}
		seen[name] = true
		vt := elem
		if fields != nil {
			ft, ok := fields[name]
			if !ok {
				return unknownField(full, name, path, fields)
			}
			vt = ft
			if slices.Contains(required, name) && c.nullNext() {
				return invalid(full, "required")
			}
		}
		if err := c.value(full, vt, depth+1); err != nil {
			return err
		}
	}
	for _, name := range required {
		if !seen[name] {
			if path != "" {
				name = path + "." + name
			}
			return invalid(name, "required")
		}
	}
	return nil
}

// nullNext reports whether the value after the member name just read is
// null.
func (c *jsonChecker) nullNext() bool {
	rest := bytes.TrimLeft(c.data[c.dec.InputOffset():], " \t\r\n:")
	return bytes.HasPrefix(rest, []byte("null"))
}

// unknownField is the refusal of a member t does not have, with the
// documented spelling when only the case differs.
func unknownField(full, name, path string, fields map[string]reflect.Type) error {
	for f := range fields {
		if strings.EqualFold(f, name) {
			want := f
			if path != "" {
				want = path + "." + f
			}
			return badRequest(fmt.Sprintf("invalid request body: unknown field %q (field names are case-sensitive: %q)", full, want))
		}
	}
	return badRequest(fmt.Sprintf("invalid request body: unknown field %q", full))
}

// fieldName names a value in messages: its path, or the body itself.
func fieldName(path string) string {
	if path == "" {
		return "request body"
	}
	return path
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkedType returns the type whose shape a value is checked against:
// pointers are followed, and types that decode themselves
// (json.RawMessage, api.IPList) or take anything (interfaces) give nil.
func checkedType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() == reflect.Interface || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	return t
}

// fieldCache holds structFields per type.
var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// structFields returns the JSON member names of struct t as encoding/json
// spells them (tag name, else the Go name; embedded structs' fields
// promoted unless the outer struct has the name) with their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	promoted := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range structFields(ft) {
					promoted[k] = v
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	for k, v := range promoted {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	fieldCache.Store(t, out)
	return out
}

// requiredCache holds requiredFields per type.
var requiredCache sync.Map // reflect.Type → []string

// requiredFields returns the JSON names of struct t's fields tagged
// required:"true" (see registrar/api): members a body must send, and not
// as null, because their zero value is a valid answer that an absent
// member would silently become (a status report without "healthy" would
// be recorded as unhealthy).
func requiredFields(t reflect.Type) []string {
	if r, ok := requiredCache.Load(t); ok {
		return r.([]string)
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("required") != "true" {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	requiredCache.Store(t, out)
	return out
}

func isInteger(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// inIntegerRange reports whether a JSON number literal, if it is an
// integer, lies in -2^63..maxInteger. Fractions and exponents are left to
// the decoder, which refuses them for integer fields.
func inIntegerRange(lit string) bool {
	if strings.ContainsAny(lit, ".eE") {
		return true
	}
	_, err := strconv.ParseInt(lit, 10, 64)
	return err == nil
}

// outOfRange is the one refusal of an integer (id, page, count) beyond
// what the registrar stores, wherever it is given.
func outOfRange(field, lit string) error {
	return invalid(field, "%s is out of range (at most %d)", truncate(lit, 40), int64(maxInteger))
}

// validJSONString reports whether raw — a JSON string literal, possibly
// preceded by white space, ':' or ',' — is valid UTF-8 and its \u escapes
// pair their surrogates.
func validJSONString(raw []byte) bool {
	if i := bytes.IndexByte(raw, '"'); i >= 0 {
		raw = raw[i:]
	}
	if !utf8.Valid(raw) {
		return false
	}
	highPending := false // the previous escape was a high surrogate
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' || i+1 >= len(raw) {
			if highPending {
				return false
			}
			continue
		}
		if raw[i+1] != 'u' || i+6 > len(raw) {
			if highPending {
				return false
			}
			i++ // skip the escaped character
			continue
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		if err != nil {
			return false
		}
		r := rune(v)
		switch {
		case highPending:
			if utf16.DecodeRune(0xd800, r) == utf8.RuneError {
				return false
			}
			highPending = false
		case r >= 0xd800 && r < 0xdc00:
			highPending = true
		case r >= 0xdc00 && r < 0xe000:
			return false
		}
		i += 5
	}
	return !highPending
}

// mergePatch applies the JSON merge patch patch to the JSON document
// target (RFC 7396): members of patch replace those of target, objects
// merge member by member, null removes a member, anything else (arrays
// included) replaces whole. Numbers keep their digits.
func mergePatch(target, patch []byte) ([]byte, error) {
	var t, p any
	for _, d := range []struct {
		data []byte
		v    *any
	}{{target, &t}, {patch, &p}} {
		dec := json.NewDecoder(bytes.NewReader(d.data))
		dec.UseNumber()
		if err := dec.Decode(d.v); err != nil {
			return nil, fmt.Errorf("merge patch: %w", err)
		}
	}
	out, err := json.Marshal(mergeValue(t, p))
	if err != nil {
		return nil, fmt.Errorf("merge patch: %w", err)
	}
	return out, nil
}

func mergeValue(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergeValue(tm[k], v)
	}
	return tm
}

// nullMembers returns the names of the members of the JSON object data
// whose value is null: in a merge patch, the fields to clear.
func nullMembers(data []byte) (map[string]bool, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, fmt.Errorf("null members: %w", err)
	}
	out := map[string]bool{}
	for k, v := range members {
		if string(v) == "null" {
			out[k] = true
		}
	}
	return out, nil
}

// describeJSONError turns encoding/json errors into messages that name the
// field and say what was expected.
func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid request body: malformed JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return fmt.Sprintf("invalid request body: expected %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("invalid %s: expected %s, got %s", field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "invalid request body: truncated JSON"
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return "invalid request body: unknown field " + f
	}
	return "invalid request body: " + strings.TrimPrefix(msg, "json: ")
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "uint64", "uint32", "uint", "uint16", "uint8":
		return "a non-negative integer"
	case "int64", "int32", "int", "int16", "int8":
		return "an integer"
	case "float64", "float32":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return kind
}
