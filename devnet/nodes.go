package devnet

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	zosclient "github.com/grid4/grid4/node/zosapi/client"
	"github.com/grid4/grid4/registrar/api"
	regclient "github.com/grid4/grid4/registrar/client"
)

// open reads the devnet in dir.
func open(dir string) (Dir, *State, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	d := Dir(abs)
	st, err := d.LoadState()
	return d, st, err
}

// nodes plans the nodes a new count adds, then starts each node that is
// not running and waits for its registration, one after the other: on a
// new registrar node k gets node id k.
func (u *upper) nodes(ctx context.Context) error {
	want := u.cfg.Nodes
	if want == 0 && len(u.st.Nodes) == 0 {
		want = DefaultNodes
	}
	if u.st.Root && want > MaxRootNodes {
		return fmt.Errorf("--nodes %d: a devnet has room for %d nodes", want, MaxRootNodes)
	}
	for i := len(u.st.Nodes) + 1; i <= want; i++ {
		n := u.st.planNode(i)
		if !u.st.Root {
			port, err := freePort(n.IP, 0)
			if err != nil {
				return err
			}
			n.APIPort = port
		}
		u.st.Nodes = append(u.st.Nodes, n)
	}
	if err := u.dir.saveState(u.st); err != nil {
		return err
	}
	for i := range u.st.Nodes {
		n := &u.st.Nodes[i]
		err := u.cfg.Progress.Step(n.Name, "starting", u.dir.Log(n.Name), func() (string, error) {
			if err := u.startNode(ctx, *n); err != nil {
				return "", err
			}
			id, err := u.awaitRegistration(ctx, *n)
			if err != nil {
				return "", err
			}
			n.NodeID = id
			if err := u.dir.saveState(u.st); err != nil {
				return "", err
			}
			where := "on " + n.IP
			if u.st.Root {
				where = fmt.Sprintf("in namespace %s, %s", n.Namespace, n.IP)
			}
			return fmt.Sprintf("registered: node %d in farm %d, %s", n.NodeID, n.Farm, where), nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ownNetnsDir mounts a tmpfs on /run/netns, then runs its arguments.
const ownNetnsDir = `mount -t tmpfs -o mode=0755 devnet-netns /run/netns && exec "$0" "$@"`

// startNode starts the node's bootstrap (in its namespace as root), which
// starts zosd, unless it runs.
func (u *upper) startNode(ctx context.Context, n Node) error {
	if _, ok := u.dir.Running(n.Name); ok {
		return nil
	}
	// A node that is not running starts as after a reboot: nothing of
	// its previous run left (it may have been killed).
	if err := u.st.cleanNode(ctx, u.dir, n); err != nil {
		return err
	}
	iface := "lo"
	if u.st.Root {
		if err := u.st.ensureNodeNet(ctx, n); err != nil {
			return err
		}
		iface = "eth0"
		// The host is the public network's router: a restarted node
		// brings its public addresses back (on the same MAC addresses,
		// netlightd derives them); entries the host marked failed while
		// the node was down are dropped, so that the first packets go out
		// at once rather than after the kernel's retry delay.
		for _, ip := range n.PublicIPs {
			_, _ = run(ctx, "ip", "neigh", "flush", "to", strings.TrimSuffix(ip, "/24"), "dev", u.st.bridge())
		}
	}
	powerOff, err := u.dir.powerOffScript(n.Name)
	if err != nil {
		return err
	}
	data := u.dir.nodeData(n.Name) + "/"
	argv := []string{u.bins[BinBootstrap], "--data", data, "--zosd", u.bins[BinZosd],
		"--upgrade-publisher-key", u.ids.publisherKey(), "--",
		"--registrar", u.st.RegistrarURL(), "--farm", strconv.FormatUint(n.Farm, 10), "--zos-version", u.st.Version,
		"--interface", iface, "--api-listen", fmt.Sprintf("%s:%d", n.IP, n.APIPort), "--api-url", n.APIURL(),
		"--geoip-url", "none", "--country", "Belgium", "--city", "Ghent", "--latitude", "51.05", "--longitude", "3.72",
		"--hub", u.st.HubURL(), "--net-salt", u.st.Tag + n.Name, "--power-off-command", powerOff}
	argv = append(argv, nodeTimingFlags...)
	if len(n.PublicIPs) > 0 {
		argv = append(argv, "--public-interface", "pub0", "--public-gateway", u.st.Host)
		for _, ip := range n.PublicIPs {
			argv = append(argv, "--public-ip", ip)
		}
	}
	if u.st.Root {
		// ip netns exec gives the node a mount namespace of its own (with
		// the namespace's /sys); a tmpfs on its /run/netns keeps the
		// namespaces it makes for workloads its own too: they go when its
		// processes do, as at a reboot, and never meet another node's.
		argv = append([]string{"ip", "netns", "exec", n.Namespace, "sh", "-c", ownNetnsDir}, argv...)
	}
	return u.dir.start(n.Name, argv)
}

// powerOffScript writes what the node runs to power its host off when
// the farmer's power target is off: the host is the developer's machine,
// so it stops the node alone (SIGTERM to its bootstrap), as a power-off
// would; 'gridctl devnet up' is its power button.
func (d Dir) powerOffScript(name string) (string, error) {
	path := d.Path("run", name+".poweroff")
	script := fmt.Sprintf("#!/bin/sh\n# gridctl devnet: %s powers off: stop it ('gridctl devnet up' starts it again).\nexec kill -TERM \"$(cat '%s')\"\n", name, d.pidFile(name))
	if err := os.MkdirAll(d.Path("run"), 0o700); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(script), 0o700)
}

// awaitRegistration waits for the node on the registrar, known by the
// API URL it publishes, and returns its id.
func (u *upper) awaitRegistration(ctx context.Context, n Node) (uint64, error) {
	reg, err := regclient.New(u.st.RegistrarURL(), regclient.WithHTTPClient(&http.Client{Timeout: 5 * time.Second}))
	if err != nil {
		return 0, err
	}
	var id uint64
	err = u.dir.await(ctx, n.Name, u.cfg.Timeout, func(ctx context.Context) error {
		for nd, err := range reg.Nodes(ctx, regclient.NodeFilter{FarmID: n.Farm}) {
			if err != nil {
				return err
			}
			if slices.Contains(nd.APIEndpoints, n.APIURL()) {
				id = nd.NodeID
				return nil
			}
		}
		return fmt.Errorf("not registered yet")
	})
	return id, err
}

// approve approves the nodes the farmer has not approved yet, then waits
// for each to be online and to answer on its API.
func (u *upper) approve(ctx context.Context) error {
	farmer, err := u.client(u.ids.farmer)
	if err != nil {
		return err
	}
	return u.cfg.Progress.Step("nodes", "approving, waiting for them online", "", func() (string, error) {
		byFarm := map[uint64][]uint64{}
		for _, n := range u.st.Nodes {
			nd, err := farmer.Node(ctx, n.NodeID)
			if err != nil {
				return "", fmt.Errorf("%s: %w", n.Name, err)
			}
			if !nd.Approved {
				byFarm[n.Farm] = append(byFarm[n.Farm], n.NodeID)
			}
		}
		for farm, ids := range byFarm {
			if err := farmer.ApproveNodes(ctx, farm, ids...); err != nil {
				return "", fmt.Errorf("approving nodes %v of farm %d: %w", ids, farm, err)
			}
		}
		for _, n := range u.st.Nodes {
			if err := u.awaitServing(ctx, farmer, n); err != nil {
				return "", fmt.Errorf("%s: %w (log: %s)", n.Name, err, u.dir.Log(n.Name))
			}
		}
		return fmt.Sprintf("%d approved, online, answering on their API", len(u.st.Nodes)), nil
	})
}

// awaitServing waits until the registrar shows the node approved and
// online and its zos-api-light answers the farmer.
func (u *upper) awaitServing(ctx context.Context, farmer *regclient.Client, n Node) error {
	zos, err := zosclient.New(n.APIURL(), u.ids.farmer, u.st.FarmerTwin, nil)
	if err != nil {
		return err
	}
	return u.dir.await(ctx, n.Name, u.cfg.Timeout, func(ctx context.Context) error {
		nd, err := farmer.Node(ctx, n.NodeID)
		if err != nil {
			return err
		}
		if !nd.Approved || !nd.Online {
			return fmt.Errorf("approved %v, online %v on the registrar", nd.Approved, nd.Online)
		}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		_, err = zos.Version(cctx)
		return err
	})
}

// nodeView is how a node looks on the registrar, for status.
func nodeView(nd api.Node) string {
	state := "offline"
	if nd.Online {
		state = "online"
	}
	if nd.Approved {
		state += ", approved"
	}
	if nd.ZosVersion != "" {
		state += ", " + nd.ZosVersion
	}
	return state
}
