package hostinfo

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxSerialLen is the longest serial number the registrar accepts.
const maxSerialLen = 128

// Serial returns the machine's serial number from DMI product_serial.
// Values firmware vendors leave in place of a serial are reported as
// missing, as is a value the registrar would refuse (too long, control
// characters). The file is readable by root only on most systems, so an
// unprivileged probe reports it as missing with "permission denied".
func (p *Prober) Serial() Fact[string] {
	s, err := p.readLine(serialPath)
	if err != nil {
		return unknown[string](serialPath, "%s", p.describe(serialPath, err))
	}
	if s == "" {
		return unknown[string](serialPath, "%s is empty", serialPath)
	}
	if placeholderSerial(s) {
		return unknown[string](serialPath, "%s holds the placeholder %q, not a serial number", serialPath, s)
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxSerialLen || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return unknown[string](serialPath, "%s holds %q, which is not a usable serial number", serialPath, s)
	}
	return known(s, serialPath)
}

// placeholderSerial reports whether s is one of the values firmware vendors
// ship instead of a serial number: empty, the BIOS template texts, or one
// character repeated ("0", "00000000", "XXXXXXXX", "........").
func placeholderSerial(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "to be filled by o.e.m.", "to be filled by oem", "default string",
		"system serial number", "not specified", "not available", "not applicable",
		"none", "n/a", "na", "oem", "o.e.m.", "unknown", "invalid", "empty",
		"chassis serial number", "serial", "serial number", "123456789", "0123456789", "1234567890":
		return true
	}
	first, _ := utf8.DecodeRuneInString(s)
	return strings.Trim(s, string(first)) == ""
}
