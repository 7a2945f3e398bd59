package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestIPListJoinedForm(t *testing.T) {
	for in, want := range map[string][]string{
		// The public node client's fallback: strings.Join(ips, "/").
		`"10.1.2.3/24/fe80::1/64"`:           {"10.1.2.3/24", "fe80::1/64"},
		`"10.0.0.2/fe80::1"`:                 {"10.0.0.2", "fe80::1"},
		`"10.1.2.4/2001:db8::4/48/10.9.9.9"`: {"10.1.2.4", "2001:db8::4/48", "10.9.9.9"},
		`"10.0.0.1/24"`:                      {"10.0.0.1/24"},
		`"fe80::1%eth0/64/::1/128"`:          {"fe80::1%eth0/64", "::1/128"},
		`" 10.0.0.1 / 24 /"`:                 {"10.0.0.1/24"},
		`""`:                                 nil,
		`"//"`:                               nil,
		// A prefix length with no address before it, or two in a row:
		// kept as parts, for validation to refuse.
		`"24/10.0.0.1"`:    {"24", "10.0.0.1"},
		`"10.0.0.1/24/16"`: {"10.0.0.1/24", "16"},
		`"8/16"`:           {"8", "16"},
		// The array form is taken as is.
		`["10.0.0.1/24","fe80::1/64"]`: {"10.0.0.1/24", "fe80::1/64"},
		`[]`:                           {},
	} {
		var l IPList
		if err := json.Unmarshal([]byte(in), &l); err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if !slices.Equal([]string(l), want) || (l == nil) != (want == nil) {
			t.Errorf("%s: got %q, want %q", in, l, want)
		}
	}
	var l IPList
	if err := json.Unmarshal([]byte(`{"ips":1}`), &l); err == nil {
		t.Error("an object was taken as addresses")
	}
}

// FuzzIPListJoined: any "/"-joined string splits without panicking into
// parts that, joined again, give the input without its empty parts and
// white space; every part holds at most one '/', followed by digits.
func FuzzIPListJoined(f *testing.F) {
	for _, s := range []string{"10.1.2.3/24/fe80::1/64", "10.0.0.2/fe80::1", "24/10.0.0.1", "a//b/", " 1 / 2 ", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			t.Skip() // json.Marshal would replace the invalid bytes
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var l IPList
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		var want []string
		for _, p := range strings.Split(s, "/") {
			if p = strings.TrimSpace(p); p != "" {
				want = append(want, p)
			}
		}
		if got := strings.Join(l, "/"); got != strings.Join(want, "/") {
			t.Fatalf("%q: parts %q join to %q", s, l, got)
		}
		for _, p := range l {
			if addr, prefix, ok := strings.Cut(p, "/"); ok && (addr == "" || !isDigits(prefix) || isDigits(addr)) {
				t.Fatalf("%q: part %q", s, p)
			}
		}
	})
}
