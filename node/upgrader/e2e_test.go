package upgrader

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/keys"
	"github.com/grid4/grid4/node/upgrader/upgradetest"
)

// TestRollout is the rollout of the "Done when", with a real hub,
// a real registrar and three nodes (each a supervisor running its modules
// from the current generation, as processes, and an upgrader with flistd):
// a version limited to a test farm upgrades only that farm's node; setting
// safe_to_upgrade upgrades the rest; a release whose modules die, one
// whose zos program does not run, one whose flist is missing or corrupt
// on the hub, a tampered block and a tag signed by another key all leave
// the nodes on the old version, running; a rolled back release is not
// tried again until the registrar's record changes.
func TestRollout(t *testing.T) {
	begin := time.Now()
	step := func(name string, since time.Time) { t.Logf("%-62s %5.2fs", name, time.Since(since).Seconds()) }
	g := upgradetest.Start(t)
	testFarm, farm := g.Farm(t), g.Farm(t)
	n1 := startNode(t, newSpec(t, g, testFarm, "v4.1.0"), options{})
	n2 := startNode(t, newSpec(t, g, farm, "v4.1.0"), options{})
	n3 := startNode(t, newSpec(t, g, farm, "v4.1.0"), options{})
	nodes := []*testNode{n1, n2, n3}
	for _, n := range nodes {
		n.waitModules(t, "v4.1.0")
	}

	// --- a version for the test farm only ------------------------------
	s := time.Now()
	h1 := release(t, g, "v4.1.1", upgradetest.ZosScript("v4.1.1"))
	v := g.SetVersion(t, "v4.1.1", false, testFarm)
	n1.clearMarks(t)
	r := n1.expect(t, Upgraded, "upgraded to v4.1.1 (generation 1")
	n1.waitModules(t, "v4.1.1")
	for _, n := range []*testNode{n2, n3} {
		n.expect(t, Waiting, "v4.1.1 is not safe to upgrade yet and farm")
		checkGeneration(t, n.spec.Dir, "v4.1.0")
		if m := n.marks(t); m["noded"] != "v4.1.0" {
			t.Fatalf("a node outside the test farm changed: %v", m)
		}
	}
	st := n1.state(t)
	if st.Running.Version != "v4.1.1" || st.Running.Generation != 1 || st.Running.Release != h1 || st.Running.Serial != v.Serial ||
		st.Previous == nil || st.Previous.Version != "v4.1.0" || st.SeenSerial != v.Serial || st.Trial != nil || st.Last == nil || *st.Last != r {
		t.Fatalf("state of the upgraded node: %+v", st)
	}
	checkGeneration(t, n1.spec.Dir, "v4.1.1")
	step("test farm: its node upgraded, the others wait", s)

	// --- safe to upgrade: everyone ---------------------------------------
	s = time.Now()
	g.SetVersion(t, "v4.1.1", true)
	n1.expect(t, UpToDate, "running v4.1.1")
	for _, n := range []*testNode{n2, n3} {
		n.clearMarks(t)
		n.expect(t, Upgraded, "upgraded to v4.1.1")
		n.waitModules(t, "v4.1.1")
		checkGeneration(t, n.spec.Dir, "v4.1.1")
	}
	step("safe_to_upgrade: the other nodes upgraded", s)

	// --- modules that die: rolled back, not retried ----------------------
	s = time.Now()
	pkgDir := func(n *testNode, name string) os.FileInfo {
		t.Helper()
		fi, err := os.Stat(filepath.Join(n.spec.Dir, CurrentLink, PackageLinks, name) + "/")
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	containerdBefore := pkgDir(n1, "containerd")
	blocksBefore := g.Hub().Blocks()
	release(t, g, "v4.1.2", upgradetest.BrokenModuleScript("v4.1.2"))
	v = g.SetVersion(t, "v4.1.2", true)
	n1.clearMarks(t)
	n1.expect(t, RolledBack, "module noded: cannot start: missing dependency")
	n1.waitModules(t, "v4.1.1")
	checkGeneration(t, n1.spec.Dir, "v4.1.1")
	// containerd did not change: reused as it was, not downloaded again;
	// only the zos package's two small files were.
	if got := g.Hub().Blocks() - blocksBefore; got != 2 {
		t.Errorf("%d blocks downloaded for a release that changes two small files", got)
	}
	if after := pkgDir(n1, "containerd"); !os.SameFile(containerdBefore, after) {
		t.Error("the unchanged containerd package was installed again")
	}
	st = n1.state(t)
	if st.RolledBack == nil || st.RolledBack.Version != "v4.1.2" || st.RolledBack.Serial != v.Serial || !st.RolledBack.Switched ||
		!strings.Contains(st.RolledBack.Reason, "not healthy within") || st.Running.Version != "v4.1.1" || st.Trial != nil {
		t.Fatalf("state after the rollback: %+v %+v", st, st.RolledBack)
	}
	if gens := generationsOnDisk(t, n1.spec.Dir); !slices.Equal(gens, []uint64{1}) {
		t.Errorf("generations after the rollback: %v", gens)
	}
	n1.expect(t, Skipped, "v4.1.2 was rolled back under record")
	n1.waitModules(t, "v4.1.1")
	// The same version under a new record is tried again (and fails
	// again: nothing changed).
	g.SetVersion(t, "v4.1.2", true, testFarm)
	n1.expect(t, RolledBack, "rolled back from v4.1.2")
	step("a release whose modules die: rolled back, then only on a new record", s)

	// --- a zos program that does not run: refused before the switch ----
	s = time.Now()
	release(t, g, "v4.1.3", upgradetest.BrokenBinaryScript)
	g.SetVersion(t, "v4.1.3", true)
	n2.clearMarks(t)
	n2.expect(t, Refused, "the zos program does not run: bin/zosd version: exit status 126: exec format error")
	n2.expect(t, Skipped, "v4.1.3 was refused under record")
	checkGeneration(t, n2.spec.Dir, "v4.1.1")
	if m := n2.marks(t); len(m) != 0 {
		t.Errorf("modules restarted for a refused release: %v", m)
	}
	if gens := generationsOnDisk(t, n2.spec.Dir); !slices.Equal(gens, []uint64{1}) {
		t.Errorf("generations after a refused release: %v", gens)
	}
	step("a zos program that does not run: refused, modules untouched", s)

	// --- missing and corrupt flists, a tampered block, a forged tag ------
	s = time.Now()
	_, fl := g.Release(t, "v4.1.4", map[string]upgradetest.Tree{"containerd": containerd()}, []string{"containerd"},
		upgradetest.Tree{"bin/zosd": upgradetest.ZosScript("v4.1.4"), "etc/zos.conf": "version = v4.1.4\n"})
	g.SetVersion(t, "v4.1.4", true)
	doc := g.FlistFile(t, fl["zos"].ID())
	if err := os.Remove(doc); err != nil {
		t.Fatal(err)
	}
	n3.expect(t, Failed, "installing package zos")
	if err := os.WriteFile(doc, []byte(`{"entries":[],"format":"grid4-flist/1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = n3.expect(t, Failed, "installing package zos")
	checkGeneration(t, n3.spec.Dir, "v4.1.1")
	t.Logf("corrupt flist: %s", r.Detail)

	// A package whose only block is tampered with on the hub's disk.
	_, fl = g.Release(t, "v4.1.5", map[string]upgradetest.Tree{"containerd": containerd()}, []string{"containerd"},
		upgradetest.Tree{"bin/zosd": upgradetest.ZosScript("v4.1.5"), "etc/zos.conf": "version = v4.1.5\n"})
	g.SetVersion(t, "v4.1.5", true)
	blk := g.BlockFile(t, fl["zos"].Entries[1].Blocks[0].ID)
	stored, err := os.ReadFile(blk)
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), stored...)
	tampered[len(tampered)-2] ^= 0xff
	if err := os.WriteFile(blk, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	r = n3.expect(t, Failed, "corrupt")
	if !strings.Contains(r.Detail, "hub serves corrupt content") {
		t.Errorf("tampered block: %s", r.Detail)
	}
	checkGeneration(t, n3.spec.Dir, "v4.1.1")
	if ents, _ := os.ReadDir(filepath.Join(n3.spec.Dir, PackagesDir)); len(ents) != 2 {
		t.Errorf("packages after a tampered block: %v", ents)
	}

	// The hub serves a tag for v4.1.5 signed by another key.
	other, err := keys.Generate(keys.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	forged := upgradetest.SignTag(t, other, "v4.1.5", upgradetest.Entry{Name: "zos", Flist: fl["zos"].ID(), Role: flist.RoleZos})
	g.Hub().ReplaceTag(t, "v4.1.5", &forged)
	n3.expect(t, Failed, "bad tag signature")
	g.Hub().ReplaceTag(t, "v4.1.5", nil)
	n3.waitModules(t, "v4.1.1")
	step("missing, corrupt flists, a tampered block, a forged tag: no switch", s)

	// --- a good release once the hub is repaired --------------------------
	s = time.Now()
	if err := os.WriteFile(blk, stored, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		n.clearMarks(t)
		n.expect(t, Upgraded, "upgraded to v4.1.5")
		n.waitModules(t, "v4.1.5")
	}
	// Kept: the current generation and the previous one.
	if gens := generationsOnDisk(t, n1.spec.Dir); len(gens) != 2 {
		t.Errorf("generations: %v", gens)
	}
	step("the repaired release: every node upgraded", s)
	step("total", begin)
}
