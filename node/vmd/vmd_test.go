package vmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grid4/grid4/node/internal/hosttest"
)

// One machine, booted twice under QEMU (TCG here): the first boot runs a
// script that shows its environment, SSH keys, host name and working
// directory on the console, writes to a share and a disk image, and
// serves HTTP on its address, reached from another namespace on the
// bridge; it is paused and resumed, found again by a new Service on the
// same directory (a restart of vmd), and stopped through the power button.
// The second boot of the same root reads what the first wrote, exits,
// and the machine powers off, stopped with its exit status; Start makes
// the stopped machine again, as after a reboot of the node.
func TestMachine(t *testing.T) {
	needHost(t)
	c := config(t)
	s := newService(t, c)
	l := hosttest.NewLAN(t, 212)
	ctx := context.Background()

	share, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "given"), []byte("read me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 32<<20); err != nil {
		t.Fatal(err)
	}
	sp := spec(t, "1-1-vm", `echo "hello from $(hostname) in $(pwd) GREETING=$GREETING"
cat /root/.ssh/authorized_keys
cat /ro/given
touch /ro/x 2>/dev/null || echo "read-only share refused a write"
echo "from the first boot" > /disk/kept && echo "from the first boot" > /share/kept && echo "disk and share written"
exec httpd -f -p 80 -h /www`)
	sp.Env = []string{"GREETING=hi there"}
	sp.WorkingDir = "/tmp"
	sp.Hostname = "vm1"
	sp.SSHKeys = []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGrid4TestKey test@grid4"}
	sp.Mounts = []Mount{{Source: share, Target: "/share"}, {Source: img, Target: "/disk"}, {Source: ro, Target: "/ro", ReadOnly: true}}
	sp.NICs = []NIC{{Bridge: l.Bridge, IP: l.Addr(5), Gateway: l.Addr(1).Addr(), MAC: "02:00:00:aa:bb:01"}}
	sp.CPU = 1
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	consoleHas(t, sp,
		"hello from vm1 in /tmp GREETING=hi there\n",
		sp.SSHKeys[0]+"\n",
		"read me\n",
		"read-only share refused a write\n",
		"disk and share written\n")
	url := fmt.Sprintf("http://%s/", l.Addr(5).Addr())
	eventually(t, "fetch "+url, func() error {
		out, err := l.Fetch(url)
		if err == nil && out != "served by a machine\n" {
			return fmt.Errorf("got %q", out)
		}
		return err
	})
	if b, err := os.ReadFile(filepath.Join(share, "kept")); err != nil || string(b) != "from the first boot\n" {
		t.Errorf("share: %q, %v", b, err)
	}

	st := state(t, s, sp.ID)
	if st.Status != Running || st.Backend != QEMUTCG || st.Pid == 0 || st.Started.IsZero() || st.Console != sp.Console || st.ExitReason != "" {
		t.Errorf("state %+v", st)
	}
	m := s.machine(sp.ID)
	if out := hosttest.Sh(t, "ip", "link", "show", "dev", m.tap(0)); !strings.Contains(out, "master "+l.Bridge) {
		t.Errorf("TAP %s is not a port of %s:\n%s", m.tap(0), l.Bridge, out)
	}
	if err := s.Start(ctx, sp); err != nil {
		t.Errorf("Start of a running machine: %v", err)
	}
	if st2 := state(t, s, sp.ID); st2.Pid != st.Pid {
		t.Errorf("Start of a running machine made it again: pid %d, then %d", st.Pid, st2.Pid)
	}

	if err := s.Pause(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(ctx, sp.ID); err != nil {
		t.Errorf("Pause twice: %v", err)
	}
	if st := state(t, s, sp.ID); st.Status != Paused {
		t.Errorf("after Pause: %+v", st)
	}
	if out, err := l.Fetch(url); err == nil {
		t.Errorf("a paused machine answered: %q", out)
	}
	if err := s.Resume(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, Resources{ID: sp.ID, CPU: 2, Memory: sp.Memory}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Update: %v, want %s", err, ErrUnsupported)
	}
	if err := s.Update(ctx, Resources{ID: sp.ID, CPU: 1, Memory: sp.Memory}); err != nil {
		t.Errorf("Update to the same figures: %v", err)
	}

	// A restarted vmd finds the machine running, and stops it.
	s2 := newService(t, c)
	if st := state(t, s2, sp.ID); st.Status != Running || st.Pid != state(t, s, sp.ID).Pid {
		t.Errorf("a new service sees %+v", st)
	}
	eventually(t, "fetch after resume", func() error { _, err := l.Fetch(url); return err })
	pids := machinePids(t, s2, sp.ID)
	if len(pids) < 4 { // QEMU, three virtiofsd (root, share, read-only share), each maybe with its sandbox
		t.Errorf("processes of the machine: %v", pids)
	}
	if err := s2.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	consoleHas(t, sp, "g4init: power button: stopping the entrypoint\n", "g4init: stopped: entrypoint killed by signal 15")
	assertGone(t, s2, sp.ID, pids...)

	// The second boot sees what the first wrote, exits, powers off.
	sp.Args = []string{"/bin/sh", "-c", `echo "disk: $(cat /disk/kept)"; echo "share: $(cat /share/kept)"; exit 3`}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	consoleHas(t, sp, "disk: from the first boot\n", "share: from the first boot\n", "g4init: entrypoint exited with status 3")
	eventually(t, "power off", func() error {
		if st := state(t, s, sp.ID); st.Status != Stopped || st.ExitReason != "entrypoint exited with status 3" || st.Pid != 0 {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	if list, err := s.List(ctx); err != nil || len(list) != 1 || list[0].Status != Stopped {
		t.Errorf("List = %+v, %v", list, err)
	}
	if err := s.Pause(ctx, sp.ID); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Pause of a stopped machine: %v", err)
	}
	// As after a reboot of the node: Start with the same spec makes the
	// stopped machine again from its record, and it boots.
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the third boot", func() error {
		b, _ := os.ReadFile(sp.Console)
		if n := strings.Count(string(b), "g4init: entrypoint exited with status 3"); n != 2 {
			return fmt.Errorf("%d exits on the console", n)
		}
		return nil
	})
	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s, sp.ID)
}
