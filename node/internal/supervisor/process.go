package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"syscall"

	"github.com/grid4/grid4/node/internal/lastline"
)

// ExitFatal is the exit status of a process that must not be restarted
// (see ErrFatal).
const ExitFatal = 3

// LifelineEnv names the environment variable that tells a child started
// by Exec with Lifeline which descriptor is its lifeline (see Lifeline).
const LifelineEnv = "ZOSD_LIFELINE_FD"

// Exec describes a child program.
type Exec struct {
	// Path and Args (without the program name) are the program to run.
	Path string
	Args []string
	// Env is the child's environment (nil: the supervisor's).
	Env []string
	// Stderr receives the child's standard error and output (nil: the
	// supervisor's standard error). The last line is kept for the exit
	// reason.
	Stderr io.Writer
	// Lifeline passes the child the read end of a pipe (descriptor 3,
	// named by LifelineEnv) whose write end only the supervisor holds:
	// the child sees end of file when the supervisor dies, however it
	// dies, and should then exit (WatchLifeline does that).
	Lifeline bool
	// ParentDeathSignal, when set, is sent to the child when the
	// supervisor's thread that started it ends; for programs that cannot
	// watch a lifeline (redis-server).
	ParentDeathSignal syscall.Signal
}

// Start starts the program.
func (e Exec) Start(ctx context.Context) (Process, error) {
	cmd := exec.Command(e.Path, e.Args...)
	cmd.Env = e.Env
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	out := e.Stderr
	if out == nil {
		out = os.Stderr
	}
	tail := &lastline.Writer{W: out}
	cmd.Stdout, cmd.Stderr = tail, tail
	// A process group of its own: a Ctrl-C on the terminal or a signal to
	// zosd's group reaches zosd alone, which then stops the children in
	// order instead of having them all die at once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: e.ParentDeathSignal}
	var lifeline *os.File
	if e.Lifeline {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("lifeline: %w", err)
		}
		cmd.ExtraFiles = []*os.File{r}
		cmd.Env = append(cmd.Env, LifelineEnv+"=3")
		defer r.Close()
		lifeline = w
	}
	if err := cmd.Start(); err != nil {
		if lifeline != nil {
			lifeline.Close()
		}
		return nil, err
	}
	return &execProcess{cmd: cmd, tail: tail, lifeline: lifeline}, nil
}

type execProcess struct {
	cmd      *exec.Cmd
	tail     *lastline.Writer
	lifeline *os.File
}

func (p *execProcess) PID() int { return p.cmd.Process.Pid }
func (p *execProcess) Stop()    { _ = p.cmd.Process.Signal(syscall.SIGTERM) }
func (p *execProcess) Kill()    { _ = p.cmd.Process.Kill() }

func (p *execProcess) Wait() error {
	err := p.cmd.Wait()
	if p.lifeline != nil {
		p.lifeline.Close()
	}
	if err == nil {
		return nil
	}
	// A process that exited by itself usually said why in its last line
	// (zosd prints its error last); one killed by a signal did not.
	last := p.tail.Last()
	var ee *exec.ExitError
	switch {
	case !errors.As(err, &ee) || !ee.Exited():
		return err
	case ee.ExitCode() == ExitFatal && last == "":
		return fmt.Errorf("%w: %w", ErrFatal, err)
	case ee.ExitCode() == ExitFatal:
		return fmt.Errorf("%w: %s", ErrFatal, last)
	case last == "":
		return err
	}
	return fmt.Errorf("%w: %s", err, last)
}

// WatchLifeline returns a context that ends when ctx does or when the
// supervisor that started this process (with Exec.Lifeline) dies. Without
// a lifeline in the environment it returns ctx unchanged.
func WatchLifeline(ctx context.Context, getenv func(string) string) (context.Context, context.CancelFunc) {
	if getenv(LifelineEnv) != "3" {
		return context.WithCancel(ctx)
	}
	f := os.NewFile(3, "lifeline")
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		defer f.Close()
		_, _ = io.Copy(io.Discard, f) // returns at end of file: the supervisor is gone
		cancel()
	}()
	return ctx, cancel
}

// Func runs a function as a child: Stop cancels its context, and a panic
// is its error. A function returning an error wrapping ErrFatal is not
// restarted.
func Func(run func(ctx context.Context) error) func(ctx context.Context) (Process, error) {
	return func(ctx context.Context) (Process, error) {
		// Only Stop ends the function: the supervisor stops its children
		// one by one, in order, whatever happens to its own context.
		ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		p := &funcProcess{cancel: cancel, done: make(chan struct{})}
		go func() {
			defer close(p.done)
			defer func() {
				if r := recover(); r != nil {
					p.err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			p.err = run(ctx)
			if p.err == nil && ctx.Err() == nil {
				p.err = errors.New("returned")
			}
		}()
		return p, nil
	}
}

type funcProcess struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func (p *funcProcess) PID() int { return 0 }
func (p *funcProcess) Stop()    { p.cancel() }
func (p *funcProcess) Kill()    { p.cancel() }
func (p *funcProcess) Wait() error {
	<-p.done
	return p.err
}
