package gridctl

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/provisiond/zlogs"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader.
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

// TestLogsListen: what a node's zlogs manager streams arrives on gridctl
// logs listen, a line per line, with the stream's path.
func TestLogsListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errs lockedBuffer
	done := make(chan error)
	go func() { done <- serveLogs(ctx, ln, Env{Stdout: &out, Stderr: &errs}, true) }()

	m, err := zlogs.New(zlogs.Config{LogDir: t.TempDir(), Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	data, _ := json.Marshal(gridtypes.ZLogsData{ZMachine: "vm", Output: "ws://" + ln.Addr().String() + "/web/vm"})
	tk := provisiond.Task{TwinID: 7, DeploymentID: 3, Workload: gridtypes.Workload{Name: "logs", Type: gridtypes.ZLogsType, Data: data},
		Siblings: map[string]gridtypes.Result{"vm": {State: gridtypes.StateOk}}}
	if err := os.WriteFile(m.LogFile(tk, "vm"), []byte("booting\nmachine up\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Provision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	want := "/web/vm booting\n/web/vm machine up\n"
	for deadline := time.Now().Add(10 * time.Second); out.String() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("printed %q, want %q (stderr %q)", out.String(), want, errs.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLogsListenErrors(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"logs", "listen", "256.0.0.1:99999"}, Env{Stdout: &out, Stderr: &errb}); code != 1 || !strings.HasPrefix(errb.String(), "gridctl: listen: ") || strings.Count(errb.String(), "\n") != 1 {
		t.Fatalf("bad address: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := Run(context.Background(), []string{"logs", "listen"}, Env{Stdout: &out, Stderr: &errb}); code != 1 || !strings.Contains(errb.String(), "accepts 1 arg") {
		t.Fatalf("no address: exit %d, %q", code, errb.String())
	}
}
