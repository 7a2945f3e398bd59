package zosd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/internal/walkthrough"
)

// TestNodeWalkthrough runs the walkthrough of docs/node.md as a shell
// script with registrar, gridctl and zosd built from this repository: a
// node started with one command hosts a user's machine (a virtual
// machine from an flist on a hub), volume, disk, network and log stream
// deployed by node id, keeps them across a restart and removes them.
func TestNodeWalkthrough(t *testing.T) {
	begin := time.Now()
	blocks := walkthrough.Blocks(t, "../../docs/node.md", 5)
	bin := walkthrough.Build(t, "github.com/grid4/grid4/cmd/registrar", "github.com/grid4/grid4/cmd/gridctl", "github.com/grid4/grid4/cmd/zosd",
		"github.com/grid4/grid4/cmd/hub", "github.com/grid4/grid4/cmd/g4init")
	api := freeAddr(t)
	work := t.TempDir()
	// A walkthrough that stops half way leaves its node's workloads (a
	// machine, file servers, mounts): none may outlive the test. Runs
	// before the directory's removal (cleanups run last-registered first).
	t.Cleanup(func() {
		if process.KillUsing(work) > 0 {
			time.Sleep(200 * time.Millisecond) // the killed let go of their mounts
		}
		mps, _ := mountinfo.List("/proc/self/mountinfo", work)
		for i := len(mps) - 1; i >= 0; i-- {
			_ = syscall.Unmount(mps[i], syscall.MNT_DETACH)
		}
	})
	// The public network's veth and addresses, unique to this run: other
	// tests make links and addresses on this host too.
	tag := fmt.Sprintf("%06d", time.Now().UnixNano()%1_000_000)
	pub, net := "wp"+tag, fmt.Sprintf("10.249.%d.", time.Now().UnixNano()%250)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", pub+"a").Run() })
	registrar, hub, logs := freeAddr(t), freeAddr(t), freeAddr(t)
	for i, b := range blocks {
		b = strings.ReplaceAll(b, "127.0.0.1:8080", registrar)
		b = strings.ReplaceAll(b, "127.0.0.1:8090", hub)
		b = strings.ReplaceAll(b, "127.0.0.1:8099", logs)
		b = strings.ReplaceAll(b, "g4pub0", pub+"a")
		b = strings.ReplaceAll(b, "g4pub1", pub+"b")
		b = strings.ReplaceAll(b, "198.51.100.", net)
		blocks[i] = strings.ReplaceAll(b, "127.0.0.1:2021", api)
	}
	out, parts, err := walkthrough.Script{
		Blocks: blocks, Bin: bin, Dir: work, Timeout: 4 * time.Minute,
		Env: []string{
			// The test's machine may have no default route nor reach a
			// geoip service; other tests' nodes share this host's
			// network names.
			"ZOSD_INTERFACE=lo", "ZOSD_GEOIP_URL=none", "ZOSD_MIN_FREE_DISK=1MiB",
			"ZOSD_NET_SALT=walk" + filepath.Base(work),
		},
	}.Run()
	if err != nil {
		l, _ := os.ReadFile(filepath.Join(work, "node.log"))
		t.Fatalf("walkthrough failed: %v\n%s\n--- node.log\n%s", err, out, l)
	}
	for _, c := range []struct {
		part int
		re   string
		n    int
	}{
		{1, `(?m)^url:\s+http://` + regexp.QuoteMeta(hub) + `/api/v1/repos/tf/apps/flists/web$`, 1},
		{2, `(?m)^online:\s+yes$`, 1},
		{2, `(?m)^api:\s+http://` + regexp.QuoteMeta(api) + `/api/v1/rpc$`, 1}, // found by id
		{3, `(?m)^1\s+0\s+6 ok\s+-\s+a web machine`, 1},
		{3, `(?m)^workloads\s+API on ` + regexp.QuoteMeta(api) + `; deployments 1, twins 1; workloads 6 ok; queued 0$`, 1},
		{3, `(?m)^machines\s+\S+`, 1},
		{3, `(?m)^"ip": "` + regexp.QuoteMeta(net) + `10/24"$`, 1},
		{3, `(?m)^hello from a machine$`, 1},            // through the port forward
		{3, `(?m)^public: hello from a machine$`, 1},    // on the machine's public address
		{3, `(?m)^machine up$`, 1},                      // the console, through zlogs
		{4, `(?m)^1\s+0\s+6 ok\s+-\s+a web machine`, 1}, // back after the restart
		{4, `(?m)^hello from a machine$`, 1},
		{4, `(?m)^public: hello from a machine$`, 1}, // the address stays with the machine
		{4, `(?m)^1$`, 1}, // started once: kept running across the restart
		{4, `(?m)^1\s+0\s+deleted\s+-\s+a web machine`, 1},
	} {
		if len(parts) != 6 || len(regexp.MustCompile(c.re).FindAllString(parts[c.part], -1)) != c.n {
			t.Errorf("walkthrough block %d: want %d lines like %s:\n%q", c.part+1, c.n, c.re, parts[c.part])
		}
	}
	if testing.Verbose() {
		t.Logf("output:\n%s", out)
	}
	t.Logf("walkthrough in %.1fs", time.Since(begin).Seconds())
}
