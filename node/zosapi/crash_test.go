package zosapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/keys"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
)

// nodeEnv makes this test binary run a node (engine and API) instead of
// the tests: the crash test starts it as a child process and kills it.
const nodeEnv = "GRID4_ZOSAPI_TEST_NODE"

func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		if err := runTestNode(); err != nil {
			fmt.Fprintln(os.Stderr, "test node:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runTestNode serves a node from $NODE_DIR on $NODE_ADDR against
// $REGISTRAR until SIGTERM; $BLOCK names a machine whose provisioning
// never ends.
func runTestNode() error {
	n, err := buildNode(os.Getenv("NODE_DIR"), os.Getenv("REGISTRAR"), nodeOptions{block: os.Getenv("BLOCK")})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", os.Getenv("NODE_ADDR"))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	hs := &http.Server{Handler: n.server.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	err = n.engine.Run(ctx)
	_ = hs.Close()
	n.zlogs.Close()
	return errors.Join(err, n.engine.Close())
}

// testNodeProcess is a node in a child process.
type testNodeProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

func startNodeProcess(t *testing.T, dir, addr, registrarURL, block string) *testNodeProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), nodeEnv+"=1", "NODE_DIR="+dir, "NODE_ADDR="+addr, "REGISTRAR="+registrarURL, "BLOCK="+block)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &testNodeProcess{cmd: cmd, url: "http://" + addr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	// Wait until it serves.
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("node process exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("node process does not listen")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *testNodeProcess) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil // for the cleanup
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestNodeKilledMidDeploymentRecovers deploys over the API to a node in a
// child process, kills it with SIGKILL while the machine is being
// provisioned, starts it again on the same data and checks, over the API,
// that the deployment finishes and is consistent.
func TestNodeKilledMidDeploymentRecovers(t *testing.T) {
	reg := startRegistrar(t)
	alice := newTwin(t, reg, keys.Ed25519)
	dir, addr := t.TempDir(), freeAddr(t)
	lc := newLogCollector(t)
	ctx := context.Background()

	first := startNodeProcess(t, dir, addr, reg, "vm")
	c, err := zosclient.New(first.url, alice.key, alice.id, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := deployment(alice, lc.url("/logs"))
	sign(t, &d, alice)
	rec, err := c.Deploy(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	id := rec.Deployment.ID
	marker := filepath.Join(dir, "logs", "blocked")
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the machine was never provisioned")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Killed in the middle: storage and network done, machine in flight.
	mid, err := c.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Pending != "deploy" || stateOf(mid, "disk") != gridtypes.StateOk || stateOf(mid, "net") != gridtypes.StateOk || stateOf(mid, "vm") != gridtypes.StateInit {
		t.Fatalf("before the kill: %+v", mid)
	}
	first.kill(t)
	if _, err := c.Get(ctx, id); err == nil {
		t.Fatal("the node still answers after SIGKILL")
	}

	second := startNodeProcess(t, dir, addr, reg, "")
	rec = waitDone(t, c, id)
	for _, w := range rec.Deployment.Workloads {
		if w.Result.State != gridtypes.StateOk {
			t.Errorf("%s: %+v", w.Name, w.Result)
		}
	}
	// The machine's provisioning ran to the end once, and the log stream
	// after it started.
	changes, err := c.Changes(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var provisioned []string
	for _, ch := range changes {
		if ch.Op == gridtypes.OpProvision {
			provisioned = append(provisioned, ch.Workload)
		}
	}
	if want := []string{"disk", "vol", "net", "vm", "logs"}; !slices.Equal(provisioned, want) {
		t.Fatalf("provision results %v, want %v", provisioned, want)
	}
	expectMessage(t, lc, "vm booted")

	// The recovered node keeps serving: delete cleans everything up.
	if _, err := c.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	rec = waitDone(t, c, id)
	for _, w := range rec.Deployment.Workloads {
		if w.Result.State != gridtypes.StateDeleted {
			t.Errorf("%s: %s after delete", w.Name, w.Result.State)
		}
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "storage", "pools", "*", "zmount", "*"))
	if len(entries) != 0 {
		t.Fatalf("disk files left: %v", entries)
	}
	_ = second.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-second.done; err != nil && !strings.Contains(err.Error(), "signal") {
		t.Fatalf("graceful stop: %v", err)
	}
	second.done <- nil
}
