package explorer

import (
	"strconv"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// uptimeChart is a node's uptime per day over a span of days, drawn by
// node.html as an inline SVG bar chart.
type uptimeChart struct {
	Days  int
	Bars  []uptimeBar
	Width int // of the SVG's view box
	// Up is the share of the whole span the node was up, in percent.
	Up string
	// Sessions counts the boot sessions in the span.
	Sessions int
}

// uptimeBar is one day of the chart.
type uptimeBar struct {
	Day      time.Time
	X, Y, H  int
	Fraction float64 // up, 0..1
	Label    string  // the bar's tooltip
	Class    string  // up, partial, down
}

// Geometry of the chart, in view box units.
const (
	chartBarWidth = 20
	chartHeight   = 100
)

// newUptimeChart sums the sessions (boot to last report) over the days
// ending with now's, day by day in UTC. A day counts from its start (or
// the node's registration) to its end (or now).
func newUptimeChart(sessions []api.UptimeSession, days int, now, registered time.Time) uptimeChart {
	now = now.UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	c := uptimeChart{Days: days, Width: days * chartBarWidth, Sessions: len(sessions)}
	var upAll, spanAll time.Duration
	for i := range days {
		start := today.AddDate(0, 0, i-days+1)
		end := earliest(start.AddDate(0, 0, 1), now)
		from := latest(start, registered)
		var up time.Duration
		for _, s := range sessions {
			a, b := latest(s.BootTime, from), earliest(s.LastReport, end)
			if b.After(a) {
				up += b.Sub(a)
			}
		}
		span := max(end.Sub(from), 0)
		up = min(up, span)
		upAll += up
		spanAll += span
		bar := uptimeBar{Day: start, X: i * chartBarWidth}
		switch {
		case span <= 0:
			bar.Label, bar.Class = start.Format("2006-01-02")+": not registered yet", "none"
		default:
			bar.Fraction = float64(up) / float64(span)
			bar.Label = start.Format("2006-01-02") + ": up " + strconv.FormatFloat(100*bar.Fraction, 'f', 1, 64) + "%"
			bar.Class = "partial"
			if bar.Fraction >= 0.999 {
				bar.Class = "up"
			} else if bar.Fraction == 0 {
				bar.Class = "down"
			}
		}
		bar.H = max(int(bar.Fraction*chartHeight+0.5), 1)
		if bar.Class == "none" {
			bar.H = 0
		}
		bar.Y = chartHeight - bar.H
		c.Bars = append(c.Bars, bar)
	}
	if spanAll > 0 {
		c.Up = strconv.FormatFloat(100*float64(upAll)/float64(spanAll), 'f', 2, 64) + "%"
	}
	return c
}

func earliest(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
