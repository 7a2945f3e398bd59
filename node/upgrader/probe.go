package upgrader

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultProbeTimeout bounds a probe run.
const DefaultProbeTimeout = 30 * time.Second

// ExecProbe runs a generation's zos program (zos/bin/zosd) with Args
// before the switch: a binary built for another machine, truncated or
// crashing at start is refused while the node still runs the old
// generation.
type ExecProbe struct {
	// Args are the program's arguments (nil: "version").
	Args []string
	// Timeout bounds the run (DefaultProbeTimeout).
	Timeout time.Duration
}

// Probe runs the program and wants exit status 0.
func (p ExecProbe) Probe(ctx context.Context, dir string) error {
	args := p.Args
	if args == nil {
		args = []string{"version"}
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultProbeTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bin := filepath.Join(dir, ZosLink, filepath.FromSlash(ZosBinary))
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: no answer within %s", ZosBinary, strings.Join(args, " "), timeout)
		}
		return fmt.Errorf("%s %s: %w%s", ZosBinary, strings.Join(args, " "), err, lastLine(out.String()))
	}
	return nil
}

// lastLine returns ": <the last non-empty line of s>", or "".
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if l == "" {
		return ""
	}
	if len(l) > 200 {
		l = l[:200] + "…"
	}
	return ": " + l
}
