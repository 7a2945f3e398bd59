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

	e, cancel, done = open(map[string]bool{"vol": true})
	defer func() { stop(e, cancel, done) }()
	var got gridtypes.Record
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got, err = e.Get(context.Background(), 1, r.Deployment.ID); err != nil {
			t.Fatal(err)
		}
		if states(got)["vol"] == gridtypes.StateError || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var restored []string
	for _, s := range rec.j.list() {
		restored = append(restored, strings.TrimPrefix(s, "restore "))
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
		if name == "vol" {
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
	last := changes[len(changes)-1]
	if last.Op != gridtypes.OpRestore || last.Workload != "vol" || last.State != gridtypes.StateError {
		t.Errorf("last change %+v, want vol's failed restore", last)
	}
}
