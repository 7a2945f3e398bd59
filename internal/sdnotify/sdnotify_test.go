package sdnotify

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen is a service manager's end: a datagram socket at name.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func receive(t *testing.T, l *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	if err := l.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := l.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNotify(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify.sock"),
		"@grid4-sdnotify-test-" + strconv.Itoa(int(time.Now().UnixNano())),
	} {
		l := listen(t, name)
		n, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1500000"}), 42)
		if err != nil {
			t.Fatal(err)
		}
		if n.Watchdog() != 1500*time.Millisecond {
			t.Errorf("%s: Watchdog() = %s", name, n.Watchdog())
		}
		if err := n.Notify(Ready, Status("running generation 3")); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, l); got != "READY=1\nSTATUS=running generation 3" {
			t.Errorf("%s: received %q", name, got)
		}
		if err := n.Notify(KeepAlive); err != nil {
			t.Fatal(err)
		}
		if got := receive(t, l); got != "WATCHDOG=1" {
			t.Errorf("%s: received %q", name, got)
		}
		n.Close()
	}
}

func TestFromEnv(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	listen(t, sock)

	n, err := FromEnv(env(nil), 42)
	if n != nil || err != nil {
		t.Fatalf("no NOTIFY_SOCKET: %v, %v", n, err)
	}
	// A nil Notifier sends nothing and watches nothing.
	if err := n.Notify(Ready); err != nil || n.Watchdog() != 0 || n.Close() != nil {
		t.Error("a nil Notifier does something")
	}

	n, err = FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "41"}), 42)
	if err != nil || n.Watchdog() != 0 {
		t.Errorf("keep-alives meant for pid 41: %v, watchdog %s", err, n.Watchdog())
	}
	n, err = FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "42"}), 42)
	if err != nil || n.Watchdog() != 2*time.Second {
		t.Errorf("keep-alives meant for this pid: %v, watchdog %s", err, n.Watchdog())
	}
	n, err = FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock}), 42)
	if err != nil || n.Watchdog() != 0 {
		t.Errorf("no watchdog asked: %v, watchdog %s", err, n.Watchdog())
	}
	for _, bad := range []string{"0", "-5", "1.5", "abc", "99999999999999999999"} {
		if _, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": bad}), 42); err == nil {
			t.Errorf("WATCHDOG_USEC=%q accepted", bad)
		}
	}
	if _, err := FromEnv(env(map[string]string{"NOTIFY_SOCKET": filepath.Join(t.TempDir(), "nobody")}), 42); err == nil {
		t.Error("a socket nobody listens on accepted")
	}
}
