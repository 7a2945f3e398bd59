package logflag

import (
	"bytes"
	"flag"
	"log/slog"
	"strings"
	"testing"
)

func TestLevel(t *testing.T) {
	var l Level
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if err := l.Set(in); err != nil || slog.Level(l) != want {
			t.Errorf("Set(%q): %v, %v", in, slog.Level(l), err)
		}
	}
	if err := l.Set("loud"); err == nil || err.Error() != "want debug, info, warn or error" {
		t.Errorf("Set(loud): %v", err)
	}
	l = Level(slog.LevelWarn)
	if l.String() != "warn" {
		t.Errorf("String: %q", l.String())
	}
}

func TestNew(t *testing.T) {
	var text, js bytes.Buffer
	New(&text, slog.LevelWarn, "text").Info("hidden")
	New(&text, slog.LevelWarn, "text").Warn("shown", "k", 1)
	New(&js, slog.LevelInfo, "json").Info("shown")
	if strings.Contains(text.String(), "hidden") || !strings.Contains(text.String(), "msg=shown k=1") {
		t.Errorf("text: %q", text.String())
	}
	if !strings.HasPrefix(js.String(), `{"time":`) || !strings.Contains(js.String(), `"msg":"shown"`) {
		t.Errorf("json: %q", js.String())
	}
}

func TestFlags(t *testing.T) {
	level, format := slog.LevelInfo, "text"
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	Flags(fs, &level, &format)
	if err := fs.Parse([]string{"--log-level", "warn", "--log-format", "json"}); err != nil {
		t.Fatal(err)
	}
	if level != slog.LevelWarn || format != "json" {
		t.Errorf("got %v %q", level, format)
	}
	if def := fs.Lookup("log-format").DefValue; def != "text" {
		t.Errorf("--log-format default %q", def)
	}
	for _, f := range []string{"text", "json"} {
		if err := CheckFormat(f); err != nil {
			t.Errorf("CheckFormat(%q): %v", f, err)
		}
	}
	if err := CheckFormat("xml"); err == nil || err.Error() != `--log-format "xml": want text or json` {
		t.Errorf("CheckFormat(xml): %v", err)
	}
}
