package explorer

import (
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxID is the largest id the stores hold (2^63-1).
const maxID = 1<<63 - 1

// maxText bounds a text parameter (country, version, search), in bytes.
const maxText = 128

// params reads a page's query parameters, keeping the first refusal.
type params struct {
	q   url.Values
	err error
}

// id reads an optional id: absent or empty is 0.
func (p *params) id(name string) uint64 {
	v := p.q.Get(name)
	if v == "" || p.err != nil {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 || n > maxID {
		p.err = badParam(name, "%q is not an id (1 to %d)", clip(v), uint64(maxID))
		return 0
	}
	return n
}

// number reads an optional number in [lo, hi]; absent is def.
func (p *params) number(name string, lo, hi, def uint64) uint64 {
	v := p.q.Get(name)
	if v == "" || p.err != nil {
		return def
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < lo || n > hi {
		p.err = badParam(name, "%q: want a number from %d to %d", clip(v), lo, hi)
		return def
	}
	return n
}

// boolean reads an optional true/false; absent or empty is nil.
func (p *params) boolean(name string) *bool {
	v := p.q.Get(name)
	if v == "" || p.err != nil {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.err = badParam(name, "%q: want true or false", clip(v))
		return nil
	}
	return &b
}

// text reads an optional text: at most maxText bytes of valid UTF-8
// without control characters.
func (p *params) text(name string) string {
	v := p.q.Get(name)
	if v == "" || p.err != nil {
		return ""
	}
	if len(v) > maxText || !utf8.ValidString(v) {
		p.err = badParam(name, "want at most %d bytes of UTF-8 text", maxText)
		return ""
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			p.err = badParam(name, "%q holds a control character", clip(v))
			return ""
		}
	}
	return v
}

// clip shortens a parameter quoted in a message.
func clip(s string) string {
	if len(s) <= 40 {
		return s
	}
	for i := 40; i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i] + "…"
		}
	}
	return ""
}
