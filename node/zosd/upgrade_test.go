package zosd

import (
	"context"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/node/flistd"
	"github.com/grid4/grid4/node/internal/bustest"
	"github.com/grid4/grid4/node/upgrader"
	"github.com/grid4/grid4/node/upgrader/upgradetest"
)

// TestNodeUpgrade: an in-process node with the upgrader on, against a
// real hub and registrar: it upgrades when its farm is a test farm, the
// registrar then shows the new version (registrar_light, restarted onto
// the generation, reports it), `zosd status` shows it; a release whose zos
// program does not run is refused, and a node that is unhealthy after a
// switch (maintenance) switches back.
func TestNodeUpgrade(t *testing.T) {
	g := upgradetest.Start(t)
	farm := g.Farm(t)
	data := filepath.Join(t.TempDir(), "node")
	prefix := bustest.Prefix(t)
	b := bustest.Open(t, prefix)
	args := []string{
		"--registrar", g.RegistrarURL, "--farm", fmt.Sprint(farm), "--data", data,
		"--redis", bustest.URL(), "--bus-prefix", prefix, "--in-process",
		"--host-root", hostRoot(t), "--interface", "lo",
		"--geoip-url", "none", "--country", "Belgium", "--city", "Ghent",
		"--uptime-interval", "2s", "--uptime-min-interval", "200ms", "--retry-min", "100ms", "--retry-max", "500ms",
		"--min-free-disk", "1MiB", "--log-level", "warn", "--api-listen", "127.0.0.1:0",
		"--zos-version", "v4.1.0", "--hub", g.HubURL, "--upgrade-publisher-key", hex.EncodeToString(g.PublisherKey),
		"--upgrade-first-check", "1h", "--upgrade-health-stable", "300ms", "--upgrade-health-deadline", "3s",
	}
	n := &testNode{t: t, args: args, data: data, prefix: prefix}
	n.start()
	r := n.waitReport("registration", registered)
	nodeID := r.Registration.NodeID
	ctx := context.Background()
	zosVersion := func() string {
		node, err := g.Registrar(t).Node(ctx, nodeID)
		if err != nil {
			t.Fatal(err)
		}
		return node.ZosVersion
	}
	if v := zosVersion(); v != "v4.1.0" {
		t.Fatalf("registered with version %q", v)
	}
	if r.Upgrade == nil || !r.Upgrade.Enabled || r.Upgrade.Running.Version != "v4.1.0" {
		t.Fatalf("upgrade state: %+v", r.Upgrade)
	}
	check := func(want upgrader.Outcome, detail string) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		res, err := upgrader.NewStub(b).CheckNow(cctx)
		if err != nil || res.Outcome != want || !strings.Contains(res.Detail, detail) {
			t.Fatalf("check: %+v %v; want %s with %q\nlog:\n%s", res, err, want, detail, n.stderr)
		}
	}

	// No version on the registrar yet (a 404 through the gateway).
	check(upgrader.NoVersion, "the registrar has no ZOS version set")

	_, v411 := g.Release(t, "v4.1.1", nil, nil, upgradetest.Tree{"bin/zosd": upgradetest.ZosScript("v4.1.1")})
	g.SetVersion(t, "v4.1.1", false, farm)
	check(upgrader.Upgraded, "upgraded to v4.1.1 (generation 1")
	deadline := time.Now().Add(20 * time.Second)
	for zosVersion() != "v4.1.1" {
		if time.Now().After(deadline) {
			t.Fatalf("the registrar shows %q, not v4.1.1\nlog:\n%s", zosVersion(), n.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	text, _ := n.status("text")
	for _, want := range []string{"version       v4.1.1 (generation 1, release ", "  previous    v4.1.0 (bootstrap)",
		fmt.Sprintf("upgrades      tf/zos, farm %d", farm), "upgraded: upgraded to v4.1.1", fmt.Sprintf("registrar   v4.1.1 (record 1), test farms [%d] only", farm), "upgrader"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}

	g.Release(t, "v4.1.2", nil, nil, upgradetest.Tree{"bin/zosd": upgradetest.BrokenBinaryScript})
	g.SetVersion(t, "v4.1.2", true)
	check(upgrader.Refused, "exec format error")
	text, _ = n.status("text")
	if !strings.Contains(text, "REFUSED: ") || !strings.Contains(text, "refused     v4.1.2 (record 2") {
		t.Errorf("status after a refused release:\n%s", text)
	}

	// Unhealthy after the switch: back to v4.1.1.
	os.WriteFile(filepath.Join(data, "maintenance"), []byte("disk swap\n"), 0o600)
	g.Release(t, "v4.1.3", nil, nil, upgradetest.Tree{"bin/zosd": upgradetest.ZosScript("v4.1.3")})
	g.SetVersion(t, "v4.1.3", true)
	check(upgrader.RolledBack, "node unhealthy: maintenance")
	os.Remove(filepath.Join(data, "maintenance"))
	r = n.waitReport("the rollback", func(r Report) bool {
		return r.Upgrade != nil && r.Upgrade.RolledBack != nil && r.Upgrade.RolledBack.Version == "v4.1.3"
	})
	if r.Upgrade.Running.Version != "v4.1.1" || zosVersion() != "v4.1.1" {
		t.Errorf("after the rollback: running %+v, registrar %s", r.Upgrade.Running, zosVersion())
	}
	text, _ = n.status("text")
	if !strings.Contains(text, "rolled back v4.1.3 (record 3") || !strings.Contains(text, "ROLLED BACK: rolled back from v4.1.3") {
		t.Errorf("status after a rollback:\n%s", text)
	}
	t.Logf("status:\n%s", text)

	// flistd serves the block cache the upgrader filled: mounting
	// v4.1.1's zos package downloads nothing (the lazy mount's server
	// would add the blocks it downloads to the cache). The mount, and
	// what was written into it, come back when the node starts after a
	// reboot.
	fd := flistd.NewStub(b)
	before := countFiles(t, filepath.Join(data, "flist", "cache", "blocks"))
	target := filepath.Join(data, "mnt", "zos")
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	stopFlistServers(t, data)
	if _, err := fd.Mount(ctx, g.HubURL+"/api/v1/flists/"+v411["zos"].ID().String(), target); err != nil {
		t.Fatalf("mount through flistd: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(target, "bin/zosd")); err != nil || !strings.Contains(string(got), "v4.1.1") {
		t.Fatalf("mounted package: %q %v", got, err)
	}
	if after := countFiles(t, filepath.Join(data, "flist", "cache", "blocks")); after != before {
		t.Errorf("mounting a package the upgrader installed downloaded %d blocks", after-before)
	}
	if err := os.WriteFile(filepath.Join(target, "note"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	n.stop()
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	n.start()
	deadline = time.Now().Add(20 * time.Second)
	for {
		if got, err := os.ReadFile(filepath.Join(target, "note")); err == nil && string(got) == "kept" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flist mount did not come back after the restart\nlog:\n%s", n.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := fd.Unmount(ctx, target); err != nil {
		t.Fatal(err)
	}
	if ms, err := fd.Mounts(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("mounts after unmount: %+v %v", ms, err)
	}
	if pids, _ := filepath.Glob(filepath.Join(data, "flist", "lazy", "*.pid")); len(pids) != 0 {
		t.Fatalf("lazy mount servers left after the last unmount: %v", pids)
	}
}

// countFiles counts the regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
