package gridctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/spf13/cobra"

	"github.com/grid4/grid4/registrar/client"
)

// openPTY opens a pseudo-terminal pair (Linux), so that colour detection
// can be tested on a real terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Skipf("unlockpt: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Skipf("ptsname: %v", errno)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func TestColourOnlyOnATerminal(t *testing.T) {
	getenv := func(vars map[string]string) func(string) string { return func(k string) string { return vars[k] } }
	_, pts := openPTY(t)
	if !colourWanted(Env{Stdout: pts, Getenv: getenv(nil)}) {
		t.Error("no colour on a terminal")
	}
	if colourWanted(Env{Stdout: pts, Getenv: getenv(map[string]string{NoColorEnv: "1"})}) {
		t.Error("colour despite NO_COLOR")
	}
	if colourWanted(Env{Stdout: pts, Getenv: getenv(map[string]string{"TERM": "dumb"})}) {
		t.Error("colour on a dumb terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if colourWanted(Env{Stdout: w, Getenv: getenv(nil)}) {
		t.Error("colour on a pipe")
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if colourWanted(Env{Stdout: devNull, Getenv: getenv(nil)}) {
		t.Error("colour on /dev/null")
	}
	if colourWanted(Env{Stdout: &bytes.Buffer{}, Getenv: getenv(nil)}) {
		t.Error("colour on a buffer")
	}
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func TestTableAlignedWithColour(t *testing.T) {
	rows := func(p *printer) [][]string {
		return [][]string{
			{"1", "alpha", p.yesNo(true), "x"},
			{"12345", "b", p.yesNo(false), ""},
		}
	}
	var plain, coloured bytes.Buffer
	pp := &printer{w: &plain}
	pc := &printer{w: &coloured, colour: true}
	header := []string{"ID", "NAME", "OK", "NOTE"}
	if err := pp.table(append([]string(nil), header...), rows(pp)); err != nil {
		t.Fatal(err)
	}
	if err := pc.table(header, rows(pc)); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("escape codes without colour: %q", plain.String())
	}
	if !strings.Contains(coloured.String(), styleGreen+"yes") || !strings.Contains(coloured.String(), styleBold+"ID") {
		t.Errorf("no colour: %q", coloured.String())
	}
	stripped := ansi.ReplaceAllString(coloured.String(), "")
	// Same layout once the escapes are removed (trailing spaces aside).
	trim := func(s string) string {
		lines := strings.Split(s, "\n")
		for i := range lines {
			lines[i] = strings.TrimRight(lines[i], " ")
		}
		return strings.Join(lines, "\n")
	}
	if trim(stripped) != trim(plain.String()) {
		t.Errorf("colour changes the layout:\n%s\nvs\n%s", stripped, plain.String())
	}
	want := "ID     NAME   OK   NOTE\n1      alpha  yes  x\n12345  b      no\n"
	if trim(plain.String()) != want {
		t.Errorf("table:\n%q\nwant\n%q", plain.String(), want)
	}
}

func TestFormatting(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct{ got, want string }{
		{fmtAgo(now.Add(-5*time.Second), now), "5s ago"},
		{fmtAgo(now.Add(-5*time.Minute), now), "5m ago"},
		{fmtAgo(now.Add(-26*time.Hour-3*time.Minute), now), "26h03m ago"},
		{fmtAgo(now.Add(-72*time.Hour), now), "3d ago"},
		{fmtAgo(now.Add(time.Minute), now), "just now"},
		{fmtSeconds(59), "59s"},
		{fmtSeconds(3 * 3600), "3h0m0s"},
		{fmtSeconds(2*86400 + 3600), "2d1h"},
		{fmtSeconds(86400), "1d"},
		{fmtBytes(512), "512 B"},
		{fmtBytes(16 << 30), "16.0 GiB"},
		{fmtBytes(3 << 39), "1.5 TiB"},
		{fmtTime(time.Time{}), "-"},
		{fmtTime(now), "2025-03-01 12:00:00Z"},
		{dash(""), "-"},
		{joinIDs([]uint64{1, 2}), "1, 2"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2025, 3, 8, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"7d":                   now.Add(-7 * 24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2025-03-01":           time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		"2025-03-01T10:00:00Z": time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen("--since", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "7w", "99999999d"} {
		if _, err := parseWhen("--since", bad, now); err == nil {
			t.Errorf("parseWhen(%q): no error", bad)
		}
	}
}

func TestNetworkReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("x: %w", syscall.ECONNREFUSED), "connection refused"},
		{fmt.Errorf("x: %w", io.ErrUnexpectedEOF), "connection closed before an answer"},
		{errors.New("dial: something odd"), "something odd"},
	} {
		if got := networkReason(tc.err); got != tc.want {
			t.Errorf("networkReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestExplain(t *testing.T) {
	c, err := client.New("http://127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	s := &session{client: c, flags: &remoteFlags{timeout: time.Second}}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&client.APIError{Status: 409, Message: `a farm named "x" already exists`}, `registrar refused: a farm named "x" already exists (409)`},
		{&client.APIError{Status: 429, Message: "slow down"}, "registrar is rate limiting: slow down (429); try again later"},
		{&client.APIError{Status: 503, Message: "db down"}, "registrar failed: db down (503)"},
		{fmt.Errorf("%w at x: %w", client.ErrUnreachable, syscall.ECONNREFUSED), "cannot reach registrar at http://127.0.0.1:9: connection refused"},
		{fmt.Errorf("GET /x: %w", context.DeadlineExceeded), "registrar at http://127.0.0.1:9 did not answer within 1s (--timeout)"},
	} {
		got := s.explain(tc.err)
		if got.Error() != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("explain(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestEveryCommandHasExamples walks the whole command tree: docs/gridctl.md
// says every command has --help with examples, so each leaf command shows
// at least one line running it.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	leaves := 0
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.HasSubCommands() {
			for _, sub := range c.Commands() {
				walk(sub)
			}
			return
		}
		leaves++
		if !strings.Contains(c.Example, c.CommandPath()) {
			t.Errorf("%s --help has no example running it", c.CommandPath())
		}
	}
	walk(NewRootCommand(Env{}.withDefaults()))
	if leaves < 50 {
		t.Fatalf("walked %d commands", leaves)
	}
}
