package provisiond

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
)

// restoringRecorder restores by recording "restore <workload>", failing
// for the workloads in lost.
type restoringRecorder struct {
	*recorder
	lost map[string]bool
}

func (r restoringRecorder) Restore(_ context.Context, t Task) error {
	r.j.add("restore " + t.Workload.Name)
	if t.Workload.Name == "logs" {
		r.j.add("logs sees vm " + string(t.Siblings["vm"].State))
	}
	if r.lost[t.Workload.Name] {
		return errors.New("image file is gone")
	}
	return nil
}

// TestRestoreOnStart: every start restores ok workloads in processing
// order, and one that cannot be brought back reads error with the reason
// (in its result and its history), never ok.
func TestRestoreOnStart(t *testing.T) {
	dir := t.TempDir()
	tw := newTwins(t, 1)
	rec := &recorder{j: &journal{}, fail: map[string]error{}, block: map[string]chan struct{}{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	open := func(lost map[string]bool) (*Engine, context.CancelFunc, chan error) {
		m := map[gridtypes.WorkloadType]Manager{}
		for _, typ := range gridtypes.Types() {
			m[typ] = restoringRecorder{rec, lost}
		}
		e, err := Open(Config{Dir: dir, Managers: m, Keys: tw, Capacity: bigCapacity, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		return e, cancel, done
	}
	stop := func(e *Engine, cancel context.CancelFunc, done chan error) {
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		e.Close()
	}

	e, cancel, done := open(nil)
	d := sample(1)
	tw.sign(t, &d)
	r, err := e.Deploy(context.Background(), 1, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if r, err = e.Wait(ctx, 1, r.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	for name, st := range states(r) {
		if st != gridtypes.StateOk {
			t.Fatalf("%s: %s before the restart", name, st)
		}
	}
	stop(e, cancel, done)
	rec.j.reset()

	e, cancel, done = open(map[string]bool{"vol": true, "vm": true})
	defer func() { stop(e, cancel, done) }()
	var got gridtypes.Record
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, err = e.Get(context.Background(), 1, r.Deployment.ID); err != nil {
			t.Fatal(err)
		}
		// Every workload restored (and the stream's check journaled).
		if (states(got)["vm"] == gridtypes.StateError && len(rec.j.list()) == len(got.Deployment.Workloads)+1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var restored []string
	sawLostMachine := false
	for _, s := range rec.j.list() {
		if s == "logs sees vm error" {
			sawLostMachine = true
			continue
		}
		restored = append(restored, strings.TrimPrefix(s, "restore "))
	}
	if !sawLostMachine {
		t.Errorf("the log stream's restore did not see its machine lost: %v", rec.j.list())
	}
	// Storage (disk, vol, fs), networks (net, ip), machines, logs.
	stage := map[string]int{}
	for _, w := range got.Deployment.Workloads {
		stage[w.Name] = w.Type.Stage()
	}
	if len(restored) != len(got.Deployment.Workloads) {
		t.Fatalf("restored %v, want every workload once", restored)
	}
	for i := 1; i < len(restored); i++ {
		if stage[restored[i-1]] > stage[restored[i]] {
			t.Fatalf("restore order %v is not the processing order", restored)
		}
	}
	for name, st := range states(got) {
		want := gridtypes.StateOk
		if name == "vol" || name == "vm" {
			want = gridtypes.StateError
		}
		if st != want {
			t.Errorf("%s: %s after the restart, want %s", name, st, want)
		}
	}
	vol, _ := got.Deployment.Get("vol")
	if !strings.Contains(vol.Result.Message, "restore: image file is gone") {
		t.Errorf("vol's message %q does not give the reason", vol.Result.Message)
	}
	changes, err := e.Changes(context.Background(), 1, r.Deployment.ID)
	if err != nil {
		t.Fatal(err)
	}
	lost := map[string]bool{}
	for _, c := range changes {
		if c.Op == gridtypes.OpRestore && c.State == gridtypes.StateError {
			lost[c.Workload] = true
		}
	}
	if len(lost) != 2 || !lost["vol"] || !lost["vm"] {
		t.Errorf("restore history %v, want vol and vm lost", lost)
	}
}
