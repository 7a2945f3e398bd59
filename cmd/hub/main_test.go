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

	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/keys"
)

// TestProcess runs the hub binary configured from the environment,
// publishes through it, and stops it with SIGTERM.
func TestProcess(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	kp, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := t.TempDir()
	cmd := exec.Command(bin, "--log-level", "debug")
	cmd.Env = append(cleanEnv(), "HUB_LISTEN="+addr, "HUB_DATA_DIR="+data,
		fmt.Sprintf("HUB_PUBLISHER=tf=0x%x", kp.Public().Key))
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
	base := "http://" + addr
	waitHealthy(t, base+"/healthz", &stderr)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := hubclient.New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.AsPublisher(ctx, "tf", kp)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("content"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := pc.PublishDir(ctx, "tf", "zos", "f", dir, hubclient.PublishOptions{})
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr.String())
	}
	if _, err := c.Flist(ctx, res.Info.Flist); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(data, "repos", "tf", "zos", "flists", "f.json")); err != nil {
		t.Fatalf("data dir: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("hub did not stop on SIGTERM")
	}
	if !strings.Contains(stderr.String(), "hub shutting down") {
		t.Fatalf("no shutdown log:\n%s", stderr.String())
	}
}

func TestBadSettings(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "hub")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--publisher", "tf=nokey")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "hub: ") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("bad publisher: %v\n%s", err, out)
	}
	// A setting that fails as the hub starts: exit status 1, one line
	// naming the program once.
	key := "tf=0x88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee"
	cmd = exec.Command(bin, "--listen", "bogus", "--data-dir", t.TempDir(), "--publisher", key)
	cmd.Env = cleanEnv()
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(string(out), "hub: listen on bogus: ") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("bad listen address: %v\n%s", err, out)
	}
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HUB_") {
			out = append(out, kv)
		}
	}
	return out
}

func waitHealthy(t *testing.T, url string, stderr *bytes.Buffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get(url)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hub not healthy: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
