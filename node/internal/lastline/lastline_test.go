package lastline

import (
	"bytes"
	"strings"
	"testing"
)

func TestLast(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"nothing", nil, ""},
		{"one line", []string{"hello\n"}, "hello"},
		{"last of several", []string{"a\nb\n", "c\n"}, "c"},
		{"blank lines skipped", []string{"error: disk full\n\n  \n"}, "error: disk full"},
		{"split across writes", []string{"err", "or: x\n"}, "error: x"},
		{"unterminated tail wins", []string{"a\n", "killed mid"}, "killed mid"},
		{"blank tail ignored", []string{"a\n", "   "}, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			w := &Writer{W: &out}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("Write(%q) = %d, %v", s, n, err)
				}
			}
			if got := w.Last(); got != tc.want {
				t.Errorf("Last() = %q, want %q", got, tc.want)
			}
			if out.String() != strings.Join(tc.writes, "") {
				t.Errorf("forwarded %q", out.String())
			}
		})
	}
}

func TestLastBounded(t *testing.T) {
	w := &Writer{W: &bytes.Buffer{}}
	w.Write([]byte(strings.Repeat("é", 10000))) // no newline: the kept tail is bounded
	if len(w.partial) > maxPartial {
		t.Fatalf("kept %d bytes", len(w.partial))
	}
	l := w.Last()
	if !strings.HasSuffix(l, "…") || len(l) > maxLast+len("…") {
		t.Fatalf("Last() = %d bytes", len(l))
	}
	if r := strings.TrimSuffix(l, "…"); !utf8Valid(r) {
		t.Fatalf("cut inside a rune: %q", r[len(r)-4:])
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }
