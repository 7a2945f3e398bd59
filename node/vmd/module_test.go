package vmd

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/grid4/grid4/node/internal/bustest"
)

// The module serves the service on the bus: Info, and errors keeping
// their codes. (Booting machines is TestMachine's; a boot over the bus
// would only add minutes.)
func TestModuleOnTheBus(t *testing.T) {
	c := bustest.New(t)
	conf := config(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ModuleConfig{Bus: c, Machines: conf, Logger: slog.New(slog.DiscardHandler)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	stub := NewStub(c)
	info, err := stub.Info(ctx)
	if err != nil || len(info.Backends) != len(Backends) {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	if list, err := stub.List(ctx); err != nil || len(list) != 0 {
		t.Errorf("List = %+v, %v", list, err)
	}
	if _, err := stub.State(ctx, "nothing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("State: %v, want %s", err, ErrNotFound)
	}
	for name, call := range map[string]func() error{
		"Pause":  func() error { return stub.Pause(ctx, "nothing") },
		"Resume": func() error { return stub.Resume(ctx, "nothing") },
		"Update": func() error { return stub.Update(ctx, Spec{ID: "nothing"}) },
	} {
		if err := call(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want %s", name, err, ErrNotFound)
		}
	}
	if err := stub.Stop(ctx, "nothing"); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := stub.Start(ctx, Spec{ID: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Start of an invalid spec: %v, want %s", err, ErrInvalid)
	}
	if err := Run(ctx, ModuleConfig{Bus: c}); err == nil {
		t.Error("Run without a directory succeeded")
	}
}
