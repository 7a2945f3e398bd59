package gridctl

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
)

// uploadProgress shows a publish's upload on standard error: a redrawn bar
// on a terminal, a few plain lines elsewhere (logs and pipes get no
// carriage returns or escape codes). It implements hubclient.Progress; the hub
// client serialises its calls.
type uploadProgress struct {
	w     io.Writer
	tty   bool
	label string
	now   func() time.Time

	started    bool
	start      time.Time
	lastDraw   time.Time
	blocks     int
	done       int
	total, cur int64
	step       int64 // plain mode: the last quarter reported
}

// barWidth is the progress bar's width in characters.
const barWidth = 30

// drawEvery throttles terminal redraws.
const drawEvery = 100 * time.Millisecond

func newUploadProgress(env Env, label string) *uploadProgress {
	p := &uploadProgress{w: env.Stderr, label: label, now: time.Now}
	if f, ok := env.Stderr.(*os.File); ok && env.Getenv("TERM") != "dumb" {
		p.tty = isatty.IsTerminal(f.Fd())
	}
	return p
}

// Start implements hubclient.Progress.
func (p *uploadProgress) Start(blocks, all int, bytes int64) {
	p.started, p.start = true, p.now()
	p.blocks, p.total, p.done, p.cur, p.step = blocks, bytes, 0, 0, 0
	if blocks == 0 {
		fmt.Fprintf(p.w, "%s: all %d blocks already on the hub\n", p.label, all)
		p.started = false
		return
	}
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %d of %d blocks to upload (%s), the rest already on the hub\n", p.label, blocks, all, fmtBytes(uint64(bytes)))
		return
	}
	p.draw()
}

// Add implements hubclient.Progress.
func (p *uploadProgress) Add(n int64) {
	p.done++
	p.cur += n
	if p.tty {
		if p.now().Sub(p.lastDraw) >= drawEvery || p.done == p.blocks {
			p.draw()
		}
		return
	}
	// Plain mode: one line per quarter.
	if p.total > 0 {
		if q := p.cur * 4 / p.total; q > p.step && q < 4 {
			p.step = q
			fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.label, q*25, fmtBytes(uint64(p.cur)), fmtBytes(uint64(p.total)))
		}
	}
}

// finish ends the display: the bar's line is closed, and a summary line
// written in plain mode.
func (p *uploadProgress) finish(ok bool) {
	if !p.started {
		return
	}
	p.started = false
	if p.tty {
		p.draw()
		fmt.Fprintln(p.w)
		return
	}
	if ok {
		fmt.Fprintf(p.w, "%s: done, %d blocks (%s) in %s\n", p.label, p.done, fmtBytes(uint64(p.cur)), p.now().Sub(p.start).Round(100*time.Millisecond))
	}
}

// draw redraws the bar in place.
func (p *uploadProgress) draw() {
	p.lastDraw = p.now()
	frac := 1.0
	if p.total > 0 {
		frac = float64(p.cur) / float64(p.total)
	}
	filled := int(frac * barWidth)
	bar := strings.Repeat("=", filled)
	if filled < barWidth {
		bar += ">" + strings.Repeat(" ", barWidth-filled-1)
	}
	rate := ""
	if el := p.now().Sub(p.start).Seconds(); el > 0.5 {
		rate = fmt.Sprintf("  %s/s", fmtBytes(uint64(float64(p.cur)/el)))
	}
	// \r returns to the line start, \x1b[K clears what a longer previous
	// line left.
	fmt.Fprintf(p.w, "\r%s [%s] %3d%%  %s / %s  %d/%d blocks%s\x1b[K", p.label, bar, int(frac*100), fmtBytes(uint64(p.cur)), fmtBytes(uint64(p.total)), p.done, p.blocks, rate)
}
