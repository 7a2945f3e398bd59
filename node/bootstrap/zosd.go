package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grid4/grid4/internal/lockfile"
	"github.com/grid4/grid4/internal/sdnotify"
	"github.com/grid4/grid4/node/internal/lastline"
)

// ending is how a zosd run ended.
type ending struct {
	// handover: zosd exited with ExitHandover.
	handover bool
	// reason says why it ended otherwise, for the record.
	reason string
}

// runZosd starts prog, generation gen's zosd, and watches it until it
// exits, hangs (no heartbeat in time), runs out of trial time, or ctx
// ends (then it is stopped).
func (b *Bootstrap) runZosd(ctx context.Context, gen uint64, prog string) ending {
	what := genString(gen)
	if err := b.waitDataDirFree(ctx); err != nil {
		return ending{reason: err.Error()}
	}
	interval := max(b.cfg.HeartbeatDeadline/6, 10*time.Millisecond)
	r, w, err := os.Pipe()
	if err != nil {
		return ending{reason: fmt.Sprintf("heartbeat pipe: %v", err)}
	}
	defer r.Close()
	args := append(append([]string(nil), b.cfg.Args...), "--data="+b.cfg.DataDir)
	if b.cfg.PublisherKeyText != "" {
		args = append(args, "--upgrade-publisher-key="+b.cfg.PublisherKeyText)
	}
	cmd := exec.Command(prog, args...)
	tail := &lastline.Writer{W: b.cfg.Stderr} // zosd prints its error last: it goes in the record of a rollback
	cmd.Stdout, cmd.Stderr = tail, tail
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = append(zosdEnviron(), HeartbeatFDEnv+"=3", HeartbeatIntervalEnv+"="+interval.String(), GenerationEnv+"="+strconv.FormatUint(gen, 10))
	// Its own process group (a Ctrl-C reaches the bootstrap alone, which
	// stops zosd in order), and killed with the bootstrap: a new
	// bootstrap must not find an orphaned zosd running a generation.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.Close()
		return ending{reason: fmt.Sprintf("starting the zosd of %s: %v", what, err)}
	}
	w.Close()
	b.log.Info("started zosd", "generation", gen, "program", prog, "pid", cmd.Process.Pid)
	b.notify(sdnotify.Status(fmt.Sprintf("started the zosd of %s (pid %d)", what, cmd.Process.Pid)))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	beats := make(chan struct{}, 1)
	go heartbeats(r, beats)
	reason, done, exitErr := b.watch(ctx, gen, exited, beats)
	if done {
		return b.exitEnding(gen, exitErr, tail.Last())
	}
	b.stop(cmd, exited)
	if ctx.Err() != nil {
		return ending{}
	}
	return ending{reason: reason}
}

// watch waits for zosd to exit (done, with Wait's error), or returns
// why it must be stopped: no heartbeat in time, or a trial not confirmed
// in time. It returns "" when ctx ends.
func (b *Bootstrap) watch(ctx context.Context, gen uint64, exited <-chan error, beats <-chan struct{}) (reason string, done bool, err error) {
	what := genString(gen)
	started := time.Now()
	hang := time.NewTimer(b.cfg.StartDeadline)
	defer hang.Stop()
	deadline := b.cfg.StartDeadline
	beating := false // this zosd beat at least once
	var trial <-chan time.Time
	if t, _ := b.dir.OnTrial(gen); t != nil {
		tt := time.NewTimer(b.cfg.TrialDeadline)
		defer tt.Stop()
		trial = tt.C
	}
	for {
		select {
		case <-ctx.Done():
			return "", false, nil
		case err := <-exited:
			return "", true, err
		case <-b.keepalive:
			b.notify(sdnotify.KeepAlive)
		case <-beats:
			if !beating {
				b.notify(sdnotify.Ready, sdnotify.Status("running the zosd of "+what))
				beating = true
			}
			hang.Reset(b.cfg.HeartbeatDeadline)
			deadline = b.cfg.HeartbeatDeadline
			if b.selfTrial != nil && time.Since(started) >= b.cfg.SelfConfirm {
				b.confirmSelf()
				b.selfTrial = nil
			}
		case <-hang.C:
			return fmt.Sprintf("the zosd of %s hung: no heartbeat within %s", what, deadline), false, nil
		case <-trial:
			if t, _ := b.dir.OnTrial(gen); t != nil {
				return fmt.Sprintf("%s (%s) was not confirmed healthy within %s of its zosd's start", what, t.Version, b.cfg.TrialDeadline), false, nil
			}
		}
	}
}

// exitEnding describes zosd's exit.
func (b *Bootstrap) exitEnding(gen uint64, err error, last string) ending {
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == ExitHandover {
		return ending{handover: true}
	}
	why := "exited with status 0"
	switch {
	case errors.As(err, &ee) && ee.Exited():
		why = fmt.Sprintf("exited with status %d", ee.ExitCode())
		if last != "" {
			// zosd prints its error last.
			why += ": " + last
		}
	case err != nil:
		// Killed: its last line is nobody's last word.
		why = "ended: " + err.Error()
	}
	return ending{reason: fmt.Sprintf("the zosd of %s %s", genString(gen), why)}
}

// stop stops zosd: SIGTERM, then SIGKILL after StopGrace.
func (b *Bootstrap) stop(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(b.cfg.StopGrace):
		b.log.Warn("zosd did not stop in time; killing it", "pid", cmd.Process.Pid, "grace", b.cfg.StopGrace)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// zosdEnviron is the bootstrap's environment less what the host's
// service manager gave the bootstrap alone ($NOTIFY_SOCKET, the
// watchdog's): zosd is not the service the manager watches.
func zosdEnviron() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		name, _, _ := strings.Cut(kv, "=")
		return name == "NOTIFY_SOCKET" || name == "WATCHDOG_USEC" || name == "WATCHDOG_PID"
	})
}

// heartbeats signals beats for each read from zosd's heartbeat pipe,
// until it closes (zosd gone).
func heartbeats(r io.Reader, beats chan<- struct{}) {
	buf := make([]byte, 64)
	for {
		if _, err := r.Read(buf); err != nil {
			return
		}
		select {
		case beats <- struct{}{}:
		default:
		}
	}
}

// waitDataDirFree waits until no zosd holds the data directory's lock
// (one killed with a bootstrap that died may still be ending), for at
// most StopGrace.
func (b *Bootstrap) waitDataDirFree(ctx context.Context) error {
	deadline := time.Now().Add(b.cfg.StopGrace)
	for {
		unlock, err := lockfile.Take(filepath.Join(b.cfg.DataDir, "zosd.lock"))
		if err == nil {
			unlock()
			return nil
		}
		if !errors.Is(err, lockfile.ErrHeld) || time.Now().After(deadline) {
			return fmt.Errorf("another zosd still holds %s: %w", b.cfg.DataDir, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
