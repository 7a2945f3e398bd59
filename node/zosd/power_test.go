package zosd

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/powerd"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
	"github.com/grid4/grid4/registrar/api"
)

// TestNodePowerTarget: the farmer's power target off does not power off
// a node that hosts a deployment (powerd says why); once the deployment
// is deleted the node powers off — here the power-off command writes a
// file, the host's poweroff cannot run in a test.
// (Contracts are off: this test is about power.)
func TestNodePowerTarget(t *testing.T) {
	reg := regtest.Start(t, 2*time.Second)
	farm, farmer := reg.Farmer(t)
	offFile := filepath.Join(t.TempDir(), "powered-off")
	n := newTestNode(t, reg, farm, filepath.Join(t.TempDir(), "node"), bustest.Prefix(t), "--api-listen", freeAddr(t),
		"--health-interval", "200ms", "--power-off-command", "touch "+offFile, "--contracts", "off")
	b := bustest.Open(t, n.prefix)
	n.start()
	st := n.waitReport("registration", registered).Registration
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node, err := reg.Client(t).Node(ctx, st.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	key, twin := reg.Twin(t)
	c, err := zosclient.New(node.APIEndpoints[0], key, twin, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, err = c.Version(ctx); err != nil; _, err = c.Version(ctx) {
		if ctx.Err() != nil {
			t.Fatalf("zos-api-light never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	d := gridtypes.Deployment{TwinID: twin, Workloads: []gridtypes.Workload{
		{Name: "disk", Type: gridtypes.ZMountType, Data: json.RawMessage(`{"size":1048576}`)},
	}}
	r := deployAndSettle(t, ctx, c, d, key)

	if _, err := farmer.SetPowerTarget(ctx, st.NodeID, api.PowerOff); err != nil {
		t.Fatal(err)
	}
	power := powerd.NewStub(b)
	waitPower := func(what string, cond func(powerd.PowerState) bool) powerd.PowerState {
		t.Helper()
		for {
			ps, err := power.Power(ctx)
			if err == nil && cond(ps) {
				return ps
			}
			if ctx.Err() != nil {
				t.Fatalf("waiting for %s: %+v %v\nlog:\n%s", what, ps, err, n.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ps := waitPower("a refusal", func(ps powerd.PowerState) bool { return ps.Refused != "" })
	if ps.Target != api.PowerOff || ps.PoweringOff {
		t.Fatalf("with a deployment: %+v", ps)
	}
	if _, err := os.Stat(offFile); err == nil {
		t.Fatal("powered off with a deployment")
	}

	if _, err := c.Delete(ctx, r.Deployment.ID); err != nil {
		t.Fatal(err)
	}
	waitPower("powering off", func(ps powerd.PowerState) bool { return ps.PoweringOff })
	if _, err := os.Stat(offFile); err != nil {
		t.Fatalf("the power-off command did not run: %v", err)
	}
}
