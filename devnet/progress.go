package devnet

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Progress shows what a command does, a line per component: on a
// terminal a spinner turns on the line while the component starts, and
// the line is rewritten with the outcome; elsewhere (logs, pipes) only
// the outcome lines are written, without escape codes.
type Progress struct {
	w   io.Writer
	tty bool
	now func() time.Time
}

// NewProgress writes progress to w; tty draws spinners.
func NewProgress(w io.Writer, tty bool) *Progress {
	if w == nil {
		w = io.Discard
	}
	return &Progress{w: w, tty: tty, now: time.Now}
}

// spinFrames are the spinner's frames.
var spinFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// Step shows component while do runs, then its outcome: do's summary,
// or its error. A failure is returned as "<component>: <error> (log:
// <log>)" when the component has a log.
func (p *Progress) Step(component, doing, log string, do func() (string, error)) error {
	start := p.now()
	var stop func()
	if p.tty {
		stop = p.spin(component, doing)
	}
	summary, err := do()
	if stop != nil {
		stop()
	}
	took := p.now().Sub(start).Round(100 * time.Millisecond)
	mark, clear := "", ""
	if p.tty {
		mark, clear = "✓ ", "\r\x1b[K"
	}
	if err != nil {
		if log != "" {
			err = fmt.Errorf("%s: %w (log: %s)", component, err, log)
		} else {
			err = fmt.Errorf("%s: %w", component, err)
		}
		if p.tty {
			mark = "✗ "
		}
		fmt.Fprintf(p.w, "%s%s%-10s FAILED: %v\n", clear, mark, component, err)
		return err
	}
	fmt.Fprintf(p.w, "%s%s%-10s %s (%s)\n", clear, mark, component, summary, took)
	return nil
}

// spin redraws the component's line until the returned function is
// called.
func (p *Progress) spin(component, doing string) func() {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			fmt.Fprintf(p.w, "\r%s %-10s %s\x1b[K", spinFrames[i%len(spinFrames)], component, doing)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
