// Package sdnotify tells the service manager that started a process about
// its state, as sd_notify(3) does for systemd: readiness, a status line,
// and watchdog keep-alives. It is the protocol only — a datagram of
// newline-separated VAR=value assignments sent to the Unix socket named by
// $NOTIFY_SOCKET — so a program needs neither cgo nor libsystemd. It
// uses the socket system calls directly, not package net: the node's
// bootstrap, which links no network code, speaks it.
//
// A keep-alive is worth sending only from the loop whose liveness it
// vouches for: a process whose main loop hangs must stop sending them, so
// that the manager (WatchdogSec=) kills and restarts it. Callers therefore
// send WATCHDOG=1 from their own loop, at a fraction of Watchdog().
package sdnotify

import (
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"
)

// The states a program sends (sd_notify(3)).
const (
	// Ready: the service finished starting up.
	Ready = "READY=1"
	// Stopping: the service is shutting down.
	Stopping = "STOPPING=1"
	// KeepAlive resets the manager's watchdog timer.
	KeepAlive = "WATCHDOG=1"
)

// Status returns the state carrying a one-line status for people
// (`systemctl status` shows it).
func Status(line string) string { return "STATUS=" + line }

// Notifier sends states to the service manager's socket. A nil *Notifier
// sends nothing: a process started without $NOTIFY_SOCKET runs the same
// code.
type Notifier struct {
	fd       int // a datagram socket connected to the manager's
	watchdog time.Duration
}

// FromEnv returns the Notifier the environment asks for: nil, nil when
// $NOTIFY_SOCKET is unset (not started by a manager that listens). The
// watchdog interval is $WATCHDOG_USEC, unless $WATCHDOG_PID names another
// process than pid (the manager meant the keep-alives for someone else).
// A socket name starting with "@" is in the abstract namespace.
func FromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil, nil
	}
	var every time.Duration
	if v := getenv("WATCHDOG_USEC"); v != "" {
		usec, err := strconv.ParseUint(v, 10, 63)
		if err != nil || usec == 0 || usec > uint64(1<<63-1)/uint64(time.Microsecond) {
			return nil, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q is not a positive number of microseconds", v)
		}
		every = time.Duration(usec) * time.Microsecond
		if p := getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(pid) {
			every = 0
		}
	}
	return Dial(sock, every)
}

// Dial returns a Notifier sending to the datagram socket at path (or
// "@name", abstract), with watchdog as the interval Watchdog reports.
func Dial(path string, watchdog time.Duration) (*Notifier, error) {
	if path == "" {
		return nil, errors.New("sdnotify: no socket path")
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("sdnotify: socket: %w", err)
	}
	// syscall turns a leading "@" into the abstract namespace.
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("sdnotify: connect %s: %w", path, err)
	}
	return &Notifier{fd: fd, watchdog: watchdog}, nil
}

// Notify sends states (e.g. Ready, Status("…")) in one datagram.
func (n *Notifier) Notify(states ...string) error {
	if n == nil || len(states) == 0 {
		return nil
	}
	var msg []byte
	for i, s := range states {
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, s...)
	}
	if _, err := syscall.Write(n.fd, msg); err != nil {
		return fmt.Errorf("sdnotify: send: %w", err)
	}
	return nil
}

// Watchdog is how often the manager expects KeepAlive at the least (0:
// it does not watch this process). Send it at a third of this or more
// often, to stay clear of scheduling delays.
func (n *Notifier) Watchdog() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Close closes the socket.
func (n *Notifier) Close() error {
	if n == nil {
		return nil
	}
	return syscall.Close(n.fd)
}
