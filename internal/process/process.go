// Package process starts and stops the long-running helper processes of
// the node's modules (QEMU, cloud-hypervisor, virtiofsd, zdb, zstor, zdbfs,
// the servers of lazy flist mounts) so that they outlive the engine's
// process and can be found again after it restarts: each is recorded in a
// pid file, and identified by a marker (a path unique to the workload) in
// its command line, so a recycled pid is never mistaken for it.
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Start runs name with args in a session of its own (it survives the
// engine), output appended to logFile, and writes its pid to pidFile. The
// command line must contain marker.
func Start(name string, args []string, pidFile, logFile, marker string) (int, error) {
	return StartEnv(name, args, nil, pidFile, logFile, marker)
}

// StartEnv is Start with the process's environment (nil: this process's).
func StartEnv(name string, args, env []string, pidFile, logFile, marker string) (int, error) {
	return start(name, args, env, nil, pidFile, logFile, marker)
}

// StartFiles is Start with files passed to the process as its file
// descriptors 3, 4, … (a TAP device a hypervisor reads, say).
func StartFiles(name string, args []string, files []*os.File, pidFile, logFile, marker string) (int, error) {
	return start(name, args, nil, files, pidFile, logFile, marker)
}

func start(name string, args, env []string, files []*os.File, pidFile, logFile, marker string) (int, error) {
	if !strings.Contains(strings.Join(args, " "), marker) {
		return 0, fmt.Errorf("process: %s: marker %q not in the arguments", name, marker)
	}
	out, err := os.OpenFile(logFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.ExtraFiles = files
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while we still run; after a restart of the
	// engine, init does.
	go func() { _ = cmd.Wait() }()
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		_ = cmd.Process.Kill()
		return 0, err
	}
	// cmd.Start returns once the kernel has committed to the exec, a
	// moment before the new command line is in place: until it is,
	// Running would call the process gone.
	for range 200 {
		if _, ok := Running(pidFile, marker); ok || !Alive(pid) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return pid, nil
}

// Alive reports whether process pid exists and is not a zombie (one that
// has ended and waits for its parent to reap it).
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, ok := bytes.Cut(b, []byte(") "))
	return ok && len(rest) > 0 && rest[0] != 'Z'
}

// Running returns the pid recorded in pidFile if that process still runs
// and its command line contains marker.
func Running(pidFile, marker string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
		return 0, false
	}
	// A zombie still has a cmdline of nothing; one with ours is alive.
	return pid, true
}

// Stop ends the process of pidFile (if it is ours): SIGTERM, then SIGKILL
// after grace. The pid file is removed.
func Stop(ctx context.Context, pidFile, marker string, grace time.Duration) error {
	pid, ok := Running(pidFile, marker)
	if ok {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		deadline := time.Now().Add(grace)
		for {
			if _, still := Running(pidFile, marker); !still {
				break
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// WaitForFile waits up to 10 seconds for path to appear: the socket a
// helper process just started creates once it is ready to serve.
func WaitForFile(ctx context.Context, path string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not appear: %w", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// KillUsing SIGKILLs every process (but this one) that runs from path:
// path in its command line (a node's daemons, hypervisors, file servers),
// or in the mount table of a mount namespace other than this process's
// (containers on a root mounted from path: an overlay names it in its
// options). It returns how many it killed; they may take a moment to let
// go of their files.
func KillUsing(path string) int {
	self, _ := os.Readlink("/proc/self/ns/mnt")
	return len(killEach(func(dir string, cmdline []byte) bool {
		if bytes.Contains(cmdline, []byte(path)) {
			return true
		}
		ns, _ := os.Readlink(dir + "/ns/mnt")
		if ns == "" || ns == self {
			return false
		}
		mounts, _ := os.ReadFile(dir + "/mountinfo")
		return bytes.Contains(mounts, []byte(path))
	}))
}

// KillMatching SIGKILLs every process (but this one) whose command line
// (its arguments; a program that rewrites its title shows that instead)
// match accepts, and waits until they are gone or ctx ends. It returns how
// many it killed.
func KillMatching(ctx context.Context, match func(argv []string) bool) (int, error) {
	killed := killEach(func(_ string, cmdline []byte) bool {
		return len(cmdline) > 0 && match(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"))
	})
	for _, pid := range killed {
		for Alive(pid) {
			select {
			case <-ctx.Done():
				return len(killed), fmt.Errorf("process %d still there after SIGKILL: %w", pid, ctx.Err())
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return len(killed), nil
}

// killEach SIGKILLs every process but this one that kill accepts (given
// its /proc directory and command line) and returns their pids.
func killEach(kill func(dir string, cmdline []byte) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var killed []int
	for _, en := range entries {
		pid, err := strconv.Atoi(en.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := "/proc/" + en.Name()
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		if kill(dir, cmdline) && syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, pid)
		}
	}
	return killed
}

// HoldsInARow reports whether argv has args as consecutive elements.
func HoldsInARow(argv []string, args ...string) bool {
	for i := 0; i+len(args) <= len(argv); i++ {
		if slices.Equal(argv[i:i+len(args)], args) {
			return true
		}
	}
	return false
}
