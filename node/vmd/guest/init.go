package guest

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// newRoot is where the root file system is mounted before the move.
const newRoot = "/newroot"

// Main is process 1 of a machine: it makes the machine from ConfigPath,
// runs the entrypoint and powers off; it returns only when not process 1,
// refusing to run (it would power off the host).
func Main() int {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "g4init: not process 1: this is the init of grid4's virtual machines, run by their kernel")
		return 2
	}
	g := &init1{console: os.Stdout}
	status, err := g.run()
	if err != nil {
		status = "failed: " + err.Error()
		g.say("%v", err)
	}
	g.powerOff(status)
	return 1 // not reached
}

// init1 is process 1's state.
type init1 struct {
	console io.Writer
	c       Config
	// status is the device the final word goes to (opened before the
	// root moves, so that it is the initramfs's device file system).
	status *os.File
}

// say prints a line on the console, where the workload's owner reads it.
func (g *init1) say(format string, args ...any) {
	fmt.Fprintf(g.console, "g4init: "+format+"\n", args...)
}

// run makes the machine and runs the entrypoint until it exits; it
// returns the status line for the host.
func (g *init1) run() (string, error) {
	if err := g.early(); err != nil {
		return "", err
	}
	b, err := os.ReadFile(ConfigPath)
	if err != nil {
		return "", err
	}
	if g.c, err = ParseConfig(b); err != nil {
		return "", fmt.Errorf("%s: %w", ConfigPath, err)
	}
	if g.c.Status != "" {
		if g.status, err = os.OpenFile(g.c.Status, os.O_WRONLY|unix.O_NOCTTY, 0); err != nil {
			g.say("status device: %v", err)
		}
	}
	if err := loadModules(g.c.Modules); err != nil {
		return "", err
	}
	steps := []struct {
		what string
		do   func() error
	}{
		{"root file system", g.mountRoot},
		{"mounts", g.mountAll},
		{"network", func() error { return network(g.c.NICs) }},
		{"hostname", g.hostname},
		{"switch root", switchRoot},
		{"ssh keys", g.sshKeys},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			return "", fmt.Errorf("%s: %w", s.what, err)
		}
	}
	power := watchPowerButton()
	go onlineCPUs(500 * time.Millisecond)
	return g.entrypoint(power)
}

// early mounts the kernel's file systems.
func (g *init1) early() error {
	for _, m := range []struct{ fs, target string }{{"devtmpfs", "/dev"}, {"proc", "/proc"}, {"sysfs", "/sys"}} {
		if err := mount(m.fs, m.target, m.fs, unix.MS_NOSUID, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.target, err)
		}
	}
	return nil
}

// mount makes target and mounts there.
func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return unix.Mount(source, target, fstype, flags, data)
}

// loadModules loads each module file; one already there is fine.
func loadModules(files []string) error {
	for _, f := range files {
		fd, err := unix.Open(f, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("module %s: %w", f, err)
		}
		err = unix.FinitModule(fd, "", 0)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load module %s: %w", filepath.Base(f), err)
		}
	}
	return nil
}

// retry calls f until it succeeds or wait has passed: devices appear
// while the drivers probe them.
func retry(wait time.Duration, f func() error) error {
	deadline := time.Now().Add(wait)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (g *init1) mountRoot() error {
	return retry(5*time.Second, func() error {
		return mount(g.c.RootTag, newRoot, "virtiofs", 0, "")
	})
}

// mountAll mounts the shares and disks under the new root.
func (g *init1) mountAll() error {
	for _, m := range g.c.Mounts {
		target := filepath.Join(newRoot, m.Target)
		var flags uintptr = unix.MS_NODEV
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		var err error
		switch m.Kind {
		case Virtiofs:
			err = retry(5*time.Second, func() error { return mount(m.Tag, target, "virtiofs", flags, "") })
		case Disk:
			err = retry(5*time.Second, func() error {
				dev, err := diskBySerial(m.Tag)
				if err != nil {
					return err
				}
				return mount(dev, target, "ext4", flags, "")
			})
		}
		if err != nil {
			return fmt.Errorf("%s %s on %s: %w", m.Kind, m.Tag, m.Target, err)
		}
	}
	return nil
}

// diskBySerial finds the virtio disk whose serial is serial.
func diskBySerial(serial string) (string, error) {
	disks, _ := filepath.Glob("/sys/block/vd*")
	for _, d := range disks {
		if b, _ := os.ReadFile(filepath.Join(d, "serial")); strings.TrimSpace(string(b)) == serial {
			return "/dev/" + filepath.Base(d), nil
		}
	}
	return "", fmt.Errorf("no disk with serial %s", serial)
}

func (g *init1) hostname() error {
	if g.c.Hostname == "" {
		return nil
	}
	return unix.Sethostname([]byte(g.c.Hostname))
}

// switchRoot moves the kernel's file systems into the new root, makes it
// the root (the initramfs stays underneath, unreachable) and adds
// /dev/pts and /dev/shm.
func switchRoot() error {
	for _, d := range []string{"/dev", "/proc", "/sys"} {
		if err := os.MkdirAll(newRoot+d, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(d, newRoot+d, "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move %s: %w", d, err)
		}
	}
	if err := unix.Chdir(newRoot); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move the root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("/dev/pts: %w", err)
	}
	if err := mount("shm", "/dev/shm", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return fmt.Errorf("/dev/shm: %w", err)
	}
	return nil
}

// sshKeys appends the keys to root's authorized_keys.
func (g *init1) sshKeys() error {
	if len(g.c.SSHKeys) == 0 {
		return nil
	}
	if err := os.MkdirAll("/root/.ssh", 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile("/root/.ssh/authorized_keys", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	for _, k := range g.c.SSHKeys {
		if _, err := fmt.Fprintln(f, k); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

// lookPath finds the entrypoint in PATH (in the new root).
func lookPath(file, path string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w in PATH (%s)", file, fs.ErrNotExist, path)
}

// env is the entrypoint's environment, PATH defaulted, and its PATH.
func env(vars []string) ([]string, string) {
	path := ""
	for _, e := range vars {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	if path == "" {
		path = DefaultPath
		vars = append([]string{"PATH=" + path}, vars...)
	}
	return vars, path
}

// entrypoint runs the workload's program in a session of its own, reaping
// every process that ends, until the program itself ends. A press of the
// power button sends its process group SIGTERM, then SIGKILL after the
// grace.
func (g *init1) entrypoint(power <-chan struct{}) (string, error) {
	vars, path := env(g.c.Env)
	prog, err := lookPath(g.c.Args[0], path)
	if err != nil {
		return "", fmt.Errorf("entrypoint: %w", err)
	}
	dir := g.c.WorkingDir
	if dir == "" {
		dir = "/"
	}
	console, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	p, err := os.StartProcess(prog, g.c.Args, &os.ProcAttr{
		Dir: dir, Env: vars, Files: []*os.File{console, console, console},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	console.Close()
	if err != nil {
		return "", fmt.Errorf("entrypoint: %w", err)
	}
	exited := make(chan unix.WaitStatus, 1)
	go reap(p.Pid, exited)
	grace := time.Duration(g.c.StopGraceMS) * time.Millisecond
	if grace == 0 {
		grace = 5 * time.Second
	}
	var kill <-chan time.Time
	stopped := false
	for {
		select {
		case ws := <-exited:
			return g.exitStatus(ws, stopped), nil
		case <-power:
			if !stopped {
				g.say("power button: stopping the entrypoint")
				stopped = true
				_ = unix.Kill(-p.Pid, unix.SIGTERM)
				kill = time.After(grace)
			}
		case <-kill:
			g.say("the entrypoint did not end within %v: killing it", grace)
			_ = unix.Kill(-p.Pid, unix.SIGKILL)
		}
	}
}

// reap waits for every child (orphans are process 1's), sending the
// entrypoint's status when it ends.
func reap(pid int, exited chan<- unix.WaitStatus) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		if got == pid {
			exited <- ws
		}
	}
}

func (g *init1) exitStatus(ws unix.WaitStatus, stopped bool) string {
	var s string
	switch {
	case ws.Exited():
		s = fmt.Sprintf("entrypoint exited with status %d", ws.ExitStatus())
	case ws.Signaled():
		s = fmt.Sprintf("entrypoint killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	default:
		s = fmt.Sprintf("entrypoint ended (wait status %#x)", uint32(ws))
	}
	if stopped {
		s = "stopped: " + s
	}
	g.say("%s", s)
	return s
}

// powerOff ends what remains, writes status for the host and powers the
// machine off.
func (g *init1) powerOff(status string) {
	_ = unix.Kill(-1, unix.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	_ = unix.Kill(-1, unix.SIGKILL)
	if g.status != nil {
		fmt.Fprintln(g.status, status)
		_ = unix.Fsync(int(g.status.Fd()))
	}
	unix.Sync()
	g.say("power off")
	for {
		if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
			g.say("power off: %v", err)
		}
		time.Sleep(time.Second)
	}
}
