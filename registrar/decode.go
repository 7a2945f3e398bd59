package registrar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// decodeBody reads r's JSON body into dst strictly: one JSON value, no
// unknown fields (a misspelt field is refused rather than silently
// ignored), no trailing data. Bodies above the server's limit are refused
// with 413 (the limit is enforced by a MaxBytesReader installed by the
// server's middleware).
func decodeBody(r *http.Request, dst any) error {
	if r.Body == nil || r.Body == http.NoBody {
		return badRequest("request body is required (JSON)")
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newHTTPError(http.StatusRequestEntityTooLarge, "request body too large: limit is %d bytes", mbe.Limit)
		}
		return badRequest("reading request body: " + err.Error())
	}
	return decodeJSON(data, dst)
}

// decodeJSON decodes data into dst strictly (see decodeBody).
func decodeJSON(data []byte, dst any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("request body is required (JSON)")
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
			return fmt.Sprintf("invalid request body: expected a JSON %s, got %s", jsonKind(typ.Type.Kind().String()), typ.Value)
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
