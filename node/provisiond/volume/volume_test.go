package volume

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grid4/grid4/gridtypes"
	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/node/internal/command"
	"github.com/grid4/grid4/node/provisiond"
	"github.com/grid4/grid4/node/storaged"
	"github.com/grid4/grid4/node/storaged/storagetest"
)

func task(name string, size uint64) provisiond.Task {
	data, _ := json.Marshal(gridtypes.VolumeData{Size: size})
	return provisiond.Task{TwinID: 7, DeploymentID: 3, Workload: gridtypes.Workload{Name: name, Type: gridtypes.VolumeType, Data: data}}
}

func newManager(t *testing.T, s Storage, mode Enforcement) *Manager {
	t.Helper()
	m, err := New(Config{Storage: s, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAccountingVolume: a plain directory whose use is measured (hard
// links once); storaged refuses a volume its pool cannot hold; provisioning
// again keeps the data; deprovisioning (twice) removes it.
func TestAccountingVolume(t *testing.T) {
	s := storagetest.Open(t, storagetest.SmallFS(t, 128<<20))
	m := newManager(t, s, Accounting)
	ctx := context.Background()
	c, _ := s.Capacity(ctx)
	res, err := m.Provision(ctx, task("vol", 64*gridtypes.MiB))
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	if r.Enforcement != Accounting || r.Size != 64*gridtypes.MiB {
		t.Fatalf("result %+v", r)
	}
	if err := os.MkdirAll(filepath.Join(r.Path, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 3<<20)
	if err := os.WriteFile(filepath.Join(r.Path, "sub", "f"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A hard link is counted once.
	if err := os.Link(filepath.Join(r.Path, "sub", "f"), filepath.Join(r.Path, "g")); err != nil {
		t.Fatal(err)
	}
	used, err := m.Usage(ctx, task("vol", 0))
	if err != nil {
		t.Fatal(err)
	}
	if used < 3<<20 || used > 4<<20 {
		t.Fatalf("usage %d, want about 3 MiB", used)
	}
	// The pool promised 64 MiB: what is left cannot take the whole pool.
	if _, err = m.Provision(ctx, task("vol2", c.SRU-32*gridtypes.MiB)); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("second volume: %v", err)
	}
	if _, err := m.Provision(ctx, task("vol2", 16*gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	// Idempotent, data kept; restore finds it.
	if _, err := m.Provision(ctx, task("vol", 64*gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.Path, "g")); err != nil {
		t.Fatal(err)
	}
	if err := m.Restore(ctx, task("vol", 0)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := m.Deprovision(ctx, task("vol", 0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(r.Path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("volume still there")
	}
	if err := m.Restore(ctx, task("vol", 0)); !errors.Is(err, storaged.ErrNotFound) {
		t.Fatalf("restore of a removed volume: %v", err)
	}
}

// loopManager is a LoopExt4 manager on a storaged of the test's own whose
// volumes are deprovisioned (unmounted) when the test ends.
func loopManager(t *testing.T, tasks ...provisiond.Task) (m *Manager, storageDir string) {
	t.Helper()
	if ok, why := Probe(); !ok {
		t.Fatalf("loop volumes unavailable here: %s", why)
	}
	storageDir = t.TempDir()
	m = newManager(t, storagetest.Open(t, storageDir), LoopExt4)
	t.Cleanup(func() {
		for _, tk := range tasks {
			if err := m.Deprovision(context.Background(), tk); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
	return m, storageDir
}

// TestLoopVolumeIsAHardLimit: the loop-mounted ext4 refuses writes past
// the size, grows online, and is unmounted and removed by Deprovision.
func TestLoopVolumeIsAHardLimit(t *testing.T) {
	tk := task("vol", 16*gridtypes.MiB)
	m, _ := loopManager(t, tk)
	ctx := context.Background()
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	if r.Enforcement != LoopExt4 {
		t.Fatalf("result %+v", r)
	}
	if ok, _ := mountinfo.IsMountPoint(r.Path); !ok {
		t.Fatal("not mounted")
	}
	// Again: still one mount.
	if _, err := m.Provision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if n := mountCount(t, r.Path); n != 1 {
		t.Fatalf("mounted %d times", n)
	}
	// Writing more than the size fails with ENOSPC.
	err = os.WriteFile(filepath.Join(r.Path, "big"), make([]byte, 32<<20), 0o600)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 32 MiB in a 16 MiB volume: %v", err)
	}
	used, err := m.Usage(ctx, tk)
	if err != nil || used < 8<<20 {
		t.Fatalf("usage %d %v", used, err)
	}
	os.Remove(filepath.Join(r.Path, "big"))
	// Grow online to 48 MiB: now 32 MiB fit.
	if _, err := m.Update(ctx, task("vol", 48*gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.Path, "big"), make([]byte, 32<<20), 0o600); err != nil {
		t.Fatalf("after growing: %v", err)
	}
	if err := m.Deprovision(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if ok, _ := mountinfo.IsMountPoint(r.Path); ok {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(filepath.Dir(r.Path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("image still there")
	}
}

// TestRestoreAfterUnmount: what a reboot does to a volume (its mount gone,
// storaged and the manager started again on the same directory) is undone
// by Restore: mounted again, the data written before still there; a
// volume whose image is gone fails its restore.
func TestRestoreAfterUnmount(t *testing.T) {
	tk, lost := task("vol", 16*gridtypes.MiB), task("lost", 16*gridtypes.MiB)
	m, dir := loopManager(t, tk, lost)
	ctx := context.Background()
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	r := res.(Result)
	if err := os.WriteFile(filepath.Join(r.Path, "kept"), []byte("before the reboot"), 0o600); err != nil {
		t.Fatal(err)
	}
	lres, err := m.Provision(ctx, lost)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{r.Path, lres.(Result).Path} {
		if out, err := exec.Command("umount", p).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v %s", err, out)
		}
	}
	if err := os.Remove(filepath.Join(filepath.Dir(lres.(Result).Path), "fs.img")); err != nil {
		t.Fatal(err)
	}

	m = newManager(t, storagetest.Open(t, dir), LoopExt4)
	if err := m.Restore(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(r.Path, "kept")); err != nil || string(b) != "before the reboot" {
		t.Fatalf("data after restore: %q %v", b, err)
	}
	if err := m.Restore(ctx, tk); err != nil || mountCount(t, r.Path) != 1 {
		t.Fatalf("restore again: %v, %d mounts", err, mountCount(t, r.Path))
	}
	if err := m.Restore(ctx, lost); err == nil || !strings.Contains(err.Error(), "fs.img") {
		t.Fatalf("restore without an image: %v", err)
	}
}

func mountCount(t *testing.T, path string) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			n++
		}
	}
	return n
}

// refuseOnline runs commands on the host, except an online resize2fs (of a
// mounted device), which it refuses as a kernel does to a process without
// CAP_SYS_RESOURCE; it records what ran on the images.
type refuseOnline struct {
	mu      sync.Mutex
	offline []string
}

func (r *refuseOnline) Run(ctx context.Context, name string, args ...string) (string, error) {
	if (name == "resize2fs" || name == "e2fsck") && strings.HasPrefix(args[len(args)-1], "/dev/") {
		return "", errors.New(name + ": Permission denied to resize filesystem")
	}
	if name == "resize2fs" || name == "e2fsck" {
		r.mu.Lock()
		r.offline = append(r.offline, name)
		r.mu.Unlock()
	}
	return command.Exec{}.Run(ctx, name, args...)
}

// TestGrowAVolumeInUseElsewhere: where the kernel refuses an online
// resize, a volume another mount namespace also has mounted (a machine's
// virtiofsd, a container) is not unmounted, checked or resized under its
// user: the update fails saying so, the data and the mount stay. Once
// nothing else has it, the same update grows it offline.
func TestGrowAVolumeInUseElsewhere(t *testing.T) {
	tk := task("vol", 16*gridtypes.MiB)
	storageDir := t.TempDir()
	run := &refuseOnline{}
	m, err := New(Config{Storage: storagetest.Open(t, storageDir), Mode: LoopExt4, Runner: run})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		if err := m.Deprovision(context.Background(), tk); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	res, err := m.Provision(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	path := res.(Result).Path
	if n, err := ext4Size(filepath.Join(filepath.Dir(path), "fs.img")); n != 16*gridtypes.MiB {
		t.Fatalf("file system of %d bytes, %v", n, err)
	}
	if err := os.WriteFile(filepath.Join(path, "kept"), []byte("in use"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A process in a mount namespace of its own, holding the volume's
	// mount as virtiofsd does.
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "600")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	stopHolder := func() { holder.Process.Kill(); holder.Wait() }
	t.Cleanup(stopHolder)
	self, _ := os.Readlink("/proc/self/ns/mnt")
	for i := 0; ; i++ {
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid))
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", holder.Process.Pid))
		if ns != self && strings.HasPrefix(string(b), "sleep") {
			break
		}
		if i == 100 {
			t.Fatal("the holder has no mount namespace of its own")
		}
		time.Sleep(50 * time.Millisecond)
	}

	_, err = m.Update(ctx, task("vol", 48*gridtypes.MiB))
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), strconv.Itoa(holder.Process.Pid)) {
		t.Fatalf("growing a volume in use elsewhere: %v", err)
	}
	if len(run.offline) != 0 {
		t.Fatalf("ran %v on the image of a mounted volume", run.offline)
	}
	if n := mountCount(t, path); n != 1 {
		t.Fatalf("mounted %d times", n)
	}
	if b, err := os.ReadFile(filepath.Join(path, "kept")); err != nil || string(b) != "in use" {
		t.Fatalf("data: %q %v", b, err)
	}

	stopHolder()
	if _, err := m.Update(ctx, task("vol", 48*gridtypes.MiB)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(path, "big"), make([]byte, 32<<20), 0o600); err != nil {
		t.Fatalf("after growing: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(path, "kept")); err != nil || string(b) != "in use" {
		t.Fatalf("data after growing: %q %v", b, err)
	}
	if n, err := ext4Size(filepath.Join(filepath.Dir(path), "fs.img")); n != 48*gridtypes.MiB {
		t.Fatalf("file system of %d bytes, %v", n, err)
	}
}
