package provisiond

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/grid4/grid4/bus"
	"github.com/grid4/grid4/gridtypes"
)

// TestBusObject serves the engine on the test Redis (GRID4_TEST_REDIS, as
// the bus package's tests) and drives it through the stub.
func TestBusObject(t *testing.T) {
	url := os.Getenv("GRID4_TEST_REDIS")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	prefix := "provisiontest:" + rand.Text()[:10] + ":"
	open := func() *bus.Client {
		c, err := bus.Open(url, bus.Options{Prefix: prefix, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatalf("redis %s: %v", url, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	te := newEngine(t, nil)
	srv := bus.NewServer(open(), bus.ServerOptions{})
	if err := srv.Handle(Object, te.Methods()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	stub := NewStub(open())
	cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
	defer ccancel()

	d := sample(1)
	te.twins.sign(t, &d)
	r, err := stub.Deploy(cctx, 1, d)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	te.wait(t, 1, r.Deployment.ID)
	got, err := stub.Get(cctx, 1, r.Deployment.ID)
	if err != nil || got.Pending != "" || len(got.Deployment.Workloads) != 7 {
		t.Fatalf("Get: %+v %v", got, err)
	}
	// Sentinels survive the bus.
	_, err = stub.Get(cctx, 2, r.Deployment.ID)
	wantErr(t, err, gridtypes.ErrForbidden, "")
	_, err = stub.Get(cctx, 1, 99)
	wantErr(t, err, gridtypes.ErrNotFound, "")
	bad := sample(1)
	bad.Workloads[0].Type = "nope"
	_, err = stub.Deploy(cctx, 1, bad)
	wantErr(t, err, gridtypes.ErrInvalid, "unknown workload type")
	if l, err := stub.List(cctx, 1); err != nil || len(l) != 1 {
		t.Fatalf("List: %v %v", l, err)
	}
	if c, err := stub.Capacity(cctx); err != nil || c.Used.CRU != 2 {
		t.Fatalf("Capacity: %+v %v", c, err)
	}
	if st, err := stub.Statistics(cctx); err != nil || st.Deployments != 1 {
		t.Fatalf("Statistics: %+v %v", st, err)
	}
	if _, err := stub.Delete(cctx, 1, r.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	te.wait(t, 1, r.Deployment.ID)
	if ch, err := stub.Changes(cctx, 1, r.Deployment.ID); err != nil || len(ch) == 0 {
		t.Fatalf("Changes: %v", err)
	}
}
