package vmd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	other := sp
	other.Env = []string{"GREETING=changed"}
	if err := s.Update(ctx, other); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Update of more than CPU and memory: %v, want %s", err, ErrUnsupported)
	}
	if err := s.Update(ctx, sp); err != nil {
		t.Errorf("Update to the same spec: %v", err)
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

// A machine with a public address: its card sits on the node's public
// interface through a macvtap (here one end of a veth pair, the
// upstream router in a namespace at the other) and has the default
// route; its card on a private network answers from its own address
// through that network's gateway (policy routing), so that replies to a
// port forwarded there go back the way they came. The machine takes a
// neighbour's address as well: nobody hears it (linkguard).
func TestPublicNIC(t *testing.T) {
	needHost(t)
	s := newService(t, config(t))
	parent, up := hosttest.NewUplink(t, 213)
	l := hosttest.NewLAN(t, 214)
	ctx := context.Background()
	sp := spec(t, "1-1-public", fmt.Sprintf(`for d in /sys/class/net/*; do [ "$(cat $d/address)" = 02:00:00:aa:bc:01 ] && ip addr add %s dev ${d##*/} && echo "took the neighbour's address"; done
exec httpd -f -p 80 -h /www`, up.Addr(11)))
	sp.NICs = []NIC{
		{Parent: parent, IP: up.Addr(10), Gateway: up.Addr(1).Addr(), MAC: "02:00:00:aa:bc:01"},
		{Bridge: l.Bridge, IP: l.Addr(5), Gateway: l.Addr(2).Addr(), MAC: "02:00:00:aa:bc:02"},
	}
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	m := s.machine(sp.ID)
	if out := hosttest.Sh(t, "ip", "-d", "link", "show", "dev", m.tap(0)); !strings.Contains(out, "macvtap") || !strings.Contains(out, "02:00:00:aa:bc:01") {
		t.Errorf("%s is not a macvtap with the card's MAC:\n%s", m.tap(0), out)
	}
	fetch := func(what string, get func() (string, error)) {
		t.Helper()
		eventually(t, what, func() error {
			out, err := get()
			if err == nil && out != "served by a machine\n" {
				return fmt.Errorf("got %q", out)
			}
			return err
		})
	}
	pub, priv := fmt.Sprintf("http://%s/", up.Addr(10).Addr()), fmt.Sprintf("http://%s/", l.Addr(5).Addr())
	fetch("the public address, from its subnet", func() (string, error) { return up.Fetch(pub) })
	// From beyond the upstream router: the answer takes the default route.
	fetch("the public address, from the internet", func() (string, error) { return up.FetchFrom(netip.MustParseAddr("198.18.0.9"), pub) })
	// From beyond the private network's gateway: the answer leaves from
	// the private address, so through that gateway, not the default route.
	fetch("the private address, through its gateway", func() (string, error) { return l.FetchFrom(netip.MustParseAddr("192.0.2.7"), priv) })
	consoleHas(t, sp, "took the neighbour's address\n")
	if out, err := up.Fetch(fmt.Sprintf("http://%s/", up.Addr(11).Addr())); err == nil {
		t.Errorf("the machine answered as its neighbour: %q", out)
	}
	pids := machinePids(t, s, sp.ID)
	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s, sp.ID, pids...)
}

// A machine resized while it runs (QEMU plugs vCPUs and memory in): the
// guest sees 2 vCPUs and 256 MiB more, then 384 MiB more, without a
// restart; what cannot be done in place says so, and changes nothing; a
// restart boots with the figures last set.
func TestResize(t *testing.T) {
	needHost(t)
	s := newService(t, config(t))
	ctx := context.Background()
	sp := spec(t, "1-2-resize", `echo booted
last=""
while :; do
	now="cpus=$(nproc) mem=$(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo)MiB"
	[ "$now" != "$last" ] && echo "$now" && last=$now
	sleep 0.2
done`)
	sp.CPU = 1
	if err := s.Start(ctx, sp); err != nil {
		t.Fatal(err)
	}
	consoleHas(t, sp, "booted\n", "cpus=1 mem=")
	boot := lastFigures(t, sp)
	pid := state(t, s, sp.ID).Pid

	resize := func(cpu uint8, more uint64) Spec {
		t.Helper()
		r := sp
		r.CPU, r.Memory = cpu, sp.Memory+more<<20
		if err := s.Update(ctx, r); err != nil {
			b, _ := os.ReadFile(s.machine(sp.ID).processLog())
			t.Fatalf("Update to %d vCPUs and %d MiB more: %v\n%s\nconsole:\n%s", cpu, more, err, b, console(t, sp))
		}
		eventually(t, fmt.Sprintf("%d vCPUs and %d MiB more in the guest", cpu, more), func() error {
			if f := lastFigures(t, sp); f.cpus != int(cpu) || f.mem < boot.mem+int(more)-6 || f.mem > boot.mem+int(more)+6 {
				return fmt.Errorf("guest sees %+v (booted with %+v)", f, boot)
			}
			return nil
		})
		return r
	}
	resize(2, 256)
	last := resize(2, 384)
	// The record holds the new figures: Start with them leaves the
	// machine alone.
	if err := s.Start(ctx, last); err != nil {
		t.Fatal(err)
	}
	if st := state(t, s, sp.ID); st.Pid != pid || strings.Count(console(t, sp), "booted") != 1 {
		t.Errorf("the machine was restarted: pid %d then %d, console:\n%s", pid, st.Pid, console(t, sp))
	}

	for _, c := range []struct {
		what string
		edit func(*Spec)
	}{
		{"more vCPUs than the machine has room for", func(sp *Spec) { sp.CPU = 255; sp.Memory += 128 << 20 }},
		{"fewer vCPUs", func(sp *Spec) { sp.CPU = 1; sp.Memory += 128 << 20 }},
		{"less memory", func(sp *Spec) { sp.Memory -= 128 << 20 }},
		{"memory not in whole 128 MiB blocks", func(sp *Spec) { sp.Memory += 100 << 20 }},
	} {
		bad := last
		c.edit(&bad)
		if err := s.Update(ctx, bad); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want %s", c.what, err, ErrUnsupported)
		}
	}
	time.Sleep(time.Second) // the guest would print new figures within 0.2 s
	if f := lastFigures(t, sp); f.cpus != 2 || f.mem < boot.mem+378 {
		t.Errorf("a refused Update changed the machine: the guest sees %+v", f)
	}
	// A restart boots with the figures on record.
	if err := s.Stop(ctx, sp.ID); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(sp.Console, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx, last); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the last figures after the restart", func() error {
		if f := lastFigures(t, sp); f.cpus != 2 || f.mem < boot.mem+368 {
			return fmt.Errorf("guest sees %+v (first booted with %+v)", f, boot)
		}
		return nil
	})
}

// figures are what the resize test's guest prints.
type figures struct{ cpus, mem int }

// lastFigures returns the last figures the guest printed.
func lastFigures(t *testing.T, sp Spec) figures {
	t.Helper()
	var f figures
	for _, line := range strings.Split(console(t, sp), "\n") {
		var c, m int
		if n, _ := fmt.Sscanf(strings.TrimSpace(line), "cpus=%d mem=%dMiB", &c, &m); n == 2 {
			f = figures{c, m}
		}
	}
	return f
}
