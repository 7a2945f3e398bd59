// Package lastline keeps the last line a child process printed while
// forwarding all of its output: a process that fails prints why last, and
// that line is what a supervisor records as the reason.
package lastline

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxPartial bounds the unterminated tail kept between writes, so a child
// that never prints a newline cannot grow it without end.
const maxPartial = 4096

// maxLast bounds the line Last returns (it goes into records and errors).
const maxLast = 300

// Writer forwards everything to W and remembers the last non-blank line.
// It is safe for concurrent use (stdout and stderr may share it).
type Writer struct {
	// W receives every byte written.
	W io.Writer

	mu      sync.Mutex
	partial []byte // after the last newline
	line    string // the last complete non-blank line
}

// Write forwards p to W after noting its lines.
func (t *Writer) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.partial = append(t.partial, p...)
	if i := bytes.LastIndexByte(t.partial, '\n'); i >= 0 {
		lines := strings.Split(string(t.partial[:i]), "\n")
		for j := len(lines) - 1; j >= 0; j-- {
			if l := strings.TrimSpace(lines[j]); l != "" {
				t.line = l
				break
			}
		}
		t.partial = append(t.partial[:0], t.partial[i+1:]...)
	}
	if len(t.partial) > maxPartial {
		t.partial = t.partial[len(t.partial)-maxPartial:]
	}
	t.mu.Unlock()
	return t.W.Write(p)
}

// Last returns the text after the last newline if it is not blank (a
// process killed mid-line), else the last complete non-blank line; at
// most 300 bytes of it, cut on a rune boundary.
func (t *Writer) Last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := strings.TrimSpace(string(t.partial))
	if l == "" {
		l = t.line
	}
	if len(l) > maxLast {
		cut := maxLast
		for cut > 0 && !utf8.RuneStart(l[cut]) {
			cut--
		}
		l = l[:cut] + "…"
	}
	return l
}
