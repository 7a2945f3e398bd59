package zlogs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/wstest"
	"github.com/grid4/grid4/node/provisiond"
)

func task(machine, output string) provisiond.Task {
	data, _ := json.Marshal(gridtypes.ZLogsData{ZMachine: machine, Output: output})
	return provisiond.Task{TwinID: 7, DeploymentID: 3, Workload: gridtypes.Workload{Name: "logs", Type: gridtypes.ZLogsType, Data: data},
		Siblings: map[string]gridtypes.Result{machine: {State: gridtypes.StateOk}}}
}

// TestMachineNotRunning: a stream of a machine that failed, or was lost
// at a restart, is refused with the machine's reason: it would read ok
// and carry nothing.
func TestMachineNotRunning(t *testing.T) {
	m, err := New(Config{LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tk := task("vm", "ws://127.0.0.1:9/logs")
	tk.Siblings["vm"] = gridtypes.Result{State: gridtypes.StateError, Message: "no hypervisor"}
	if _, err := m.Provision(context.Background(), tk); err == nil || !strings.Contains(err.Error(), `machine "vm" is in state error: no hypervisor`) {
		t.Errorf("Provision: %v", err)
	}
	tk.State = gridtypes.StateOk
	if err := m.Restore(context.Background(), tk); err == nil || !strings.Contains(err.Error(), "no hypervisor") {
		t.Errorf("Restore: %v", err)
	}
	delete(tk.Siblings, "vm")
	if err := m.Restore(context.Background(), tk); err == nil {
		t.Error("Restore of a stream without its machine succeeded")
	}
	if m.Streaming(tk.ID()) {
		t.Error("a refused stream runs")
	}
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStreamsMachineLog(t *testing.T) {
	srv := wstest.New(t)
	srv.DropAfter = 3 // the collector drops the connection after 3 lines
	dir := t.TempDir()
	m, err := New(Config{LogDir: dir, Poll: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	tk := task("vm", srv.URL("/collect"))
	logFile := m.LogFile(tk, "vm")
	if logFile != filepath.Join(dir, "7-3-vm.log") {
		t.Fatalf("log file %s", logFile)
	}
	// Lines written before the stream starts are sent too.
	appendLines(t, logFile, "boot 1", "boot 2")
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(Result); r.Source != logFile || r.Output != srv.URL("/collect") {
		t.Fatalf("result %+v", r)
	}
	srv.Expect(t, "boot 1", "boot 2")
	// The third line ends the first connection. Lines sent into the dead
	// connection before the client notices are lost (WebSocket has no
	// acknowledgements); once it notices, it reconnects and goes on.
	appendLines(t, logFile, "line 3")
	srv.Expect(t, "line 3")
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		appendLines(t, logFile, fmt.Sprintf("probe %d", i))
		select {
		case m := <-srv.Messages:
			if !strings.HasPrefix(m, "probe ") {
				t.Fatalf("unexpected %q", m)
			}
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("the stream did not reconnect")
			}
			continue
		}
		break
	}
	// Drain the probes still in flight.
	for drained := false; !drained; {
		select {
		case <-srv.Messages:
		case <-time.After(100 * time.Millisecond):
			drained = true
		}
	}
	// A partial line waits for its newline.
	f, _ := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("half")
	srv.ExpectNothing(t, 100*time.Millisecond)
	f.WriteString(" and half\n")
	f.Close()
	srv.Expect(t, "half and half")

	// Paused: nothing goes out; resumed: new lines only.
	if err := m.Pause(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if m.Streaming(tk.ID()) {
		t.Fatal("still streaming while paused")
	}
	appendLines(t, logFile, "while paused")
	srv.ExpectNothing(t, 100*time.Millisecond)
	if err := m.Resume(ctx, tk); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the resumed stream starts at the end
	appendLines(t, logFile, "after resume")
	srv.Expect(t, "after resume")

	// Truncated (log rotated in place): read from the start again.
	if err := os.Truncate(logFile, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	appendLines(t, logFile, "rotated")
	srv.Expect(t, "rotated")

	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	appendLines(t, logFile, "after delete")
	srv.ExpectNothing(t, 100*time.Millisecond)
}

func TestProvisionFailsWhenTargetIsDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	m, _ := New(Config{LogDir: t.TempDir(), DialTimeout: time.Second})
	_, err := m.Provision(context.Background(), task("vm", "ws://"+addr+"/x"))
	if err == nil || !strings.Contains(err.Error(), "zlogs: cannot connect to ws://"+addr+"/x") {
		t.Fatalf("error %v", err)
	}
	if m.Streaming(task("vm", "").ID()) {
		t.Fatal("a failed provision left a stream")
	}
}

func TestRestoreSkipsPaused(t *testing.T) {
	srv := wstest.New(t)
	dir := t.TempDir()
	m, _ := New(Config{LogDir: dir, Poll: 10 * time.Millisecond})
	defer m.Close()
	tk := task("vm", srv.URL("/"))
	tk.State = gridtypes.StatePaused
	if err := m.Restore(context.Background(), tk); err != nil || m.Streaming(tk.ID()) {
		t.Fatalf("restored a paused stream: %v", err)
	}
	tk.State = gridtypes.StateOk
	// A stream that never recorded a position sends the whole log.
	appendLines(t, m.LogFile(tk, "vm"), "old")
	if err := m.Restore(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	appendLines(t, m.LogFile(tk, "vm"), "new")
	srv.Expect(t, "old", "new")
}

// TestRestoreCarriesOn: a stream restored after the node stopped sends
// what the machine wrote meanwhile, and not again what it had sent; a
// resumed one only what comes after; Deprovision forgets the position.
func TestRestoreCarriesOn(t *testing.T) {
	srv := wstest.New(t)
	dir := t.TempDir()
	cfg := Config{LogDir: dir, Poll: 10 * time.Millisecond}
	m, _ := New(cfg)
	ctx := context.Background()
	tk := task("vm", srv.URL("/"))
	logFile := m.LogFile(tk, "vm")
	appendLines(t, logFile, "boot")
	if _, err := m.Provision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	srv.Expect(t, "boot")
	appendLines(t, logFile, "up\r") // a serial console's CR LF
	srv.Expect(t, "up")
	m.Close() // the node stops
	appendLines(t, logFile, "while down 1", "while down 2")

	m, _ = New(cfg)
	defer m.Close()
	if err := m.Restore(ctx, tk); err != nil {
		t.Fatal(err)
	}
	srv.Expect(t, "while down 1", "while down 2")
	srv.ExpectNothing(t, 100*time.Millisecond)

	// A log replaced while the node was down is sent from its start.
	m.Close()
	if err := os.Remove(logFile); err != nil {
		t.Fatal(err)
	}
	appendLines(t, logFile, "new log")
	if err := m.Restore(ctx, tk); err != nil {
		t.Fatal(err)
	}
	srv.Expect(t, "new log")

	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m.positionFile(tk.ID())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("position left after deprovision: %v", err)
	}
}
