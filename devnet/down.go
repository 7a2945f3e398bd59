package devnet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/grid4/grid4/internal/mountinfo"
	"github.com/grid4/grid4/internal/process"
)

// stopGrace is how long a component has to stop after SIGTERM: a node's
// zosd stops its modules one after the other.
const stopGrace = 30 * time.Second

// DownConfig is what Down stops.
type DownConfig struct {
	// Dir is the devnet's directory.
	Dir string
	// Purge removes the directory too: identities, database, nodes' data.
	Purge bool
	// Progress shows the components as they stop.
	Progress *Progress
}

// Down stops the devnet and leaves nothing of it running or mounted: its
// processes (what the nodes started for workloads too), the nodes'
// mounts, loop devices and the network namespaces of their workloads,
// the nodes' namespaces and links and the bridge. What a node keeps on
// disk stays (unless Purge): Up starts it again as after a reboot, and
// the node restores its workloads.
func Down(ctx context.Context, cfg DownConfig) error {
	if cfg.Progress == nil {
		cfg.Progress = NewProgress(nil, false)
	}
	d, st, err := open(cfg.Dir)
	if err != nil {
		return err
	}
	if err := st.requireRoot(d); err != nil {
		return err
	}
	unlock, err := d.lock()
	if err != nil {
		return err
	}
	defer unlock()
	// Every component is taken down even when one fails: the errors are
	// reported together.
	var errs []error
	for i := len(st.Nodes) - 1; i >= 0; i-- {
		n := st.Nodes[i]
		errs = append(errs, cfg.Progress.Step(n.Name, "stopping", d.Log(n.Name), func() (string, error) {
			return "stopped", st.downNode(ctx, d, n)
		}))
	}
	for _, c := range []string{Hub, Registrar} {
		errs = append(errs, cfg.Progress.Step(c, "stopping", d.Log(c), func() (string, error) {
			return "stopped", d.stop(ctx, c, stopGrace)
		}))
	}
	// Nodes' processes whatever the state says (a node of an older state).
	if process.KillUsing(d.Path("nodes")+"/") > 0 {
		time.Sleep(200 * time.Millisecond) // the killed let go of their files
	}
	if st.Root && linkExists(st.bridge()) {
		if _, err := run(ctx, "ip", "link", "del", st.bridge()); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if cfg.Purge {
		return cfg.Progress.Step("directory", "removing", "", func() (string, error) {
			return "removed " + string(d), mountinfo.RemoveAll(string(d))
		})
	}
	return nil
}

// downNode stops a node and takes away what a reboot of its machine
// would, then its namespace and link.
func (s *State) downNode(ctx context.Context, d Dir, n Node) error {
	if err := d.stop(ctx, n.Name, stopGrace); err != nil {
		return err
	}
	errs := []error{s.cleanNode(ctx, d, n)}
	if s.Root {
		if netnsExists(n.Namespace) {
			if _, err := run(ctx, "ip", "netns", "del", n.Namespace); err != nil {
				errs = append(errs, err)
			}
		}
		// Usually gone with the namespace; a link that goes while being
		// deleted is no failure.
		for _, link := range []string{n.Veth, n.PublicVeth} {
			if link == "" {
				continue
			}
			if _, err := run(ctx, "ip", "link", "del", link); err != nil && linkExists(link) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// cleanNode takes away what a stopped node leaves and a reboot would:
// what outlives zosd on purpose (lazy flist mounts' servers, machines,
// containers) and whatever else runs in its namespace, its mounts and
// its loop devices. The network namespaces of its workloads go with its
// processes: a root node has /run/netns of its own (see startNode).
func (s *State) cleanNode(ctx context.Context, d Dir, n Node) error {
	data := d.nodeData(n.Name)
	for range 50 {
		killed := process.KillUsing(data + "/")
		if s.Root {
			for _, pid := range netnsPIDs(ctx, n.Namespace) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed++
			}
		}
		if killed == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.Join(unmountUnder(data), detachLoops(ctx, data))
}

// unmountUnder unmounts what is mounted at or under dir, deepest first.
func unmountUnder(dir string) error {
	mounts, err := mountinfo.List("/proc/self/mountinfo", dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range slices.Backward(mounts) {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// detachLoops detaches the loop devices backed by files under dir
// (volumes' images).
func detachLoops(ctx context.Context, dir string) error {
	out, err := run(ctx, "losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE")
	if err != nil {
		return nil // no losetup, or no loop devices: nothing of ours
	}
	var errs []error
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[1], dir+"/") {
			if _, err := run(ctx, "losetup", "-d", f[0]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
