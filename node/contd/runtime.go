package contd

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/grid4/grid4/node/internal/command"
)

// runtime drives the OCI runtime's command line; runc and crun take the
// same commands and flags for what contd does.
type runtime struct {
	bin  string
	root string // --root: the runtime's state of contd's containers
}

// runtimeState is what "runc state" prints (crun prints the same fields).
type runtimeState struct {
	Status  Status    `json:"status"`
	Pid     int       `json:"pid"`
	Created time.Time `json:"created"`
}

// exists reports whether the runtime has state for the container: both
// runtimes keep a directory per container under --root.
func (r runtime) exists(name string) bool {
	_, err := os.Stat(filepath.Join(r.root, name))
	return err == nil
}

// state returns the runtime's view of the container, the zero state when
// it has none.
func (r runtime) state(ctx context.Context, name string) (runtimeState, error) {
	if !r.exists(name) {
		return runtimeState{}, nil
	}
	out, err := r.output(ctx, "state", name)
	if err != nil {
		if !r.exists(name) { // removed meanwhile
			return runtimeState{}, nil
		}
		return runtimeState{}, err
	}
	var st runtimeState
	if err := json.Unmarshal(out, &st); err != nil {
		return runtimeState{}, fmt.Errorf("contd: %s state %s: %w", r.bin, name, err)
	}
	return st, nil
}

// do runs a runtime command whose output does not matter.
func (r runtime) do(ctx context.Context, args ...string) error {
	_, err := r.output(ctx, args...)
	return err
}

// output runs a runtime command; a failure carries the runtime's message.
func (r runtime) output(ctx context.Context, args ...string) ([]byte, error) {
	out, err := command.Exec{}.Run(ctx, r.bin, append([]string{"--root", r.root}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("contd: %w: %w", ErrRuntime, err)
	}
	return []byte(out), nil
}

// run starts the container of bundle detached, with stdio as its
// standard output and error (and /dev/null as input). The runtime exits
// once the container's process runs; nothing of ours stays in between.
// Its own messages go to logFile, where a failure's reason is read from.
func (r runtime) run(ctx context.Context, name, bundle, logFile string, stdio *os.File) error {
	cmd := exec.CommandContext(ctx, r.bin, "--root", r.root, "--log", logFile, "--log-format", "json",
		"run", "--detach", "--bundle", bundle, "--pid-file", filepath.Join(bundle, "pid"), name)
	cmd.Stdout, cmd.Stderr = stdio, stdio
	// A session of its own: a signal to contd's process group (a
	// supervisor stopping it) must not reach the container.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("contd: %w: %s run %s: %w", ErrRuntime, r.bin, name, ctx.Err())
		}
		return fmt.Errorf("contd: %w: %s run %s: %s", ErrRuntime, r.bin, name, lastError(logFile, err))
	}
	return nil
}

// lastError is the last error the runtime logged (JSON lines with
// "level" and "msg"), or err.
func lastError(logFile string, err error) string {
	f, ferr := os.Open(logFile)
	if ferr != nil {
		return err.Error()
	}
	defer f.Close()
	msg := err.Error()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Level == "error" && line.Msg != "" {
			msg = line.Msg
		}
	}
	return msg
}

// remove kills the container and deletes it (its state and cgroup).
// Removing a container the runtime does not have succeeds.
func (r runtime) remove(ctx context.Context, name string) error {
	if !r.exists(name) {
		return nil
	}
	if err := r.do(ctx, "delete", "--force", name); err != nil && r.exists(name) {
		return err
	}
	return nil
}
