package zosd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/internal/regtest"
	"github.com/grid4/grid4/node/storaged"
)

// withDataDisk adds to the fixture root the disk holding data, as this
// test VM shows its virtio disk: "vda", rotational=1, with a device file
// the seek benchmark reads.
func withDataDisk(t *testing.T, root, data string) {
	t.Helper()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(data, &st); err != nil {
		t.Fatal(err)
	}
	major, minor := (st.Dev>>8)&0xfff|(st.Dev>>32)&^0xfff, st.Dev&0xff|(st.Dev>>12)&^0xff
	for p, c := range map[string]string{
		"sys/block/vda/size":             fmt.Sprint(256 << 21),
		"sys/block/vda/queue/rotational": "1",
		"sys/block/vda/removable":        "0",
		"sys/block/vda/device/vendor":    "0x1af4",
		"dev/vda":                        string(make([]byte, 1<<20)),
	} {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "sys/dev/block"), 0o755)
	if err := os.Symlink("../../block/vda", filepath.Join(root, "sys/dev/block", fmt.Sprintf("%d:%d", major, minor))); err != nil {
		t.Fatal(err)
	}
}

// TestNodeRegistersStorage: a node started without --sru on a host whose
// disk says it rotates (as virtual disks do) registers the SRU of
// storaged's pool with the registrar.
func TestNodeRegistersStorage(t *testing.T) {
	reg := regtest.Start(t, 2*time.Second)
	farm := reg.Farm(t)
	data := filepath.Join(t.TempDir(), "node")
	root := hostRoot(t)
	withDataDisk(t, root, data)
	n := newTestNode(t, reg, farm, data, bustest.Prefix(t), "--host-root", root)
	b := bustest.Open(t, n.prefix)
	n.start()
	st := n.waitReport("registration", registered).Registration

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pools, err := storaged.NewStub(b).Pools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 1 || pools[0].Name != "vda" || pools[0].Class.Rule != "seek benchmark" || pools[0].Size == 0 {
		t.Fatalf("pools: %+v", pools)
	}
	node, err := reg.Client(t).Node(ctx, st.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	if node.Resources.SRU != pools[0].Size || node.Resources.HRU != 0 {
		t.Fatalf("registered %+v; storaged's pool %+v", node.Resources, pools[0])
	}
}
