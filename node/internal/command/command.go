// Package command runs the host tools the type managers drive (ip, mount,
// mkfs.ext4, losetup, ...) and turns their failures into errors that carry
// the tool's own message.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNotFound is wrapped when the tool is not installed.
var ErrNotFound = errors.New("not found in PATH")

// Runner runs a command and returns its standard output. Managers take
// one so tests can record commands; Exec is the real one.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (string, error)
}

// Exec runs commands on the host.
type Exec struct{}

// Run runs name with args. A failure's error reads
// "<name> <args>: <stderr or exit status>".
func (Exec) Run(ctx context.Context, name string, args ...string) (string, error) {
	if _, err := exec.LookPath(name); err != nil {
		return "", fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctx.Err())
		}
		return "", fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return stdout.String(), nil
}

// Available reports whether every tool is in PATH, naming the first
// missing one.
func Available(tools ...string) (missing string, ok bool) {
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return t, false
		}
	}
	return "", true
}
