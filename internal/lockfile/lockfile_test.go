package lockfile

import (
	"bufio"
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestTake: a lock is exclusive between processes, free again once
// released, and released when its process ends.
func TestTake(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Take(path)
	if err != nil {
		t.Fatal(err)
	}
	// Another process (flock(1)) cannot take it while it is held.
	if exec.Command("flock", "-n", path, "true").Run() == nil {
		t.Fatal("another process took a held lock")
	}
	unlock()
	if err := exec.Command("flock", "-n", path, "true").Run(); err != nil {
		t.Fatalf("the released lock: %v", err)
	}
	// Held by another process (flock itself: -o keeps it from the
	// command): ErrHeld; free once that process has ended.
	holder := exec.Command("flock", "-n", "-o", path, "sh", "-c", "echo locked; exec sleep 30")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killed with its command
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("flock: %q %v", line, err)
	}
	if _, err := Take(path); !errors.Is(err, ErrHeld) {
		t.Fatalf("a lock another process holds: %v", err)
	}
	syscall.Kill(-holder.Process.Pid, syscall.SIGKILL)
	holder.Wait()
	if unlock, err = Take(path); err != nil {
		t.Fatalf("after its holder died: %v", err)
	}
	unlock()
}
