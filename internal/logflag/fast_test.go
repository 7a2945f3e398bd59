package logflag

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogOutput is what slog's own handler writes for r.
func slogOutput(t testing.TB, r slog.Record, json bool) string {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler = slog.NewTextHandler(&buf, nil)
	if json {
		h = slog.NewJSONHandler(&buf, nil)
	}
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// fastOutput is what fastHandler writes for r.
func fastOutput(t testing.TB, r slog.Record, json bool) string {
	t.Helper()
	var buf bytes.Buffer
	if err := newFastHandler(&buf, nil, json).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// awkward are strings that test every quoting and escaping rule.
var awkward = []string{
	"", "plain", "with space", "a=b", `say "hi"`, `back\slash`, "tab\there", "new\nline", "cr\r",
	"\x00nul", "\x1fus", "\x7fdel", "é accent", "日本", "\u2028ls", "\u2029ps", "\ufffd literal",
	"bad \xff utf8", "\xc3", "nbsp\u00a0", "soft\u00adhyphen", "zw\u200bspace", "emoji 🙂", "<html>&",
	"/api/v1/nodes/12/uptime", "GET /zos/version", "127.0.0.1", "[::1]:80", "{\"json\":1}", "=",
	"ends with space ", "\u0085next line", "\u3000ideographic space",
}

func randString(rng *rand.Rand) string {
	if rng.IntN(3) > 0 {
		return awkward[rng.IntN(len(awkward))]
	}
	var sb strings.Builder
	for range rng.IntN(12) {
		switch rng.IntN(4) {
		case 0:
			sb.WriteByte(byte(rng.IntN(256))) // any byte, valid UTF-8 or not
		case 1:
			sb.WriteRune(rune(rng.IntN(0x3000)))
		default:
			sb.WriteByte(byte('a' + rng.IntN(26)))
		}
	}
	return sb.String()
}

func randFlatAttr(rng *rand.Rand) slog.Attr {
	key := randString(rng)
	if key == "" {
		key = "k"
	}
	switch rng.IntN(6) {
	case 0:
		return slog.Int64(key, rng.Int64()-math.MaxInt64/2)
	case 1:
		return slog.Uint64(key, rng.Uint64())
	case 2:
		return slog.Bool(key, rng.IntN(2) == 0)
	case 3:
		return slog.Duration(key, time.Duration(rng.Int64N(int64(48*time.Hour)))-time.Hour)
	case 4:
		return slog.Int(key, rng.IntN(600))
	default:
		return slog.String(key, randString(rng))
	}
}

var zones = []*time.Location{time.UTC, time.FixedZone("east", 5*3600+1800), time.FixedZone("west", -7*3600), time.Local}

func randRecord(rng *rand.Rand) slog.Record {
	var at time.Time
	if rng.IntN(10) > 0 {
		at = time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
		if rng.IntN(4) == 0 {
			at = at.Truncate(time.Millisecond) // fractions with trailing zeros
		}
	}
	levels := []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError, slog.LevelInfo + 2, slog.LevelDebug - 3}
	r := slog.NewRecord(at, levels[rng.IntN(len(levels))], randString(rng), 0)
	for range rng.IntN(10) {
		r.AddAttrs(randFlatAttr(rng))
	}
	return r
}

// TestFastHandlerWritesWhatSlogWrites compares both outputs over many
// random flat records (every kind, awkward strings, zones, levels).
func TestFastHandlerWritesWhatSlogWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		r := randRecord(rng)
		for _, json := range []bool{false, true} {
			if !flat(r) {
				t.Fatalf("record %d is not flat", i)
			}
			want, got := slogOutput(t, r, json), fastOutput(t, r, json)
			if got != want {
				t.Fatalf("record %d (json %v):\nslog: %q\nfast: %q", i, json, want, got)
			}
		}
	}
}

// FuzzFastHandler compares both outputs for a message, a key and a
// string value.
func FuzzFastHandler(f *testing.F) {
	for _, s := range awkward {
		f.Add(s, "key", s)
	}
	f.Fuzz(func(t *testing.T, msg, key, val string) {
		if key == "" {
			key = "k"
		}
		r := slog.NewRecord(time.Unix(1700000000, 123456789), slog.LevelInfo, msg, 0)
		r.AddAttrs(slog.String(key, val), slog.Int("n", len(val)))
		for _, json := range []bool{false, true} {
			if want, got := slogOutput(t, r, json), fastOutput(t, r, json); got != want {
				t.Fatalf("json %v:\nslog: %q\nfast: %q", json, want, got)
			}
		}
	})
}

// TestFastHandlerLeavesTheRestToSlog checks the records and loggers the
// fast path does not write: the output is still slog's.
func TestFastHandlerLeavesTheRestToSlog(t *testing.T) {
	at := time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC)
	records := map[string]slog.Record{}
	add := func(name string, as ...slog.Attr) {
		r := slog.NewRecord(at, slog.LevelWarn, "m", 0)
		r.AddAttrs(as...)
		records[name] = r
	}
	add("error", slog.Any("error", errors.New("boom")))
	add("float", slog.Float64("f", 0.1))
	add("time", slog.Time("t", at))
	add("group", slog.Group("g", slog.Int("a", 1)))
	add("empty key", slog.String("", "v"))
	add("struct", slog.Any("s", struct{ A int }{1}))
	records["year 10000"] = slog.NewRecord(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "m", 0)
	for name, r := range records {
		if name != "empty key" && name != "year 10000" && flat(r) {
			t.Errorf("%s: taken as flat", name)
		}
		for _, json := range []bool{false, true} {
			if want, got := slogOutput(t, r, json), fastOutput(t, r, json); got != want {
				t.Errorf("%s (json %v):\nslog: %q\nfast: %q", name, json, want, got)
			}
		}
	}
	// Derived loggers keep their attributes and groups.
	for _, format := range []string{"text", "json"} {
		var fast, ref bytes.Buffer
		New(&fast, slog.LevelInfo, format).With("a", 1).WithGroup("g").Info("m", "b", 2)
		var rh slog.Handler = slog.NewTextHandler(&ref, nil)
		if format == "json" {
			rh = slog.NewJSONHandler(&ref, nil)
		}
		slog.New(rh).With("a", 1).WithGroup("g").Info("m", "b", 2)
		cut := func(s string) string { return s[strings.Index(s, "level"):] } // times differ
		if cut(fast.String()) != cut(ref.String()) {
			t.Errorf("%s: derived logger wrote %q, slog %q", format, fast.String(), ref.String())
		}
	}
}

// TestFastHandlerConcurrentWrites has both paths write to one
// bytes.Buffer at once (run with -race): every record arrives whole.
func TestFastHandlerConcurrentWrites(t *testing.T) {
	var buf bytes.Buffer
	log := New(&buf, slog.LevelInfo, "text")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if i%2 == 0 {
					log.Info("fast", "g", g, "i", i)
				} else {
					log.Info("slow", "g", g, "err", errors.New("x"))
				}
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 1600 {
		t.Fatalf("%d lines, want 1600", len(lines))
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "time=") || strings.Count(l, "time=") != 1 {
			t.Fatalf("mangled line %q", l)
		}
	}
}

// BenchmarkAccessRecord is the registrar's access record through New's
// handler and through slog's own.
func BenchmarkAccessRecord(b *testing.B) {
	for _, format := range []string{"text", "json"} {
		for _, impl := range []string{"logflag", "slog"} {
			b.Run(fmt.Sprintf("%s/%s", format, impl), func(b *testing.B) {
				var w discard
				log := New(w, slog.LevelInfo, format)
				if impl == "slog" {
					var h slog.Handler = slog.NewTextHandler(w, nil)
					if format == "json" {
						h = slog.NewJSONHandler(w, nil)
					}
					log = slog.New(h)
				}
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					log.LogAttrs(ctx, slog.LevelInfo, "request",
						slog.String("method", "POST"), slog.String("path", "/api/v1/nodes/1234/uptime"),
						slog.String("route", "POST /nodes/{node_id}/uptime"), slog.Int("status", 201),
						slog.Int64("bytes", 81), slog.Duration("duration", 1234567),
						slog.String("remote", "127.0.0.1"), slog.Uint64("twin", 4321))
				}
			})
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
