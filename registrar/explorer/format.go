package explorer

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/grid4/grid4/internal/flagvalue"
	"github.com/grid4/grid4/registrar/api"
)

// templateFuncs are the helpers the templates use.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"bytes":       formatBytes,
		"count":       formatCount,
		"percent":     percent,
		"ago":         ago,
		"when":        func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
		"day":         func(t time.Time) string { return t.UTC().Format("2006-01-02") },
		"dur":         flagvalue.FormatDuration,
		"query":       func(v url.Values) string { return v.Encode() },
		"sub":         func(a, b float64) float64 { return max(a-b, 0) },
		"float":       func(v uint64) float64 { return float64(v) },
		"capRow":      capRow,
		"versionLink": versionLink,
		"capOf":       capOf,
		"tristate": func(name, label, value string) struct{ Name, Label, Value string } {
			return struct{ Name, Label, Value string }{name, label, value}
		},
	}
}

// formatBytes writes a size in binary units, to three significant
// digits ("1.5 TiB").
func formatBytes(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	switch {
	case i == 0:
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " " + units[i]
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " " + units[i]
}

// formatCount writes a count with thousands separators (1,000,000).
func formatCount(v any) string {
	var n uint64
	switch x := v.(type) {
	case uint64:
		n = x
	case float64:
		n = uint64(math.Round(max(x, 0)))
	case int:
		n = uint64(max(x, 0))
	default:
		return fmt.Sprint(v)
	}
	s := strconv.FormatUint(n, 10)
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// percent is part of whole in percent, one decimal ("" when whole is 0).
func percent(part, whole float64) string {
	if whole <= 0 {
		return ""
	}
	return strconv.FormatFloat(100*part/whole, 'f', 1, 64) + "%"
}

// ago writes how long before now t was, coarsely ("3 min ago").
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%d s ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

// capacityRow is one resource of a capacity table.
type capacityRow struct {
	Name              string
	Total, Used, Free string
	Fraction          float64 // used, 0..1
	Share             string
}

// capRow makes a capacity table's row from the summed total and free
// figures; sizes in bytes when bytes is set.
func capRow(name string, total, free float64, bytes bool) capacityRow {
	used := max(total-free, 0)
	f := func(v float64) string { return formatCount(v) }
	if bytes {
		f = formatBytes
	}
	r := capacityRow{Name: name, Total: f(total), Used: f(used), Free: f(free), Share: percent(used, total)}
	if total > 0 {
		r.Fraction = used / total
	}
	return r
}

// versionLink is the node list of one version.
func versionLink(v string) string {
	return "/nodes?" + url.Values{"version": {v}}.Encode()
}

// capOf is the capacity table of one node's status report.
func capOf(st api.NodeStatus) []capacityRow {
	t, f := st.Total, st.Free
	return []capacityRow{
		capRow("CPU (logical cores)", float64(t.CRU), float64(f.CRU), false),
		capRow("Memory", float64(t.MRU), float64(f.MRU), true),
		capRow("SSD", float64(t.SRU), float64(f.SRU), true),
		capRow("HDD", float64(t.HRU), float64(f.HRU), true),
		capRow("Public IPv4", float64(t.IPv4), float64(f.IPv4), false),
	}
}
