package envflag

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func newFlags() (*flag.FlagSet, *string, *int) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("data-dir", "d", "where")
	n := fs.Int("count", 1, "how many")
	return fs, dir, n
}

func TestName(t *testing.T) {
	if got := Name("HUB_", "data-dir"); got != "HUB_DATA_DIR" {
		t.Fatal(got)
	}
}

func TestFlagWinsOverVariable(t *testing.T) {
	fs, dir, n := newFlags()
	env := map[string]string{"T_DATA_DIR": "from-env", "T_COUNT": "7"}
	if err := Parse(fs, []string{"--data-dir", "from-flag"}, "T_", func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if *dir != "from-flag" || *n != 7 {
		t.Fatalf("data-dir %q count %d", *dir, *n)
	}
}

func TestErrors(t *testing.T) {
	fs, _, _ := newFlags()
	err := Parse(fs, nil, "T_", func(k string) string { return map[string]string{"T_COUNT": "many"}[k] })
	var ee *Error
	if !errors.As(err, &ee) || ee.Var != "T_COUNT" || !strings.HasPrefix(err.Error(), `invalid value "many" for T_COUNT: `) {
		t.Fatalf("bad variable: %v", err)
	}
	fs, _, _ = newFlags()
	if err := Parse(fs, []string{"extra"}, "T_", nil); !errors.Is(err, ErrArgument) || err.Error() != `unexpected argument "extra"` {
		t.Fatalf("positional: %v", err)
	}
	fs, _, _ = newFlags()
	if err := Parse(fs, []string{"--help"}, "T_", nil); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("help: %v", err)
	}
	// A bad variable is not read when its flag is given.
	fs, _, _ = newFlags()
	if err := Parse(fs, []string{"--count", "2"}, "T_", func(k string) string { return map[string]string{"T_COUNT": "many"}[k] }); err != nil {
		t.Fatalf("a given flag's variable was read: %v", err)
	}
}

func TestPrintDefaults(t *testing.T) {
	fs, _, _ := newFlags()
	var out strings.Builder
	PrintDefaults(&out, fs, "T_", "data-dir")
	want := "Every flag can also be set with an environment variable T_<FLAG> (e.g. T_DATA_DIR); a flag wins.\n\nFlags:\n" +
		"  --count (env T_COUNT, default 1)\n      how many\n" +
		"  --data-dir (env T_DATA_DIR, default d)\n      where\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestProgramParse(t *testing.T) {
	p := Program{Prefix: "HUB_", Usage: "Usage: hub [flags]\n", Example: "data-dir"}
	fs, _, _ := newFlags()
	var out strings.Builder
	if err := p.Parse(fs, []string{"--help"}, nil, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	if s := out.String(); !strings.HasPrefix(s, "Usage: hub [flags]\nEvery flag") || !strings.Contains(s, "HUB_DATA_DIR") {
		t.Errorf("--help wrote %q", s)
	}
	fs, dir, _ := newFlags()
	if err := p.Parse(fs, nil, func(k string) string { return map[string]string{"HUB_DATA_DIR": "x"}[k] }, nil); err != nil || *dir != "x" {
		t.Errorf("from the environment: %q, %v", *dir, err)
	}
	fs, _, _ = newFlags()
	if err := p.Parse(fs, []string{"-h"}, nil, nil); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h with no output: %v", err)
	}
}
