package logflag

import (
	"bytes"
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
