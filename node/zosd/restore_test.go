package zosd

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	zosclient "github.com/grid4/grid4/node/zosapi/client"
)

// deployAndSettle deploys d and waits until none of its workloads is
// still init; it returns the deployment's record.
func deployAndSettle(t *testing.T, ctx context.Context, c *zosclient.Client, d gridtypes.Deployment, key keys.KeyPair) gridtypes.Record {
	t.Helper()
	if err := d.Sign(d.TwinID, key); err != nil {
		t.Fatal(err)
	}
	r, err := c.Deploy(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if r, err = c.Get(ctx, r.Deployment.ID); err != nil {
			t.Fatal(err)
		}
		settled := true
		for _, w := range r.Deployment.Workloads {
			settled = settled && w.Result != nil && w.Result.State != gridtypes.StateInit
		}
		if settled {
			return r
		}
		if ctx.Err() != nil {
			t.Fatal("deployment never settled")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// workload returns the named workload of r with its result, failing the
// test when it is not in state want.
func workload(t *testing.T, r gridtypes.Record, name string, want gridtypes.State) *gridtypes.Workload {
	t.Helper()
	w, ok := r.Deployment.Get(name)
	if !ok || w.Result == nil || w.Result.State != want {
		t.Fatalf("%s: %+v, want %s", name, w.Result, want)
	}
	return w
}

// TestNodeRestoresStorage: what a reboot does to storage — the node
// stopped, a volume's loop mount gone, a disk image lost — is what the
// next start finds: the volume is mounted again from storaged's pool
// (over the bus) with the data written before, and the lost disk reads
// error with the reason instead of ok.
func TestNodeRestoresStorage(t *testing.T) {
	reg := regtest.Start(t, 2*time.Second)
	farm := reg.Farm(t)
	addr := freeAddr(t)
	// About storage, not contracts: any twin may deploy.
	n := newTestNode(t, reg, farm, filepath.Join(t.TempDir(), "node"), bustest.Prefix(t), "--api-listen", addr, "--contracts", "off")
	bustest.Open(t, n.prefix)
	n.start()
	n.waitReport("registration", registered)

	key, twin := reg.Twin(t)
	c, err := zosclient.New("http://"+addr, key, twin, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitAPI(t, ctx, c, n)
	r := deployAndSettle(t, ctx, c, gridtypes.Deployment{TwinID: twin, Workloads: []gridtypes.Workload{
		{Name: "disk", Type: gridtypes.ZMountType, Data: json.RawMessage(`{"size":1048576}`)},
		{Name: "data", Type: gridtypes.VolumeType, Data: json.RawMessage(`{"size":16777216}`)},
	}}, key)
	var vol, disk struct {
		Path        string
		Enforcement string
	}
	json.Unmarshal(workload(t, r, "data", gridtypes.StateOk).Result.Data, &vol)
	json.Unmarshal(workload(t, r, "disk", gridtypes.StateOk).Result.Data, &disk)
	t.Cleanup(func() {
		if ok, _ := mountinfo.IsMountPoint(vol.Path); ok {
			exec.Command("umount", "-l", vol.Path).Run()
		}
	})
	if vol.Enforcement != "loop-ext4" {
		t.Fatalf("volume %+v: this test machine can loop-mount", vol)
	}
	if err := os.WriteFile(filepath.Join(vol.Path, "kept"), []byte("written before the reboot"), 0o600); err != nil {
		t.Fatal(err)
	}

	n.stop()
	if out, err := exec.Command("umount", vol.Path).CombinedOutput(); err != nil {
		t.Fatalf("umount %s: %v %s", vol.Path, err, out)
	}
	if err := os.Remove(disk.Path); err != nil {
		t.Fatal(err)
	}
	n.start()
	waitAPI(t, ctx, c, n)

	// The engine restores while the API already answers (engine.Run):
	// wait for the restore to have run — the lost disk in error and the
	// volume mounted — within the deadline.
	for {
		if r, err = c.Get(ctx, r.Deployment.ID); err != nil {
			t.Fatal(err)
		}
		w, _ := r.Deployment.Get("disk")
		mounted, _ := mountinfo.IsMountPoint(vol.Path)
		if w.Result.State == gridtypes.StateError && mounted {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("after the restart: disk %+v, volume %s mounted %v\nlog:\n%s", w.Result, vol.Path, mounted, n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	workload(t, r, "data", gridtypes.StateOk)
	if b, err := os.ReadFile(filepath.Join(vol.Path, "kept")); err != nil || string(b) != "written before the reboot" {
		t.Fatalf("volume data after the restart: %q %v", b, err)
	}
	w := workload(t, r, "disk", gridtypes.StateError)
	if !strings.Contains(w.Result.Message, "restore") || !strings.Contains(w.Result.Message, disk.Path) {
		t.Fatalf("lost disk: %q", w.Result.Message)
	}
}

// waitAPI waits until zos-api-light answers.
func waitAPI(t *testing.T, ctx context.Context, c *zosclient.Client, n *testNode) {
	t.Helper()
	for {
		_, err := c.Version(ctx)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("zos-api-light never answered: %v\nlog:\n%s", err, n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
