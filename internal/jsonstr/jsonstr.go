// Package jsonstr appends Go strings as JSON string literals, byte for
// byte as one of the standard library's encoders writes them. It serves
// the hand-written encoders of hot paths (the registrar's node lists, the
// fast access-log handler), which must write what encoding/json or
// log/slog would while skipping their reflection; the two encoders differ
// in a few escapes, so each has its function.
package jsonstr

import "unicode/utf8"

// AppendMarshal appends s as json.Marshal writes a string by default:
// '"' and '\' escaped by a backslash; \b, \f, \n, \r and \t; other
// control characters and the HTML characters '<', '>' and '&' as \u00XX;
// U+2028 and U+2029 escaped; invalid UTF-8 replaced by \ufffd.
func AppendMarshal(b []byte, s string) []byte {
	return appendString(b, s, true)
}

// AppendSlog appends s as log/slog's JSONHandler writes a string: as
// AppendMarshal does, except that \b and \f are written \u0008 and \u000c
// and the HTML characters as they are.
func AppendSlog(b []byte, s string) []byte {
	return appendString(b, s, false)
}

const hexDigits = "0123456789abcdef"

// appendString is AppendMarshal (marshal true) or AppendSlog. Runs of
// bytes that need no escape are copied whole.
func appendString(b []byte, s string, marshal bool) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && !(marshal && (c == '<' || c == '>' || c == '&')) {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = appendASCIIEscape(b, c, marshal)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendASCIIEscape appends the escape of an ASCII byte that does not
// stand for itself.
func appendASCIIEscape(b []byte, c byte, marshal bool) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	case '\b':
		if marshal {
			return append(b, '\\', 'b')
		}
	case '\f':
		if marshal {
			return append(b, '\\', 'f')
		}
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
