package flist

import "fmt"

// MaxNameLength bounds publisher, repository, flist, tag and link names.
const MaxNameLength = 128

// ValidName checks a publisher, repository, flist, tag, link or tag entry
// name: 1 to MaxNameLength characters from A-Z a-z 0-9 . _ + -, starting
// with a letter or digit. Names are used as single path components (on the
// hub's disk, in URLs, and as directory names of a materialised release), so
// they can contain no slash and cannot be "." or "..".
func ValidName(s string) error {
	if s == "" || len(s) > MaxNameLength {
		return fmt.Errorf("%w: name %q: want 1 to %d characters", ErrInvalid, truncate(s), MaxNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if i == 0 && !alnum || !alnum && c != '.' && c != '_' && c != '+' && c != '-' {
			return fmt.Errorf("%w: name %q: use letters, digits, '.', '_', '+' and '-', starting with a letter or digit", ErrInvalid, truncate(s))
		}
	}
	return nil
}
