// Package logflag is how grid4's programs are told to log: the value of
// their --log-level flag and the logger their --log-level and --log-format
// describe, so that every program reads the same words and writes the
// same records.
package logflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Level is a flag.Value for the lowest level logged: debug, info, warn or
// error, in any case. fs.Var((*logflag.Level)(&cfg.LogLevel), ...).
type Level slog.Level

// String writes the level in lower case, as --help shows it and as a
// child process is given it.
func (l *Level) String() string { return strings.ToLower(slog.Level(*l).String()) }

// Set parses s.
func (l *Level) Set(s string) error {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(s)); err != nil {
		return errors.New("want debug, info, warn or error")
	}
	*l = Level(lv)
	return nil
}

// Flags declares --log-level and --log-format on fs, bound to level and
// format; their defaults are the values they hold.
func Flags(fs *flag.FlagSet, level *slog.Level, format *string) {
	fs.Var((*Level)(level), "log-level", "debug, info, warn or error")
	fs.StringVar(format, "log-format", *format, "text or json")
}

// CheckFormat returns an error naming --log-format unless format is
// "text" or "json".
func CheckFormat(format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("--log-format %q: want text or json", format)
	}
	return nil
}

// New returns a logger writing records of level and above to w, as JSON
// lines when format is "json" and as text (key=value) otherwise: the
// records of slog's JSON and text handlers, written faster for the common
// flat ones (see fastHandler).
func New(w io.Writer, level slog.Level, format string) *slog.Logger {
	return slog.New(newFastHandler(w, &slog.HandlerOptions{Level: level}, format == "json"))
}
