package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/node/upgrader/upgradetest"
	"github.com/grid4/grid4/node/zosd"
)

// fatalIdentityd is the zosd of a release whose identityd refuses to run
// (exit status 3: the supervisor does not restart it and stops the node);
// the other modules run until their lifeline closes.
const fatalIdentityd = `#!/bin/sh
case "$1" in
version) echo "zosd v4.1.1"; exit 0 ;;
run)
	if [ "$2" = identityd ]; then echo "identity file is corrupt (release bug)" >&2; exit 3; fi
	exec cat <&3 >/dev/null ;;
esac
exit 2
`

// TestUpgradeFatalModule: a zosd process switches to a release whose
// identityd fails fatally — which stops the whole node before the
// upgrader can judge the release. zosd switches back itself, starts the
// modules again on the previous generation, keeps running, and the
// upgrader records the rollback with the reason.
func TestUpgradeFatalModule(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("needs redis-server")
	}
	begin := time.Now()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if out, err := exec.Command("go", "build", "-o", bin+"/", "github.com/grid4/grid4/cmd/zosd").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g := upgradetest.Start(t)
	farm := g.Farm(t)
	g.Release(t, "v4.1.1", nil, nil, upgradetest.Tree{"bin/zosd": fatalIdentityd})
	g.SetVersion(t, "v4.1.1", true)

	data := filepath.Join(dir, "node")
	var logb lockedBuffer
	cmd := exec.Command(filepath.Join(bin, "zosd"),
		"--registrar", g.RegistrarURL, "--farm", fmt.Sprint(farm), "--data", data, "--zos-version", "v4.1.0",
		"--interface", "lo", "--geoip-url", "none", "--min-free-disk", "1MiB", "--restart-min", "100ms", "--api-listen", "127.0.0.1:0",
		"--hub", g.HubURL, "--upgrade-publisher-key", hex.EncodeToString(g.PublisherKey),
		"--upgrade-interval", "1s", "--upgrade-jitter", "0s", "--upgrade-health-stable", "1s", "--upgrade-health-deadline", "20s")
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

	status := func() (zosd.Report, bool) {
		out, err := exec.Command(filepath.Join(bin, "zosd"), "status", "--data", data, "-o", "json").Output()
		var r zosd.Report
		return r, err == nil && json.Unmarshal(out, &r) == nil
	}
	deadline := time.Now().Add(30 * time.Second)
	var r zosd.Report
	for {
		select {
		case err := <-exited:
			t.Fatalf("zosd exited: %v\n%s", err, logb.String())
		default:
		}
		var ok bool
		if r, ok = status(); ok && r.Upgrade != nil && r.Upgrade.RolledBack != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rollback; status %+v\nlog:\n%s", r.Upgrade, logb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	rb := r.Upgrade.RolledBack
	if rb.Version != "v4.1.1" || !rb.Switched || !strings.Contains(rb.Reason, "identityd failed fatally on the new generation") ||
		!strings.Contains(rb.Reason, "identity file is corrupt (release bug)") || r.Upgrade.Running.Version != "v4.1.0" {
		t.Errorf("rollback: %+v, running %+v", rb, r.Upgrade.Running)
	}
	// The node runs again, on the bootstrap, and stays there.
	deadline = time.Now().Add(15 * time.Second)
	for {
		r, _ = status()
		running := len(r.Modules) > 0
		for _, m := range r.Modules {
			running = running && m.State == "running"
		}
		if running && r.Upgrade != nil && r.Upgrade.Last != nil && r.Upgrade.Last.Outcome == upgrader.Skipped {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not back: %+v %+v\nlog:\n%s", r.Modules, r.Upgrade, logb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Readlink(filepath.Join(data, "upgrade", upgrader.CurrentLink)); !os.IsNotExist(err) {
		t.Errorf("current link after the rollback to the bootstrap: %v", err)
	}
	t.Logf("rolled back after a fatal module in %.1fs", time.Since(begin).Seconds())
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
