package flagvalue

import (
	"flag"
	"io"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"40m": 40 * time.Minute, "90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "1d12h": 36 * time.Hour,
		"1.5h": 90 * time.Minute, "500ms": 500 * time.Millisecond, " 2s ": 2 * time.Second,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %s, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "d", "xd", "5", "1d2", "-d", "x", "1dx"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) accepted", in)
		}
	}
	for d, want := range map[time.Duration]string{90 * 24 * time.Hour: "90d", 36 * time.Hour: "36h0m0s", 0: "0s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]uint64{
		"100MiB": 100 << 20, "1GB": 1e9, "4096": 4096, "2 kib": 2048, "0": 0, "16G": 16e9, "1.5GiB": 3 << 29,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v %v", in, got, err)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "99999999999TiB", "lots"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
	if FormatSize(100<<20) != "100MiB" || FormatSize(1000) != "1000" || FormatSize(3<<40) != "3TiB" {
		t.Errorf("FormatSize: %s %s", FormatSize(100<<20), FormatSize(1000))
	}
}

func TestValues(t *testing.T) {
	var d time.Duration
	var n uint64
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var((*Duration)(&d), "retention", "")
	fs.Var((*Size)(&n), "min-free", "")
	if err := fs.Parse([]string{"--retention", "30d", "--min-free", "1MiB"}); err != nil {
		t.Fatal(err)
	}
	if d != 30*24*time.Hour || n != 1<<20 {
		t.Fatalf("retention %s min-free %d", d, n)
	}
	if err := fs.Parse([]string{"--retention", "soon"}); err == nil {
		t.Fatal("accepted --retention soon")
	}
}
