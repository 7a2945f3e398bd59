package flistd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/grid4/grid4/flist"
	"github.com/grid4/grid4/internal/mountinfo"
)

// lazyEnv is a hub with one published flist (a file of five blocks,
// small files, a symlink) and a lazy Mounter under a root of its own.
type lazyEnv struct {
	*env
	m     *Manager
	mt    *Mounter
	root  string
	dir   string
	f     *flist.Flist
	big   string
	url   string
	files map[string]string
}

const bigSize = 4<<20 + 12345 // five blocks, the last one short

func newLazyEnv(t *testing.T) *lazyEnv {
	t.Helper()
	needMounts(t)
	e := newEnv(t)
	l := &lazyEnv{env: e, big: random(t, bigSize)}
	l.files = map[string]string{
		"data/":         "",
		"data/big":      l.big,
		"etc/":          "",
		"etc/hello":     "hello\n",
		"etc/link":      "->hello",
		"bin/":          "",
		"bin/run":       "#!/bin/sh\necho run\n",
		"empty/":        "",
		"data/empty.db": "",
	}
	l.f = e.publish("lazy", l.files)
	l.url = e.url + "/api/v1/flists/" + l.f.ID().String()
	l.m = e.manager(Config{})
	l.root = t.TempDir()
	detachUnder(t, l.root)
	l.dir = filepath.Join(l.root, "flist")
	l.mt = e.mounter(l.m, l.dir, l.root, false)
	return l
}

func (l *lazyEnv) target(name string) string { return filepath.Join(l.root, "machines", name, "root") }

// mountTwo mounts the flist on the targets of workloads a and b.
func (l *lazyEnv) mountTwo() (a, b string) {
	l.t.Helper()
	a, b = l.target("a"), l.target("b")
	for _, target := range []string{a, b} {
		if _, err := l.mt.Mount(ctxT(l.t), l.url, target); err != nil {
			l.t.Fatal(err)
		}
	}
	return a, b
}

// blockOf returns the n-th block of data/big.
func (l *lazyEnv) blockOf(n int) flist.BlockRef {
	for _, e := range l.f.Entries {
		if e.Path == "data/big" {
			return e.Blocks[n]
		}
	}
	l.t.Fatal("no data/big in the flist")
	return flist.BlockRef{}
}

func readAt(t *testing.T, p string, off int64, n int) ([]byte, error) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	got, err := f.ReadAt(b, off)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return b[:got], err
}

// TestLazyMountReadsOnlyTheBlocksItNeeds: mounting downloads no block;
// the tree (names, modes, sizes, links) is there at once; reading a piece
// of a big file downloads the one block holding it, exactly; reading it
// all downloads the rest, once; writes go to the workload's layer.
func TestLazyMountReadsOnlyTheBlocksItNeeds(t *testing.T) {
	l := newLazyEnv(t)
	target := l.target("a")
	mi, err := l.mt.Mount(ctxT(t), l.url, target)
	if err != nil {
		t.Fatal(err)
	}
	if !mi.Lazy {
		t.Fatalf("mount %+v is not lazy", mi)
	}
	if n := l.faults.blockRequests(); n != 0 {
		t.Fatalf("%d block requests after mounting, want 0", n)
	}
	for p, want := range map[string]os.FileMode{
		"data/big": flist.ModeFile, "bin/run": flist.ModeExecutable, "etc": os.ModeDir | flist.ModeDir, "empty": os.ModeDir | flist.ModeDir,
	} {
		st, err := os.Stat(filepath.Join(target, p))
		if err != nil || st.Mode() != want {
			t.Fatalf("%s: %v %v, want mode %v", p, st, err, want)
		}
	}
	if st, err := os.Stat(filepath.Join(target, "data/big")); err != nil || st.Size() != bigSize {
		t.Fatalf("data/big: %v, want %d bytes", err, bigSize)
	}
	if got, err := os.Readlink(filepath.Join(target, "etc/link")); err != nil || got != "hello" {
		t.Fatalf("etc/link -> %q (%v)", got, err)
	}
	if ents, err := os.ReadDir(filepath.Join(target, "data")); err != nil || len(ents) != 2 {
		t.Fatalf("data/: %v (%v), want big and empty.db", ents, err)
	}
	if n := l.faults.blockRequests(); n != 0 {
		t.Fatalf("%d block requests after listing the tree, want 0", n)
	}

	// A piece of the fourth block: that block only.
	off := int64(3<<20 + 1000)
	got, err := readAt(t, filepath.Join(target, "data/big"), off, 5000)
	if err != nil || string(got) != l.big[off:off+5000] {
		t.Fatalf("reading 5000 bytes at %d: %v (content equal: %v)", off, err, string(got) == l.big[off:off+5000])
	}
	if n := l.faults.blockRequests(); n != 1 {
		t.Fatalf("%d block requests after reading one block's worth, want 1", n)
	}
	if r := l.faults.rangesOf(l.blockOf(3).ID); len(r) != 1 {
		t.Fatalf("block 3 requested %d times, want once", len(r))
	}
	if n := l.cachedBlocks(); n != 1 {
		t.Fatalf("%d blocks cached, want 1", n)
	}

	if got := readFile(t, filepath.Join(target, "data/big")); got != l.big {
		t.Fatal("data/big read whole differs from what was published")
	}
	if got := readFile(t, filepath.Join(target, "etc/link")); got != "hello\n" {
		t.Fatalf("etc/link reads %q", got)
	}
	if got := readFile(t, filepath.Join(target, "bin/run")); got != l.files["bin/run"] {
		t.Fatalf("bin/run reads %q", got)
	}
	if got := readFile(t, filepath.Join(target, "data/empty.db")); got != "" {
		t.Fatalf("empty file reads %q", got)
	}
	want := len(l.f.Blocks())
	if n := l.faults.blockRequests(); n != want {
		t.Fatalf("%d block requests after reading everything, want %d (each block once)", n, want)
	}
	_ = readFile(t, filepath.Join(target, "data/big"))
	if n := l.faults.blockRequests(); n != want {
		t.Fatalf("%d block requests after reading again, want %d", n, want)
	}

	// Writes land in the layer; the lazy tree is read-only.
	if err := os.WriteFile(filepath.Join(target, "etc/hello"), []byte("changed\n"), 0o644); err != nil {
		t.Fatalf("writing through the overlay: %v", err)
	}
	if got := readFile(t, filepath.Join(mi.Layer, "upper", "etc/hello")); got != "changed\n" {
		t.Fatalf("the layer holds %q", got)
	}
	lower := lowerDir(l.dir, l.f.ID(), false)
	if got := readFile(t, filepath.Join(lower, "etc/hello")); got != "hello\n" {
		t.Fatalf("the lazy tree changed: %q", got)
	}
	if err := os.WriteFile(filepath.Join(lower, "etc/new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("writing into the lazy tree: %v, want EROFS", err)
	}
	if err := l.mt.Unmount(ctxT(t), target); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(t, l.root); len(left) != 0 {
		t.Fatalf("mounts left after unmounting: %v", left)
	}
}

// TestLazyMountFetchesABlockOnceForConcurrentReaders: two workloads
// reading two parts of one block at the same time cause one download.
func TestLazyMountFetchesABlockOnceForConcurrentReaders(t *testing.T) {
	l := newLazyEnv(t)
	a, b := l.mountTwo()
	l.faults.mu.Lock()
	l.faults.delay = 300 * time.Millisecond
	l.faults.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, target := range []string{a, b} {
		wg.Go(func() {
			off := int64(1<<20 + i*(512<<10))
			got, err := readAt(t, filepath.Join(target, "data/big"), off, 4096)
			if err == nil && string(got) != l.big[off:off+4096] {
				err = fmt.Errorf("content at %d differs", off)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if r := l.faults.rangesOf(l.blockOf(1).ID); len(r) != 1 {
		t.Fatalf("block 1 requested %d times by two concurrent readers, want once", len(r))
	}
	if n := l.faults.blockRequests(); n != 1 {
		t.Fatalf("%d block requests, want 1", n)
	}
}

// TestLazyMountCorruptBlockIsEIO: a block the hub only serves wrong fails
// the read with EIO and a log record naming it, never other bytes; the
// rest of the file reads; once the hub serves it right, so does the block.
func TestLazyMountCorruptBlockIsEIO(t *testing.T) {
	l := newLazyEnv(t)
	target := l.target("a")
	if _, err := l.mt.Mount(ctxT(t), l.url, target); err != nil {
		t.Fatal(err)
	}
	bad := l.blockOf(2)
	l.faults.mu.Lock()
	l.faults.lie[bad.ID] = -1
	l.faults.mu.Unlock()
	p := filepath.Join(target, "data/big")
	off := int64(2<<20 + 77)
	got, err := readAt(t, p, off, 100)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("reading a block the hub corrupts: %d bytes, %v; want EIO", len(got), err)
	}
	if logs := l.serverLog(); !strings.Contains(logs, "block="+bad.ID.String()) || !strings.Contains(logs, "EIO") {
		t.Fatalf("no log record naming block %s:\n%s", bad.ID, logs)
	}
	if got, err := readAt(t, p, 10, 100); err != nil || string(got) != l.big[10:110] {
		t.Fatalf("reading an intact block: %v", err)
	}
	l.faults.mu.Lock()
	l.faults.lie[bad.ID] = 0
	l.faults.mu.Unlock()
	if got, err := readAt(t, p, off, 100); err != nil || string(got) != l.big[off:off+100] {
		t.Fatalf("reading the block once the hub serves it right: %v", err)
	}
}

// TestLazyMountsShareOneFUSEMount: every workload of one flist reads the
// same FUSE mount; it goes with the last of them, and nothing stays
// mounted.
func TestLazyMountsShareOneFUSEMount(t *testing.T) {
	l := newLazyEnv(t)
	a, b := l.mountTwo()
	lower := lowerDir(l.dir, l.f.ID(), false)
	fuseMounts := func() (n int) {
		for _, mp := range mountsUnder(t, l.root) {
			if strings.HasPrefix(mp, filepath.Join(l.dir, "lazy")+"/") {
				n++
			}
		}
		return n
	}
	if n := fuseMounts(); n != 1 {
		t.Fatalf("%d FUSE mounts for one flist used twice, want 1 (%v)", n, mountsUnder(t, l.root))
	}
	if got := readFile(t, filepath.Join(a, "etc/hello")); got != "hello\n" {
		t.Fatalf("a reads %q", got)
	}
	if err := l.mt.Unmount(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	if n := fuseMounts(); n != 1 {
		t.Fatalf("%d FUSE mounts with one user left, want 1", n)
	}
	if got := readFile(t, filepath.Join(b, "data/big")); got != l.big {
		t.Fatal("b reads other content after a's unmount")
	}
	if err := l.mt.Unmount(ctxT(t), b); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(t, l.root); len(left) != 0 {
		t.Fatalf("mounts left after unmounting all: %v", left)
	}
	if _, err := os.Stat(lower); !os.IsNotExist(err) {
		t.Fatalf("lazy mount point left behind: %v", err)
	}
}

// cachedBlocks counts the blocks in the shared cache (the servers of the
// lazy mounts install them, not the test's Manager).
func (l *lazyEnv) cachedBlocks() int {
	l.t.Helper()
	n := 0
	err := filepath.WalkDir(filepath.Join(l.cacheTo, "blocks"), func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	return n
}

// serverLog returns what the server of the flist's lazy mount logged.
func (l *lazyEnv) serverLog() string {
	return readFile(l.t, filepath.Join(l.dir, "lazy", l.f.ID().String()+".log"))
}

// serverPid returns the pid the flist's server's pid file records.
func (l *lazyEnv) serverPid() int {
	l.t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(readFile(l.t, filepath.Join(l.dir, "lazy", l.f.ID().String()+".pid"))))
	if err != nil {
		l.t.Fatal(err)
	}
	return pid
}

// servers lists the live processes serving the flist's lazy mount (its
// mount point in their command line).
func (l *lazyEnv) servers() []int {
	l.t.Helper()
	marker := []byte(filepath.Join(l.dir, "lazy", l.f.ID().String()))
	ents, err := os.ReadDir("/proc")
	if err != nil {
		l.t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte(serveArg)) && bytes.Contains(cmdline, marker) {
			out = append(out, pid)
		}
	}
	return out
}

// gone reports whether process pid has ended (exited, or a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := bytes.Cut(b, []byte(") "))
	return len(rest) > 0 && rest[0] == 'Z'
}

// mountID returns the kernel's ID of the mount on mp (a new mount gets a
// new one), 0 when mp is not a mount point.
func mountID(t *testing.T, mp string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	id := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && mountinfo.Unescape(f[4]) == mp {
			id, _ = strconv.Atoi(f[0])
		}
	}
	return id
}

// readAtFd reads name under the directory open as dir.
func readAtFd(t *testing.T, dir *os.File, name string) (string, error) {
	t.Helper()
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	b, err := io.ReadAll(f)
	return string(b), err
}

// The restart test runs this test binary as a first flistd that mounts
// and is then killed.
const lazyChildEnv = "GRID4_FLISTD_LAZY_CHILD"

// TestLazyMountChild is the killed flistd of TestLazyMountsOutliveFlistd
// when run by it; otherwise it does nothing.
func TestLazyMountChild(t *testing.T) {
	if os.Getenv(lazyChildEnv) == "" {
		return
	}
	var args []string
	for _, k := range []string{"HUB", "CACHE", "DIR", "ROOT", "URL"} {
		args = append(args, os.Getenv(lazyChildEnv+"_"+k))
	}
	m, err := New(Config{HubURL: args[0], CacheDir: args[1], RetryDelay: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mt, err := NewMounter(m, MounterConfig{Dir: args[2], Root: args[3], Lazy: true, ServeCommand: serveCommand(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range strings.Fields(os.Getenv(lazyChildEnv + "_TARGETS")) {
		if _, err := mt.Mount(ctxT(t), args[4], target); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("mounted")
	time.Sleep(time.Minute) // until killed
}

// TestLazyMountsOutliveFlistd: a lazy mount is served by a process of its
// own. When flistd is killed, the workloads' overlays keep working (the
// same mounts, read through a directory opened before, fetching blocks
// nobody had read); the next flistd finds the server and keeps it (no
// second server, the overlays not remounted); the last Unmount stops it.
func TestLazyMountsOutliveFlistd(t *testing.T) {
	l := newLazyEnv(t)
	l.m.Close() // the child is flistd: it takes the cache
	a, b := l.target("a"), l.target("b")
	cmd := exec.Command(os.Args[0], "-test.run=^TestLazyMountChild$", "-test.v")
	cmd.Env = append(os.Environ(), lazyChildEnv+"=1", lazyChildEnv+"_HUB="+l.env.url, lazyChildEnv+"_CACHE="+l.cacheTo,
		lazyChildEnv+"_DIR="+l.dir, lazyChildEnv+"_ROOT="+l.root, lazyChildEnv+"_URL="+l.url, lazyChildEnv+"_TARGETS="+a+" "+b)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "mounted" {
	}
	da, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	if got, err := readAtFd(t, da, "etc/hello"); err != nil || got != "hello\n" {
		t.Fatalf("a reads %q (%v) from the first flistd", got, err)
	}
	if err := os.WriteFile(filepath.Join(b, "written"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	pid := l.serverPid()
	if s := l.servers(); len(s) != 1 || s[0] != pid {
		t.Fatalf("servers %v, want the one of the pid file (%d)", s, pid)
	}
	overlays := map[string]int{a: mountID(t, a), b: mountID(t, b)}
	before := l.faults.blockRequests()

	// flistd dies.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if gone(pid) {
		t.Fatal("the server died with flistd")
	}
	if got, err := readAtFd(t, da, "data/big"); err != nil || got != l.big {
		t.Fatalf("a reads data/big through the directory opened before flistd died: %v (content equal: %v)", err, got == l.big)
	}
	if n := l.faults.blockRequests() - before; n != 5 {
		t.Fatalf("%d block requests reading data/big after flistd died, want %d", n, 5)
	}
	if got := readFile(t, filepath.Join(b, "written")); got != "kept" {
		t.Fatalf("what b wrote: %q", got)
	}

	// The next flistd keeps the server and the overlays.
	m := l.manager(Config{})
	mt := l.mounter(m, l.dir, l.root, false)
	if restored, failed := mt.Restore(ctxT(t)); restored != 2 || failed != 0 {
		t.Fatalf("restored %d, failed %d; want 2, 0", restored, failed)
	}
	mi, err := mt.Mount(ctxT(t), l.url, a)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Server != pid {
		t.Fatalf("mount of a over server %d, want %d", mi.Server, pid)
	}
	for target, id := range overlays {
		if now := mountID(t, target); now != id {
			t.Fatalf("%s: mount %d after the new flistd, want the same %d", target, now, id)
		}
	}
	if s := l.servers(); len(s) != 1 || s[0] != pid {
		t.Fatalf("servers %v after the new flistd, want only %d", s, pid)
	}
	if got, err := readAtFd(t, da, "bin/run"); err != nil || got != l.files["bin/run"] {
		t.Fatalf("a reads bin/run: %q (%v)", got, err)
	}

	if err := mt.Unmount(ctxT(t), a); err != nil {
		t.Fatal(err)
	}
	if gone(pid) {
		t.Fatal("the server stopped while b still uses it")
	}
	if got := readFile(t, filepath.Join(b, "data/big")); got != l.big {
		t.Fatal("b: data/big differs")
	}
	if err := mt.Unmount(ctxT(t), b); err != nil {
		t.Fatal(err)
	}
	if !gone(pid) {
		t.Fatal("the server still runs after the last unmount")
	}
	if s := l.servers(); len(s) != 0 {
		t.Fatalf("servers %v left after the last unmount", s)
	}
	if left := mountsUnder(t, l.root); len(left) != 0 {
		t.Fatalf("mounts left after unmounting all: %v", left)
	}
	if ents, _ := os.ReadDir(filepath.Join(l.dir, "lazy")); len(ents) != 0 {
		t.Fatalf("files left in lazy/: %v", ents)
	}
}

// TestLazyServerKilledIsReplaced: a server that dies (SIGKILL) leaves its
// mount dead (ENOTCONN); the next Mount starts another and mounts the
// workload's overlay again, with what it wrote; Restore does the same for
// the others.
func TestLazyServerKilledIsReplaced(t *testing.T) {
	l := newLazyEnv(t)
	a, b := l.mountTwo()
	if err := os.WriteFile(filepath.Join(a, "written"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	pid := l.serverPid()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for !gone(pid) {
		time.Sleep(10 * time.Millisecond)
	}
	// ECONNABORTED on newer kernels.
	if _, err := readAt(t, filepath.Join(a, "data/big"), 0, 10); !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED) {
		t.Fatalf("reading a lazy mount whose server died: %v, want ENOTCONN", err)
	}
	mi, err := l.mt.Mount(ctxT(t), l.url, a)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Server == pid || mi.Server != l.serverPid() || gone(mi.Server) {
		t.Fatalf("mount over server %d; the killed one was %d, the pid file says %d", mi.Server, pid, l.serverPid())
	}
	if got := readFile(t, filepath.Join(a, "data/big")); got != l.big {
		t.Fatal("a: data/big differs after the server was replaced")
	}
	if got := readFile(t, filepath.Join(a, "written")); got != "kept" {
		t.Fatalf("what a wrote: %q", got)
	}
	if restored, failed := l.mt.Restore(ctxT(t)); restored != 2 || failed != 0 {
		t.Fatalf("restored %d, failed %d; want 2, 0", restored, failed)
	}
	if got := readFile(t, filepath.Join(b, "etc/hello")); got != "hello\n" {
		t.Fatalf("b reads %q after Restore", got)
	}
	if s := l.servers(); len(s) != 1 || s[0] != mi.Server {
		t.Fatalf("servers %v, want only %d", s, mi.Server)
	}
	if n := len(mountsUnder(t, l.root)); n != 3 {
		t.Fatalf("%d mounts, want 3 (two overlays, one FUSE): %v", n, mountsUnder(t, l.root))
	}
	for _, target := range []string{a, b} {
		if err := l.mt.Unmount(ctxT(t), target); err != nil {
			t.Fatal(err)
		}
	}
	if !gone(mi.Server) {
		t.Fatal("the server still runs after the last unmount")
	}
	if left := mountsUnder(t, l.root); len(left) != 0 {
		t.Fatalf("mounts left after unmounting all: %v", left)
	}
}

// TestLazyServerThatCannotStart: a server that exits at once fails the
// Mount with an error naming its command and quoting its log; nothing
// stays mounted.
func TestLazyServerThatCannotStart(t *testing.T) {
	l := newLazyEnv(t)
	mt, err := NewMounter(l.m, MounterConfig{Dir: l.dir, Root: l.root, Lazy: true, Logger: l.log,
		ServeCommand: []string{"/bin/sh", "-c", "echo no fuse for you >&2; exit 3", "sh"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = mt.Mount(ctxT(t), l.url, l.target("a"))
	if err == nil || !strings.Contains(err.Error(), "/bin/sh") || !strings.Contains(err.Error(), "no fuse for you") {
		t.Fatalf("Mount with a server that cannot start: %v", err)
	}
	if left := mountsUnder(t, l.root); len(left) != 0 {
		t.Fatalf("mounts left: %v", left)
	}
	if len(mt.Mounts()) != 0 {
		t.Fatalf("a failed mount is recorded: %v", mt.Mounts())
	}
}
