package provisiond

import (
	"context"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/bustest"
)

// TestBusObject serves the engine on the test Redis (bustest) and drives
// it through the stub, on a client of its own.
func TestBusObject(t *testing.T) {
	te := newEngine(t, nil)
	prefix := bustest.Prefix(t)
	bustest.Serve(t, bustest.Open(t, prefix), Object, te.Methods())
	stub := NewStub(bustest.Open(t, prefix))
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
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
	// ... and the message is the engine's, once (callers such as the
	// node-to-node API pass it on to people).
	if _, local := te.Get(cctx, 1, 99); err.Error() != local.Error() {
		t.Fatalf("over the bus %q, in process %q", err, local)
	}
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
