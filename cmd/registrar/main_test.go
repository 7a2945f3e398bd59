package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinary compiles the registrar command into a temp dir.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "registrar")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// start runs the binary in dir with extra environment and args.
func start(t *testing.T, bin, dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, &stderr
}

// cleanEnv is the test's environment without REGISTRAR_ variables, so the
// caller's shell cannot change what the binary sees.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGISTRAR_") {
			out = append(out, kv)
		}
	}
	return out
}

// waitGet polls url until it answers want or the deadline passes.
func waitGet(t *testing.T, url string, want int, stderr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == want {
				return
			}
			err = fmt.Errorf("status %d", res.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v\nstderr:\n%s", url, err, stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and expects a clean exit.
func stop(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\nstderr:\n%s", err, stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no exit after SIGTERM\nstderr:\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no graceful shutdown logged:\n%s", stderr)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestBinary(t *testing.T) {
	bin := buildBinary(t)

	t.Run("no flags", func(t *testing.T) {
		// The defaults: :8080 and sqlite:registrar.db in the working directory.
		dir := t.TempDir()
		if ln, err := net.Listen("tcp", ":8080"); err != nil {
			// Something (perhaps a registrar started by hand) holds the
			// default port: the defaults must then fail cleanly, naming it.
			t.Logf("port 8080 is taken (%v): checking the no-flag start fails cleanly instead", err)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin)
			cmd.Dir, cmd.Env = dir, cleanEnv()
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), ":8080") {
				t.Fatalf("no flags with :8080 taken: %v\n%s", err, out)
			}
			return
		} else {
			ln.Close()
		}
		cmd, stderr := start(t, bin, dir, nil)
		waitGet(t, "http://127.0.0.1:8080/healthz", http.StatusOK, stderr)
		waitGet(t, "http://127.0.0.1:8080/readyz", http.StatusOK, stderr)
		if _, err := os.Stat(filepath.Join(dir, "registrar.db")); err != nil {
			t.Errorf("default database not created in the working directory: %v", err)
		}
		stop(t, cmd, stderr)
	})

	t.Run("environment", func(t *testing.T) {
		dir := t.TempDir()
		addr := freePort(t)
		cmd, stderr := start(t, bin, dir, []string{
			"REGISTRAR_LISTEN=" + addr,
			"REGISTRAR_DB=sqlite:" + filepath.Join(dir, "env.db"),
			"REGISTRAR_ADMIN_TWIN=1,2",
			"REGISTRAR_LOG_FORMAT=json",
		})
		waitGet(t, "http://"+addr+"/healthz", http.StatusOK, stderr)
		waitGet(t, "http://"+addr+"/v1/nodes", http.StatusOK, stderr)
		if _, err := os.Stat(filepath.Join(dir, "env.db")); err != nil {
			t.Errorf("REGISTRAR_DB ignored: %v", err)
		}
		stop(t, cmd, stderr)
		if !strings.Contains(stderr.String(), `"admin_twins":[1,2]`) {
			t.Errorf("REGISTRAR_ADMIN_TWIN or REGISTRAR_LOG_FORMAT ignored:\n%s", stderr)
		}
	})

	t.Run("flag wins over environment", func(t *testing.T) {
		dir := t.TempDir()
		addr := freePort(t)
		cmd, stderr := start(t, bin, dir, []string{"REGISTRAR_LISTEN=127.0.0.1:1"}, "--listen", addr, "--db", "sqlite:"+filepath.Join(dir, "f.db"))
		waitGet(t, "http://"+addr+"/healthz", http.StatusOK, stderr)
		stop(t, cmd, stderr)
	})

	t.Run("bad settings exit 2 with one line", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			env  []string
		}{
			{[]string{"--admin-twin", "bob"}, nil},
			{nil, []string{"REGISTRAR_REPORT_INTERVAL=often"}},
			{[]string{"--bogus"}, nil},
			{[]string{"--listen", "nope"}, nil},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			cmd := exec.CommandContext(ctx, bin, c.args...)
			cmd.Dir = t.TempDir()
			cmd.Env = append(cleanEnv(), c.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			cancel()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 {
				t.Errorf("%v %v: want exit 2, got %v", c.args, c.env, err)
			}
			if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "registrar: ") {
				t.Errorf("%v %v: want one error line, got %q", c.args, c.env, stderr.String())
			}
			if _, err := os.Stat(filepath.Join(cmd.Dir, "registrar.db")); err == nil {
				t.Errorf("%v %v: a refused setting created registrar.db", c.args, c.env)
			}
		}
	})

	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dir := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--listen", ln.Addr().String(), "--db", "sqlite:"+filepath.Join(dir, "r.db"))
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err = cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("want exit 1, got %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "registrar: listen on "+ln.Addr().String()+": ") {
			t.Errorf("last line %q, want \"registrar: listen on %s: ...\" (the program named once)", last, ln.Addr())
		}
	})

	t.Run("database unreachable: one line", func(t *testing.T) {
		// Nothing listens on port 1: the driver's error lists each
		// attempt on a line of its own.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--listen", "127.0.0.1:0", "--db", "postgres://grid4:secret@127.0.0.1:1/grid4?connect_timeout=5")
		cmd.Env = cleanEnv()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("want exit 1, got %v\n%s", err, stderr.String())
		}
		out := strings.TrimSuffix(stderr.String(), "\n")
		if strings.Contains(out, "\n") || !strings.HasPrefix(out, "registrar: store: open ") || strings.Contains(out, "secret") {
			t.Errorf("want one line naming the store, without the password; got %q", out)
		}
	})

	t.Run("help", func(t *testing.T) {
		out, err := exec.Command(bin, "--help").Output()
		if err != nil {
			t.Fatalf("--help: %v", err)
		}
		if !strings.Contains(string(out), "REGISTRAR_ADMIN_TWIN") {
			t.Errorf("--help output:\n%s", out)
		}
	})
}
