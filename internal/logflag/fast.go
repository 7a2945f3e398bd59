package logflag

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/grid4/grid4/internal/jsonstr"
)

// fastHandler is the handler of New. A record whose attributes are all
// strings, integers, booleans and durations (a request log record) it
// writes itself, byte for byte as slog's text or JSON handler would; any
// other record, and every logger derived with With or WithGroup, goes to
// that handler. slog's handlers took about 2 µs per access record on the
// registrar, most of it spent deciding how to quote each value; this
// takes a fifth of that. fast_test.go compares both outputs.
type fastHandler struct {
	slow slog.Handler // slog's handler, writing to out
	out  *lockedWriter
	json bool
}

// lockedWriter serializes the writes of both paths of a fastHandler, as
// slog's handlers do theirs: a writer such as a bytes.Buffer is not safe
// for concurrent writes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func newFastHandler(w io.Writer, opts *slog.HandlerOptions, json bool) *fastHandler {
	out := &lockedWriter{w: w}
	h := &fastHandler{out: out, json: json}
	if json {
		h.slow = slog.NewJSONHandler(out, opts)
	} else {
		h.slow = slog.NewTextHandler(out, opts)
	}
	return h
}

// Enabled implements slog.Handler.
func (h *fastHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.slow.Enabled(ctx, l)
}

// WithAttrs implements slog.Handler: a derived logger uses slog's handler.
func (h *fastHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.slow.WithAttrs(as) }

// WithGroup implements slog.Handler: a derived logger uses slog's handler.
func (h *fastHandler) WithGroup(name string) slog.Handler { return h.slow.WithGroup(name) }

// recordBuffers are the buffers records are formatted in.
var recordBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Handle implements slog.Handler.
func (h *fastHandler) Handle(ctx context.Context, r slog.Record) error {
	if !flat(r) {
		return h.slow.Handle(ctx, r)
	}
	bp := recordBuffers.Get().(*[]byte)
	b := (*bp)[:0]
	if h.json {
		b = h.appendJSON(b, r)
	} else {
		b = h.appendText(b, r)
	}
	_, err := h.out.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		recordBuffers.Put(bp)
	}
	return err
}

// flat tells whether every attribute of r is one fastHandler writes: a
// non-empty key and a string, integer, boolean or duration value. A record
// time outside years 0 to 9999 (which slog's JSON handler reports as an
// error) is left to slog too.
func flat(r slog.Record) bool {
	if y := r.Time.Year(); !r.Time.IsZero() && (y < 0 || y > 9999) {
		return false
	}
	ok := true
	r.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindString, slog.KindInt64, slog.KindUint64, slog.KindBool, slog.KindDuration:
			ok = a.Key != ""
		default:
			ok = false
		}
		return ok
	})
	return ok
}

// appendTextTime writes t as the text handler does: RFC 3339 with exactly
// three digits of fraction, truncated. RFC3339Nano has a fast formatter
// but drops trailing zeros, so the time gets a tenth of a millisecond
// (four digits, always) and the fourth is cut.
func appendTextTime(b []byte, t time.Time) []byte {
	const prefix = len("2006-01-02T15:04:05.000")
	n := len(b)
	b = t.Truncate(time.Millisecond).Add(time.Millisecond/10).AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefix], b[n+prefix+1:]...)
}

// appendText writes r as slog's TextHandler does.
func (h *fastHandler) appendText(b []byte, r slog.Record) []byte {
	sep := ""
	if !r.Time.IsZero() {
		b = append(b, "time="...)
		b = appendTextTime(b, r.Time.Round(0))
		sep = " "
	}
	b = append(b, sep...)
	b = append(b, "level="...)
	b = appendTextString(b, r.Level.String())
	b = append(b, " msg="...)
	b = appendTextString(b, r.Message)
	b = h.appendAttrs(b, r)
	return append(b, '\n')
}

// appendJSON writes r as slog's JSONHandler does.
func (h *fastHandler) appendJSON(b []byte, r slog.Record) []byte {
	b = append(b, '{')
	if !r.Time.IsZero() {
		b = append(b, `"time":"`...)
		b = r.Time.Round(0).AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b = jsonstr.AppendSlog(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b = jsonstr.AppendSlog(b, r.Message)
	b = h.appendAttrs(b, r)
	return append(b, "}\n"...)
}

// appendAttrs writes the attributes of r, each after a separator, in the
// handler's format: ` key=value` (text) or `,"key":value` (JSON).
func (h *fastHandler) appendAttrs(b []byte, r slog.Record) []byte {
	sep, eq := byte(' '), byte('=')
	if h.json {
		sep, eq = ',', ':'
	}
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, sep)
		b = h.appendString(b, a.Key)
		b = append(b, eq)
		v := a.Value
		switch v.Kind() {
		case slog.KindString:
			b = h.appendString(b, v.String())
		case slog.KindInt64:
			b = strconv.AppendInt(b, v.Int64(), 10)
		case slog.KindUint64:
			b = strconv.AppendUint(b, v.Uint64(), 10)
		case slog.KindBool:
			b = strconv.AppendBool(b, v.Bool())
		case slog.KindDuration:
			if h.json {
				b = strconv.AppendInt(b, int64(v.Duration()), 10) // nanoseconds, as encoding/json
			} else {
				b = append(b, v.Duration().String()...)
			}
		}
		return true
	})
	return b
}

// appendString writes a key or string value in the handler's format.
func (h *fastHandler) appendString(b []byte, s string) []byte {
	if h.json {
		return jsonstr.AppendSlog(b, s)
	}
	return appendTextString(b, s)
}

// jsonSafe tells whether an ASCII byte stands for itself inside a JSON
// string: all but the control characters, '"' and '\'.
func jsonSafe(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf }

// appendTextString writes s as a text handler value or key: as it is
// when it is non-empty and holds no space, '=', '"', control character,
// invalid UTF-8 or non-printing rune, else Go-quoted.
func appendTextString(b []byte, s string) []byte {
	if !textNeedsQuoting(s) {
		return append(b, s...)
	}
	if !printableASCII(s) {
		return strconv.AppendQuote(b, s)
	}
	// What strconv.AppendQuote writes for printable ASCII, without its
	// rune by rune decoding: a space in a route makes this the common
	// case.
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', c)
			start = i + 1
		}
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// printableASCII tells whether s holds only the bytes 0x20 to 0x7e.
func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func textNeedsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != '\\' && (c == ' ' || c == '=' || !jsonSafe(c)) {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}
