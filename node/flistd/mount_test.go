package flistd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/flist"
	hubclient "github.com/grid4/grid4/hub/client"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/internal/process"
	"github.com/grid4/grid4/oci"
	"github.com/grid4/grid4/oci/ocitest"
)

// mounter is a Mounter on the env's cache with its own directory, mounting
// under root: lazily, or from materialised trees.
func (e *env) mounter(m *Manager, dir, root string, materialize bool) *Mounter {
	e.t.Helper()
	mt, err := NewMounter(m, MounterConfig{Dir: dir, Root: root, Lazy: !materialize, ServeCommand: serveCommand(e.t), Logger: e.log})
	if err != nil {
		e.t.Fatal(err)
	}
	if !materialize && !mt.lazy {
		e.t.Fatal("no FUSE here (/dev/fuse): scripts/test-services.sh installs fuse3")
	}
	return mt
}

// serveArg makes the test binary a lazy mount's server (TestMain).
const serveArg = "grid4-flistd-serve-lazy"

// TestMain runs the test binary as a lazy mount's server when the
// Mounter starts it so (serveCommand), or the tests.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == serveArg {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := ServeLazyMain(ctx, os.Args[2:], os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveCommand runs the test binary as a lazy mount's server: a process
// of its own, as on a node.
func serveCommand(t *testing.T) []string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, serveArg}
}

// detachUnder makes sure nothing stays mounted under root when the test
// ends (a failed test leaves its mounts): detached, deepest first, and
// the servers of lazy mounts under root stopped.
func detachUnder(t *testing.T, root string) {
	t.Cleanup(func() {
		mps := mountsUnder(t, root)
		for i := len(mps) - 1; i >= 0; i-- {
			_ = unix.Unmount(mps[i], unix.MNT_DETACH)
		}
		pids, _ := filepath.Glob(filepath.Join(root, "*", "lazy", "*.pid"))
		for _, p := range pids {
			_ = process.Stop(context.Background(), p, strings.TrimSuffix(p, ".pid"), time.Second)
		}
	})
}

// mountsUnder lists the mount points under root, in mount order.
func mountsUnder(t *testing.T, root string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 {
			if mp := mountinfo.Unescape(fields[4]); strings.HasPrefix(mp, root+"/") {
				out = append(out, mp)
			}
		}
	}
	return out
}

// bothModes runs test with lazy (FUSE) mounts and with materialised
// trees.
func bothModes(t *testing.T, test func(t *testing.T, materialize bool)) {
	t.Run("lazy", func(t *testing.T) { test(t, false) })
	t.Run("materialized", func(t *testing.T) { test(t, true) })
}

// lowerDir is the shared read-only tree of flist id under a Mounter's dir.
func lowerDir(dir string, id flist.ID, materialize bool) string {
	if materialize {
		return filepath.Join(dir, "trees", id.String())
	}
	return filepath.Join(dir, "lazy", id.String())
}

func needMounts(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("flist mounts need root (overlayfs): run the tests as root, as make test does")
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMountGivesEachWorkloadItsOwnLayer mounts one flist for two
// workloads: both read the flist, each writes into its own layer, the
// shared tree never changes; unmounting one keeps the other, and the tree
// goes with the last.
func TestMountGivesEachWorkloadItsOwnLayer(t *testing.T) {
	needMounts(t)
	bothModes(t, testMountGivesEachWorkloadItsOwnLayer)
}

func testMountGivesEachWorkloadItsOwnLayer(t *testing.T, materialize bool) {
	e := newEnv(t)
	f := e.publish("alpine", map[string]string{"etc/os-release": "NAME=grid4\n", "bin/": "", "bin/sh": "#!/bin/sh\n"})
	m := e.manager(Config{})
	root := t.TempDir()
	detachUnder(t, root)
	mt := e.mounter(m, filepath.Join(root, "flist"), root, materialize)
	byName := e.url + "/api/v1/repos/tf/zos/flists/alpine"
	byID := e.url + "/api/v1/flists/" + f.ID().String()
	a, b := filepath.Join(root, "machines", "a", "root"), filepath.Join(root, "machines", "b", "root")
	t.Cleanup(func() { _ = unix.Unmount(a, unix.MNT_DETACH); _ = unix.Unmount(b, unix.MNT_DETACH) })

	ia, err := mt.Mount(ctxT(t), byName, a)
	if err != nil {
		t.Fatal(err)
	}
	if ia.Flist != f.ID() || !ia.Mounted {
		t.Fatalf("mount info %+v, want flist %s mounted", ia, f.ID())
	}
	if _, err := mt.Mount(ctxT(t), byID, b); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{a, b} {
		if got := readFile(t, filepath.Join(p, "etc/os-release")); got != "NAME=grid4\n" {
			t.Fatalf("%s reads %q", p, got)
		}
	}
	if err := os.WriteFile(filepath.Join(a, "etc/os-release"), []byte("changed by a\n"), 0o644); err != nil {
		t.Fatalf("writing through the overlay: %v", err)
	}
	if got := readFile(t, filepath.Join(b, "etc/os-release")); got != "NAME=grid4\n" {
		t.Fatalf("b sees a's write: %q", got)
	}
	tree := lowerDir(filepath.Join(root, "flist"), f.ID(), materialize)
	if got := readFile(t, filepath.Join(tree, "etc/os-release")); got != "NAME=grid4\n" {
		t.Fatalf("the shared tree changed: %q", got)
	}
	// Mounting again is a no-op; another flist on the same target is not.
	if _, err := mt.Mount(ctxT(t), byName, a); err != nil {
		t.Fatalf("mounting again: %v", err)
	}
	if _, err := mt.Mount(ctxT(t), byID, a); !errors.Is(err, ErrTargetBusy) {
		t.Fatalf("another flist on a mounted target: %v, want ErrTargetBusy", err)
	}
	if got := len(mt.Mounts()); got != 2 {
		t.Fatalf("%d mounts, want 2", got)
	}

	if err := mt.Unmount(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.IsMountPoint(a); ok {
		t.Fatal("a still mounted")
	}
	if _, err := os.Stat(ia.Layer); !os.IsNotExist(err) {
		t.Fatalf("a's layer left behind: %v", err)
	}
	if got := readFile(t, filepath.Join(b, "etc/os-release")); got != "NAME=grid4\n" {
		t.Fatalf("b after a's unmount: %q", got)
	}
	if err := mt.Unmount(ctxT(t), a); err != nil {
		t.Fatalf("unmounting twice: %v", err)
	}
	if err := mt.Unmount(ctxT(t), b); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tree); !os.IsNotExist(err) {
		t.Fatalf("unused tree left behind: %v", err)
	}
	if left := mountsUnder(t, root); len(left) != 0 {
		t.Fatalf("mounts left after unmounting all: %v", left)
	}
	if got := len(mt.Mounts()); got != 0 {
		t.Fatalf("%d mounts after unmounting all", got)
	}
}

// TestMountsComeBackAfterAReboot: a new Mounter (a restarted flistd) on
// the record of one whose mounts are gone (unmounted, trees deleted: a
// reboot onto a cleaned disk) puts them back with what was written.
func TestMountsComeBackAfterAReboot(t *testing.T) {
	needMounts(t)
	bothModes(t, testMountsComeBackAfterAReboot)
}

func testMountsComeBackAfterAReboot(t *testing.T, materialize bool) {
	e := newEnv(t)
	e.publish("app", map[string]string{"app/run": "#!/bin/sh\necho hi\n"})
	m := e.manager(Config{})
	root := t.TempDir()
	dir := filepath.Join(root, "flist")
	target := filepath.Join(root, "m", "root")
	detachUnder(t, root)
	mt := e.mounter(m, dir, root, materialize)
	mi, err := mt.Mount(ctxT(t), e.url+"/api/v1/repos/tf/zos/flists/app", target)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "written"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The reboot: the mount and the tree are gone, the layer stays.
	if err := unix.Unmount(target, 0); err != nil {
		t.Fatal(err)
	}
	if materialize {
		tree := filepath.Join(dir, "trees", mi.Flist.String())
		if err := makeWritable(tree); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(tree); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := mt.unmountLazy(ctxT(t), mi.Flist); err != nil {
			t.Fatal(err)
		}
	}
	if left := mountsUnder(t, root); len(left) != 0 {
		t.Fatalf("mounts left by the reboot: %v", left)
	}

	after := e.mounter(m, dir, root, materialize)
	if restored, failed := after.Restore(ctxT(t)); restored != 1 || failed != 0 {
		t.Fatalf("restored %d, failed %d; want 1, 0", restored, failed)
	}
	if got := readFile(t, filepath.Join(target, "app/run")); !strings.Contains(got, "echo hi") {
		t.Fatalf("flist after the restore: %q", got)
	}
	if got := readFile(t, filepath.Join(target, "written")); got != "kept" {
		t.Fatalf("what the workload wrote: %q", got)
	}
}

// TestMountRefusesBadInput: targets outside the root, flists of another
// hub or not flist URLs are refused before anything is made.
func TestMountRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	m := e.manager(Config{})
	root := t.TempDir()
	mt := e.mounter(m, filepath.Join(root, "flist"), root, true)
	for _, tc := range []struct {
		url, target string
		want        error
	}{
		{e.url + "/api/v1/repos/tf/zos/flists/x", "/etc", ErrBadTarget},
		{e.url + "/api/v1/repos/tf/zos/flists/x", root, ErrBadTarget},
		{e.url + "/api/v1/repos/tf/zos/flists/x", root + "/a/../../b", ErrBadTarget},
		{e.url + "/api/v1/repos/tf/zos/flists/x", "relative", ErrBadTarget},
		{"https://hub.example.org/api/v1/repos/tf/zos/flists/x", root + "/m", ErrBadFlistURL},
		{e.url + "/api/v1/repos/tf/zos/x", root + "/m", ErrBadFlistURL},
		{e.url + "/api/v1/flists/nothex", root + "/m", ErrBadFlistURL},
		{e.url + "/api/v1/repos/tf/../zos/flists/x", root + "/m", ErrBadFlistURL},
		{"not a url\x7f", root + "/m", ErrBadFlistURL},
	} {
		if _, err := mt.Mount(ctxT(t), tc.url, tc.target); !errors.Is(err, tc.want) {
			t.Errorf("Mount(%q, %q): %v, want %v", tc.url, tc.target, err, tc.want)
		}
	}
	if got := len(mt.Mounts()); got != 0 {
		t.Fatalf("%d mounts recorded after refusals", got)
	}
	// An flist the hub does not have is not found, and not recorded.
	if _, err := mt.Mount(ctxT(t), e.url+"/api/v1/repos/tf/zos/flists/missing", root+"/m"); err == nil {
		t.Fatal("mounting a missing flist succeeded")
	}
	if got := len(mt.Mounts()); got != 0 {
		t.Fatalf("%d mounts recorded after a failure", got)
	}
}

func FuzzParseFlistURL(f *testing.F) {
	const hub = "http://127.0.0.1:8080"
	f.Add(hub + "/api/v1/repos/tf/zos/flists/x")
	f.Add(hub + "/api/v1/flists/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	f.Add("https://a/b")
	f.Fuzz(func(t *testing.T, s string) {
		p, r, n, id, err := ParseFlistURL(hub, s)
		if err != nil {
			return
		}
		if (n == "") != (p == "" && r == "") || (n != "" && !id.IsZero()) {
			t.Fatalf("%q: publisher %q repo %q name %q id %s", s, p, r, n, id)
		}
		for _, part := range []string{p, r, n} {
			if strings.Contains(part, "/") || part == ".." || part == "." {
				t.Fatalf("%q: path part %q", s, part)
			}
		}
	})
}

// TestMountReportsTheImage mounts an flist made from a container image:
// the mount says how the image runs (what a machine runs by default),
// and so does Flist; a plain flist has no image.
func TestMountReportsTheImage(t *testing.T) {
	needMounts(t)
	e := newEnv(t)
	archive := ocitest.Archive(t, t.TempDir(), ocitest.Image{
		Layers: []ocitest.Layer{{"srv/index.html": ocitest.Text("hello\n", 0o644)}},
		Config: ocitest.Config{Entrypoint: []string{"/bin/httpd", "-f"}, Cmd: []string{"-p", "80"}, Env: []string{"GREETING=hi"}, WorkingDir: "/srv"},
	})
	res, err := e.pub.PublishImage(ctxT(t), "tf", "zos", "web", archive, oci.Options{}, hubclient.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.publish("plain", map[string]string{"a": "b"})
	m := e.manager(Config{})
	root := t.TempDir()
	detachUnder(t, root)
	mt := e.mounter(m, filepath.Join(root, "flist"), root, false)
	web, plain := filepath.Join(root, "web"), filepath.Join(root, "plain")

	mi, err := mt.Mount(ctxT(t), e.url+"/api/v1/repos/tf/zos/flists/web", web)
	if err != nil {
		t.Fatal(err)
	}
	want := &flist.Image{Entrypoint: []string{"/bin/httpd", "-f"}, Cmd: []string{"-p", "80"}, Env: []string{"GREETING=hi"}, WorkingDir: "/srv"}
	if !reflect.DeepEqual(mi.Image, want) {
		t.Fatalf("mount's image %+v, want %+v", mi.Image, want)
	}
	if got := readFile(t, filepath.Join(web, "srv/index.html")); got != "hello\n" {
		t.Fatalf("image content %q", got)
	}
	info, err := m.busFlist(ctxT(t), res.Flist.ID())
	if err != nil || !reflect.DeepEqual(info.Image, want) {
		t.Fatalf("Flist: %+v, %v", info.Image, err)
	}
	pi, err := mt.Mount(ctxT(t), e.url+"/api/v1/repos/tf/zos/flists/plain", plain)
	if err != nil || pi.Image != nil {
		t.Fatalf("plain flist: image %+v, %v", pi.Image, err)
	}
}
