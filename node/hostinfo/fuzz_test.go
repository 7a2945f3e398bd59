package hostinfo

import (
	"strings"
	"testing"
)

// FuzzParseCPUList: any input either fails or yields a count the list can
// hold.
func FuzzParseCPUList(f *testing.F) {
	for _, s := range []string{"0", "0-3,8-11", "0,2", "", "3-1", "0-65535", "1-2-3", "0,,1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCPUList(s)
		if err == nil && (n < 1 || n > maxCPUs) {
			t.Fatalf("parseCPUList(%q) = %d", s, n)
		}
	})
}

// FuzzDefaultRoute: the route parsers never panic and only ever return an
// interface name that appears in their input.
func FuzzDefaultRoute(f *testing.F) {
	f.Add("Iface\tDestination\nETH0\t00000000\t0101A8C0\t0003\t0\t0\t5\t00000000\t0\t0\t0\n")
	f.Add(strings.Repeat("0", 32) + " 00 " + strings.Repeat("0", 32) + " 00 " + strings.Repeat("0", 32) + " 00000400 00000001 00000000 00000003 wan0\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, parse := range []func([]byte) string{defaultRoute4, defaultRoute6} {
			if name := parse([]byte(s)); name != "" && !strings.Contains(s, name) {
				t.Fatalf("route parser returned %q, not in the input", name)
			}
		}
	})
}

// FuzzPlaceholderSerial: never panics on arbitrary bytes (the first rune
// of invalid UTF-8 is RuneError).
func FuzzPlaceholderSerial(f *testing.F) {
	for _, s := range []string{"", "0", "\xff", "To Be Filled By O.E.M.", "ABC"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_ = placeholderSerial(s)
	})
}
