// Package flagvalue holds the flag.Value types grid4's programs share, so
// that a duration or a size is written the same way to every one of them:
// "90d" and "1d12h" for durations (retention and schedules are counted in
// days, which time.ParseDuration does not know), "100MiB" and "1GB" for
// sizes.
package flagvalue

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
)

// day is the unit ParseDuration adds to time.ParseDuration's.
const day = 24 * time.Hour

// Duration is a flag.Value for a time.Duration written as ParseDuration
// reads it: fs.Var((*flagvalue.Duration)(&cfg.Retention), ...).
type Duration time.Duration

// String writes the duration as FormatDuration does.
func (d *Duration) String() string { return FormatDuration(time.Duration(*d)) }

// Set parses s with ParseDuration.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses a Go duration ("40m", "1h30m") with an optional
// leading day count: "90d", "1d12h".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("bad duration %q", s)
		}
		days, s = time.Duration(n)*day, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad duration %q (e.g. 40m, 1h30m, 90d)", s)
	}
	return days + v, nil
}

// FormatDuration writes a whole number of days as "<n>d" and any other
// duration as time.Duration does.
func FormatDuration(d time.Duration) string {
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// Size is a flag.Value for a byte count written as ParseSize reads it.
type Size uint64

// String writes the size as FormatSize does.
func (v *Size) String() string { return FormatSize(uint64(*v)) }

// Set parses s with ParseSize.
func (v *Size) Set(s string) error {
	n, err := ParseSize(s)
	if err != nil {
		return err
	}
	*v = Size(n)
	return nil
}

// ParseSize reads a byte count with an optional unit, binary or decimal,
// in any case and with or without "B": "100MiB", "1GB", "16G", "1.5 GiB",
// "4096".
func ParseSize(s string) (uint64, error) {
	n, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("want a size such as 100MiB, 1GB or 4096")
	}
	return n, nil
}

// binaryUnits are the units FormatSize writes, largest first.
func binaryUnits() []struct {
	suffix string
	mult   uint64
} {
	return []struct {
		suffix string
		mult   uint64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
}

// FormatSize writes n in the largest binary unit that divides it
// ("100MiB"), or as a plain number of bytes.
func FormatSize(n uint64) string {
	for _, u := range binaryUnits() {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatUint(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}
