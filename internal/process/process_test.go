package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestStartFindStop(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker-sock")
	pidFile := filepath.Join(dir, "p.pid")
	pid, err := Start("sh", []string{"-c", "sleep 30", marker}, pidFile, filepath.Join(dir, "log"), marker)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := Running(pidFile, marker); !ok || got != pid {
		t.Fatalf("Running = %d %v, want %d", got, ok, pid)
	}
	if _, ok := Running(pidFile, "another-marker"); ok {
		t.Fatal("matched another marker")
	}
	if err := Stop(context.Background(), pidFile, marker, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := Running(pidFile, marker); ok {
		t.Fatal("still running")
	}
	// Stopping again is fine.
	if err := Stop(context.Background(), pidFile, marker, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := Start("sh", []string{"-c", "true"}, pidFile, filepath.Join(dir, "log"), marker); err == nil {
		t.Fatal("started without the marker in its arguments")
	}
}

func TestWaitForFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sock")
	go func() {
		time.Sleep(50 * time.Millisecond)
		_ = os.WriteFile(p, nil, 0o600)
	}()
	if err := WaitForFile(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := WaitForFile(ctx, p+"-never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a file that never appears: %v", err)
	}
}

// blocked is a shell command line that waits without a child process:
// it opens fifo, a FIFO nobody writes, and args follow it. A child
// (sleep) would be counted too for the moment it has been forked and has
// not yet run its own program.
func blocked(t *testing.T, fifo string, args ...string) []string {
	t.Helper()
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	return append([]string{"-c", `read x < "$0"`, fifo}, args...)
}

// TestKillUsing kills the processes with the path in their command line,
// and only those.
func TestKillUsing(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "p.pid")
	mine := filepath.Join(dir, "mine")
	if _, err := Start("sh", blocked(t, mine), pidFile, filepath.Join(dir, "log"), mine); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if _, err := Start("sh", blocked(t, other), pidFile+"2", filepath.Join(dir, "log"), other); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Stop(context.Background(), pidFile+"2", other, time.Second) })
	if n := KillUsing(mine); n != 1 {
		t.Fatalf("killed %d processes, want 1", n)
	}
	for i := 0; ; i++ {
		if _, ok := Running(pidFile, mine); !ok {
			break
		}
		if i == 100 {
			t.Fatal("still running after KillUsing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, ok := Running(pidFile+"2", other); !ok {
		t.Fatal("another process was killed")
	}
}

// TestKillMatching kills the process whose arguments match and waits
// for it, leaving one that does not.
func TestKillMatching(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "redis.sock")
	server := exec.Command("sh", blocked(t, filepath.Join(dir, "server"), "--unixsocket", sock)...)
	client := exec.Command("sh", blocked(t, filepath.Join(dir, "client"), "--unixsocket", "--redis="+sock, sock)...)
	for _, c := range []*exec.Cmd{server, client} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		// Until the shell runs, the process's command line is ours.
		for i := 0; ; i++ {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c.Process.Pid))
			if bytes.Contains(b, []byte("--unixsocket")) {
				break
			}
			if i == 500 {
				t.Fatal("the shell did not start")
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	t.Cleanup(func() { client.Process.Kill(); client.Wait() })
	waited := make(chan error, 1)
	go func() { waited <- server.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := KillMatching(ctx, func(argv []string) bool { return HoldsInARow(argv, "--unixsocket", sock) })
	if err != nil || n != 1 {
		t.Fatalf("KillMatching: %d, %v; want 1 killed", n, err)
	}
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("the server was not killed")
	}
	if !Alive(client.Process.Pid) {
		t.Fatal("the process with the arguments apart was killed")
	}
}
