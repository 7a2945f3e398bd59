package contd

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/grid4/grid4/node/internal/bustest"
)

// The module serves the service on the bus: a container is started,
// inspected, paused, resumed and stopped through the stub, and errors
// keep their codes.
func TestModuleOnTheBus(t *testing.T) {
	needHost(t)
	c := bustest.New(t)
	s := newService(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ModuleConfig{Bus: c, Containers: s.c, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	stub := NewStub(c)
	sp := spec(t, "1-1-bus", `echo over the bus; exec sleep 1000`)
	if err := stub.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	logHas(t, sp, "over the bus\n")
	st, err := stub.State(ctx, sp.ID)
	if err != nil || st.Status != Running || st.Pid == 0 {
		t.Fatalf("State = %+v, %v", st, err)
	}
	if list, err := stub.List(ctx); err != nil || len(list) != 1 || list[0] != st {
		t.Errorf("List = %+v, %v; want [%+v]", list, err, st)
	}
	if stats, err := stub.Stats(ctx, sp.ID); err != nil || stats.Pids != 1 {
		t.Errorf("Stats = %+v, %v", stats, err)
	}
	if err := stub.Pause(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := stub.State(ctx, sp.ID); err != nil || st.Status != Paused {
		t.Errorf("after Pause: %+v, %v", st, err)
	}
	if err := stub.Resume(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := stub.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s, sp.ID)
	if _, err := stub.State(ctx, sp.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("State of a stopped container: %v, want %s", err, ErrNotFound)
	}
	if err := stub.Resume(ctx, sp.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resume of a stopped container: %v", err)
	}
	bad := sp
	bad.Args = nil
	if err := stub.Start(ctx, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("Start of an invalid spec: %v, want %s", err, ErrInvalid)
	}
}
