package jsonstr

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
)

// samples hold every kind of byte and rune the two styles treat apart.
var samples = []string{
	"",
	"plain ascii",
	"<a href=\"x\">&amp;</a>\\\b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xfe 😀",
	"Zürich\u00a0",
	"\xe2\x80", // a truncated U+2028
	"ends in a quote\"",
}

// slogString returns what slog's JSONHandler writes for s as a message.
func slogString(t testing.TB, s string) []byte {
	var buf bytes.Buffer
	h := slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey || a.Key == slog.LevelKey {
			return slog.Attr{}
		}
		return a
	}})
	if err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelInfo, s, 0)); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	const prefix, suffix = `{"msg":`, "}\n"
	if !bytes.HasPrefix(out, []byte(prefix)) || !bytes.HasSuffix(out, []byte(suffix)) {
		t.Fatalf("slog wrote %q", out)
	}
	return out[len(prefix) : len(out)-len(suffix)]
}

// check compares both functions with the encoders they copy.
func check(t *testing.T, s string) {
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := AppendMarshal([]byte("x"), s); !bytes.Equal(got[1:], want) || got[0] != 'x' {
		t.Errorf("AppendMarshal(%q):\n got %s\nwant x%s", s, got, want)
	}
	want = slogString(t, s)
	if got := AppendSlog(nil, s); !bytes.Equal(got, want) {
		t.Errorf("AppendSlog(%q):\n got %s\nwant %s", s, got, want)
	}
}

func TestMatchesTheStandardEncoders(t *testing.T) {
	for _, s := range samples {
		check(t, s)
	}
	for c := range 128 {
		check(t, "a"+string(rune(c))+"b")
	}
}

func FuzzMatchesTheStandardEncoders(f *testing.F) {
	for _, s := range samples {
		f.Add(s)
	}
	f.Fuzz(check)
}
