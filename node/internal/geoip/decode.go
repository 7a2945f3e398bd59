package geoip

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/grid4/grid4/registrar/api"
)

// decode reads a geoip answer (see the package documentation for the
// accepted shapes) and returns the location it gives, validated.
func decode(body []byte) (api.Location, error) {
	// encoding/json would quietly turn invalid UTF-8 into U+FFFD; JSON must
	// be UTF-8 (RFC 8259), so such an answer is garbage, not a name.
	if !utf8.Valid(body) {
		return api.Location{}, fmt.Errorf("%w: not valid UTF-8", ErrBadAnswer)
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		return api.Location{}, fmt.Errorf("%w: not a JSON object", ErrBadAnswer)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return api.Location{}, fmt.Errorf("%w: not a JSON object (%s)", ErrBadAnswer, truncate(err.Error(), 120))
	}
	if failed, msg := serviceFailure(obj); failed {
		return api.Location{}, fmt.Errorf("%w: the service reports a failure: %q", ErrBadAnswer, msg)
	}

	var loc api.Location
	var err error
	if loc.Country, err = firstString(obj, "country_name", "country", "country_code", "countryCode"); err != nil {
		return api.Location{}, err
	}
	if loc.City, err = firstString(obj, "city", "city_name"); err != nil {
		return api.Location{}, err
	}
	lat, haveLat, err := firstNumber(obj, "latitude", "lat")
	if err != nil {
		return api.Location{}, err
	}
	lon, haveLon, err := firstNumber(obj, "longitude", "lon", "lng")
	if err != nil {
		return api.Location{}, err
	}
	if !haveLat && !haveLon {
		if lat, lon, haveLat, err = pair(obj, "loc"); err != nil {
			return api.Location{}, err
		}
		haveLon = haveLat
	}

	switch {
	case loc.Country == "":
		return api.Location{}, fmt.Errorf("%w: no country", ErrBadAnswer)
	case !haveLat || !haveLon:
		return api.Location{}, fmt.Errorf("%w: no coordinates", ErrBadAnswer)
	case lat == 0 && lon == 0:
		return api.Location{}, fmt.Errorf("%w: coordinates 0,0 (the service does not know)", ErrBadAnswer)
	}
	loc.Latitude = formatCoordinate(lat)
	loc.Longitude = formatCoordinate(lon)
	if err := Validate(loc); err != nil {
		return api.Location{}, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return loc, nil
}

// serviceFailure reports whether the answer marks itself as failed, in the
// ways public services do, and the message it gives: "status": "fail"
// (ip-api.com), "success": false (ipwho.is), "error": true with "reason"
// (ipapi.co), "error": {"message": ...} (ipinfo.io), "bogon": true
// (ipinfo.io, for private addresses).
func serviceFailure(obj map[string]json.RawMessage) (bool, string) {
	failed, msg := false, ""
	var status string
	if json.Unmarshal(obj["status"], &status) == nil {
		switch strings.ToLower(status) {
		case "fail", "failed", "failure", "error":
			failed = true
		}
	}
	// Each flag is decoded into a fresh variable: decoding null leaves
	// its target untouched.
	if success, ok := boolField(obj, "success"); ok && !success {
		failed = true
	}
	if bogon, ok := boolField(obj, "bogon"); ok && bogon {
		failed, msg = true, "private (bogon) address"
	}
	if raw, ok := obj["error"]; ok && !isNull(raw) {
		var text string
		var detail struct{ Title, Message string }
		if flag, ok := boolField(obj, "error"); ok {
			failed = failed || flag
		} else if json.Unmarshal(raw, &text) == nil {
			failed, msg = failed || text != "", text
		} else if json.Unmarshal(raw, &detail) == nil {
			failed, msg = true, strings.TrimSpace(detail.Title+" "+detail.Message)
		}
	}
	if !failed {
		return false, ""
	}
	for _, k := range []string{"message", "reason"} {
		var m string
		if json.Unmarshal(obj[k], &m) == nil && m != "" {
			msg = m
			break
		}
	}
	if msg == "" {
		msg = "no message"
	}
	return true, truncate(msg, 200)
}

// firstString returns the first of keys present with a non-empty value,
// trimmed. A present key whose value is not a string or null makes the
// answer bad: it is not the format this reads.
func firstString(obj map[string]json.RawMessage, keys ...string) (string, error) {
	for _, k := range keys {
		raw, ok := obj[k]
		if !ok || isNull(raw) {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: %s is not a string", ErrBadAnswer, k)
		}
		if s = strings.TrimSpace(s); s != "" {
			return s, nil
		}
	}
	return "", nil
}

// firstNumber returns the first of keys present, as a JSON number or a
// decimal string.
func firstNumber(obj map[string]json.RawMessage, keys ...string) (float64, bool, error) {
	for _, k := range keys {
		raw, ok := obj[k]
		if !ok || isNull(raw) {
			continue
		}
		text := string(raw)
		var s string
		if json.Unmarshal(raw, &s) == nil {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			text = s
		}
		v, err := parseCoordinate(text)
		if err != nil {
			return 0, false, fmt.Errorf("%w: %s: %w", ErrBadAnswer, k, err)
		}
		return v, true, nil
	}
	return 0, false, nil
}

// pair reads a "lat,long" string at key.
func pair(obj map[string]json.RawMessage, key string) (lat, lon float64, ok bool, err error) {
	raw, present := obj[key]
	if !present || isNull(raw) {
		return 0, 0, false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, 0, false, fmt.Errorf("%w: %s is not a string", ErrBadAnswer, key)
	}
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, false, fmt.Errorf("%w: %s %q is not \"lat,long\"", ErrBadAnswer, key, truncate(s, 40))
	}
	if lat, err = parseCoordinate(strings.TrimSpace(a)); err == nil {
		lon, err = parseCoordinate(strings.TrimSpace(b))
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %s: %w", ErrBadAnswer, key, err)
	}
	return lat, lon, true, nil
}

// boolField returns the boolean at key; ok is false when the key is
// absent, null or not a boolean.
func boolField(obj map[string]json.RawMessage, key string) (v, ok bool) {
	raw, present := obj[key]
	if !present || isNull(raw) {
		return false, false
	}
	if json.Unmarshal(raw, &v) != nil {
		return false, false
	}
	return v, true
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// parseCoordinate parses a finite decimal number written with digits, a
// point, a sign and an exponent only: what the registrar accepts.
// strconv.ParseFloat alone would also take "NaN", "Inf", hex floats and
// underscores.
func parseCoordinate(s string) (float64, error) {
	if len(s) > api.MaxCoordinateLen {
		return 0, fmt.Errorf("longer than %d characters", api.MaxCoordinateLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E') {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	return v, nil
}

// formatCoordinate writes a coordinate as a plain decimal, the shortest
// that reads back as the same float64.
func formatCoordinate(v float64) string {
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Validate checks a location as the registrar does: country at most 64 and
// city at most 128 characters of valid UTF-8 without control characters;
// latitude and longitude decimal numbers within -90..90 and -180..180,
// both or neither. Empty fields are allowed (unknown); Locate requires more
// of a geoip answer (see the package documentation).
func Validate(l api.Location) error {
	if err := checkText("country", l.Country, api.MaxCountryLen); err != nil {
		return err
	}
	if err := checkText("city", l.City, api.MaxCityLen); err != nil {
		return err
	}
	if (l.Latitude == "") != (l.Longitude == "") {
		return fmt.Errorf("latitude and longitude go together: got %q and %q", l.Latitude, l.Longitude)
	}
	if err := checkCoordinate("latitude", l.Latitude, 90); err != nil {
		return err
	}
	return checkCoordinate("longitude", l.Longitude, 180)
}

func checkText(field, s string, limit int) error {
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > limit {
		return fmt.Errorf("%s is %d characters, at most %d allowed", field, n, limit)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("%s contains a control character", field)
	}
	return nil
}

func checkCoordinate(field, s string, limit float64) error {
	if s == "" {
		return nil
	}
	v, err := parseCoordinate(s)
	if err != nil {
		return fmt.Errorf("%s: %w", field, err)
	}
	if v < -limit || v > limit {
		return fmt.Errorf("%s %s is outside -%g..%g", field, s, limit, limit)
	}
	return nil
}

// truncate shortens s to at most n bytes for a message, on a rune
// boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
