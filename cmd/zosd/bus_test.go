package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/node/identityd"
	"github.com/grid4/grid4/node/registrarlight"
	"github.com/grid4/grid4/node/upgrader/upgradetest"
	"github.com/grid4/grid4/node/zosd"
)

// TestBusUsersProcesses: a zosd process with its private Redis and one
// process per module. Each module has its own Redis user, its password in
// its environment and not on its command line. The node registers
// (registrar_gateway may sign); a client without credentials is refused;
// registrar_light, with its real password, may read the identity but not
// have the node sign: bus.ErrNotAllowed.
func TestBusUsersProcesses(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("needs redis-server (make test-services)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/grid4/grid4/cmd/zosd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g := upgradetest.Start(t)
	data := filepath.Join(dir, "node")
	var logb lockedBuffer
	cmd := exec.Command(filepath.Join(bin, "zosd"),
		"--registrar", g.RegistrarURL, "--farm", fmt.Sprint(g.Farm(t)), "--data", data,
		"--interface", "lo", "--geoip-url", "none", "--min-free-disk", "1MiB", "--api-listen", "127.0.0.1:0",
		"--uptime-interval", "2s", "--uptime-min-interval", "200ms", "--retry-min", "100ms", "--retry-max", "500ms")
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	})

	var r zosd.Report
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := exec.Command(filepath.Join(bin, "zosd"), "status", "--data", data, "-o", "json").Output()
		if err == nil && json.Unmarshal(out, &r) == nil && r.Registration != nil && r.Registration.Phase == registrarlight.Done {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("zosd exited: %v\n%s", err, logb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not registered: %s %v\nlog:\n%s", out, err, logb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Each module's password, as root reads it from its process.
	passwords := map[string]string{}
	for _, m := range r.Modules {
		if m.Name == zosd.ModuleRedis {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", m.PID))
		if err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		for kv := range bytes.SplitSeq(env, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte(zosd.BusPasswordEnv+"=")); ok {
				passwords[m.Name] = string(v)
			}
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", m.PID))
		if pw := passwords[m.Name]; pw == "" || bytes.Contains(cmdline, []byte(pw)) {
			t.Errorf("%s: password %q in the environment, on the command line: %v", m.Name, pw, bytes.Contains(cmdline, []byte(pw)))
		}
	}
	if passwords[zosd.ModuleLight] == passwords[zosd.ModuleGateway] {
		t.Error("two modules share a password")
	}

	ctx := context.Background()
	open := func(user, password string) *bus.Client {
		c, err := bus.Open("unix://"+filepath.Join(data, "redis.sock"), bus.Options{
			Prefix: zosd.DefaultBusPrefix, User: user, Password: bus.Secret(password),
			Logger: slog.New(slog.DiscardHandler), DefaultTimeout: 3 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	msg := []byte("register me elsewhere")
	if _, err := identityd.NewStub(open("", "")).Sign(ctx, msg); !errors.Is(err, bus.ErrUnauthenticated) {
		t.Errorf("sign without credentials: want ErrUnauthenticated, got %v", err)
	}
	light := identityd.NewStub(open(zosd.ModuleLight, passwords[zosd.ModuleLight]))
	if _, err := light.FarmID(ctx); err != nil {
		t.Errorf("registrar_light reads the farm: %v", err)
	}
	_, err := light.Sign(ctx, msg)
	if !errors.Is(err, bus.ErrNotAllowed) || !strings.Contains(err.Error(), identityd.SignerObject) {
		t.Errorf("registrar_light signs: want ErrNotAllowed naming %s, got %v", identityd.SignerObject, err)
	}
	gw := identityd.NewStub(open(zosd.ModuleGateway, passwords[zosd.ModuleGateway]))
	sig, err := gw.Sign(ctx, msg)
	if err != nil || len(sig) == 0 {
		t.Errorf("registrar_gateway signs: %x %v", sig, err)
	}
	t.Logf("registered as node %d; unauthenticated and unlisted signers refused", r.Registration.NodeID)
}
