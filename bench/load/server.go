package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ServerConfig says how StartServer runs the registrar.
type ServerConfig struct {
	// Binary is the registrar executable.
	Binary string
	// DB is its --db.
	DB string
	// Args are appended to the arguments StartServer passes (a flag given
	// twice takes the last value, so these override the defaults).
	Args []string
	// Env is added to the environment of the process.
	Env []string
	// Log receives the process's standard output and error (nil:
	// discarded; the last lines are kept for error messages anyway).
	Log io.Writer
	// ReadyTimeout bounds the wait for /readyz (0: one minute).
	ReadyTimeout time.Duration
}

// ServerArgs returns the arguments StartServer gives the registrar for
// listen address addr: the store, the address, rate limits off (the load
// comes from one IP and, for list, without a twin) and warn-level logs (one
// log record per request would measure the logger).
func ServerArgs(db, addr string) []string {
	return []string{"--db", db, "--listen", addr, "--rate-ip", "0", "--rate-twin", "0", "--log-level", "warn"}
}

// Server is a registrar process started by StartServer.
type Server struct {
	// URL is the base URL, http://127.0.0.1:PORT.
	URL  string
	cmd  *exec.Cmd
	tail *tailBuffer
	done chan struct{}
	err  error // of Wait, once done is closed
}

// StartServer starts the registrar on a free loopback port and waits until
// /readyz answers 200. Stop ends it; so does the end of ctx (SIGTERM, then
// SIGKILL after 20 s).
func StartServer(ctx context.Context, cfg ServerConfig) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tail := &tailBuffer{max: 4096}
	var out io.Writer = tail
	if cfg.Log != nil {
		out = io.MultiWriter(cfg.Log, tail)
	}
	cmd := exec.CommandContext(ctx, cfg.Binary, append(ServerArgs(cfg.DB, addr), cfg.Args...)...)
	cmd.Env = append(os.Environ(), cfg.Env...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("load: starting the registrar: %w", err)
	}
	s := &Server{URL: "http://" + addr, cmd: cmd, tail: tail, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	timeout := cfg.ReadyTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	if err := s.waitReady(ctx, timeout); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// PID returns the registrar's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// waitReady polls /readyz until it answers 200, the process exits or the
// timeout passes.
func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("load: readiness request: %w", err)
		}
		if res, err := c.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("load: the registrar exited before it was ready (%v): %s", s.err, s.tail.String())
		case <-ctx.Done():
			return fmt.Errorf("load: the registrar was not ready within %v: %w; its output: %s", timeout, ctx.Err(), s.tail.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the registrar with SIGTERM (its graceful shutdown), SIGKILL
// after 20 s, and waits for it. It returns an error when the process did
// not exit cleanly.
func (s *Server) Stop() error {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if s.err != nil {
		var ee *exec.ExitError
		if errors.As(s.err, &ee) && !ee.Exited() {
			return fmt.Errorf("load: the registrar was killed (%v): %s", s.err, s.tail.String())
		}
		return fmt.Errorf("load: the registrar failed: %w: %s", s.err, s.tail.String())
	}
	return nil
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("load: finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// CheckLoopback returns an error unless base is an http URL whose host is
// a loopback address or "localhost": the load generator only loads
// servers on this machine.
func CheckLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("load: target URL: %w", err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("load: target URL %q: want http://127.0.0.1:PORT", base)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("load: target %q is not a loopback address: the load generator only targets this machine", host)
	}
	return nil
}

// Memory is the resident memory of a process, in bytes.
type Memory struct {
	// RSS is VmRSS: resident now.
	RSS uint64 `json:"rss_bytes"`
	// HWM is VmHWM: the most resident since the process started.
	HWM uint64 `json:"hwm_bytes"`
}

// ReadMemory reads VmRSS and VmHWM of process pid from /proc (Linux).
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("load: reading memory of process %d: %w", pid, err)
	}
	var m Memory
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val) // "123456 kB"
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("load: process %d: unexpected %s line %q", pid, name, sc.Text())
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("load: process %d: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.HWM = kb << 10
		}
	}
	if m.RSS == 0 {
		return Memory{}, fmt.Errorf("load: process %d: no VmRSS in /proc status", pid)
	}
	return m, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

// Write implements io.Writer.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns what is kept, trimmed.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := strings.TrimSpace(string(t.b))
	if s == "" {
		return "(no output)"
	}
	return s
}

// errNoProcess: no such process on this machine.
var errNoProcess = errors.New("no such process")

// clockTicks is the unit of the CPU times in /proc/PID/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTicks = 100

// ReadCPU returns the CPU time (user + system) process pid has used, from
// /proc (Linux).
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("load: process %d: %w", pid, errNoProcess)
	}
	if err != nil {
		return 0, fmt.Errorf("load: reading CPU time of process %d: %w", pid, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count fields after its closing parenthesis. utime and stime are
	// fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("load: process %d: malformed /proc stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("load: process %d: short /proc stat", pid)
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("load: process %d: CPU time %q: %w", pid, s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
