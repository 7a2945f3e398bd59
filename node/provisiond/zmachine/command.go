package zmachine

import (
	"errors"
	"strings"
)

// SplitCommand splits a workload's entrypoint into arguments as a POSIX
// shell splits words, without expansions: blanks separate words, 'single
// quotes' keep everything literally, "double quotes" keep everything but
// a backslash before one of " \ $ ` (which it escapes), and a backslash
// outside quotes escapes the next character. So `sh -c 'echo "hi"; sleep
// 1'` is three arguments. An unterminated quote or a trailing backslash
// is an error, and so is a command with no word.
func SplitCommand(s string) ([]string, error) {
	var (
		args   []string
		word   strings.Builder
		inWord bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, word.String())
				word.Reset()
				inWord = false
			}
		case c == '\\':
			if i+1 == len(s) {
				return nil, errors.New("a backslash ends the command")
			}
			i++
			word.WriteByte(s[i])
			inWord = true
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated single quote")
			}
			word.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			j, err := doubleQuoted(s, i+1, &word)
			if err != nil {
				return nil, err
			}
			i = j
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, word.String())
	}
	if len(args) == 0 {
		return nil, errors.New("no command")
	}
	return args, nil
}

// doubleQuoted copies the double-quoted text starting at s[i] into w and
// returns the index of the closing quote.
func doubleQuoted(s string, i int, w *strings.Builder) (int, error) {
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return i, nil
		case '\\':
			if i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
				i++
			}
			w.WriteByte(s[i])
		default:
			w.WriteByte(c)
		}
	}
	return 0, errors.New("unterminated double quote")
}
