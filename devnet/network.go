package devnet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// The root devnet's network: a bridge g4dv<tag> in the root namespace
// holding the first address of a /24 of 198.18.0.0/15 (the benchmarking
// range, never routed), where the registrar and the hub listen; each node
// a namespace g4dv-<tag>-<name> whose eth0 (a veth whose other end
// g4dv<tag>h<i> is on the bridge) holds the node's address (.10+i), with
// a default route through the bridge. Processes in the root namespace
// reach the nodes' APIs over the bridge. Each node's public interface
// pub0 (the veth g4dv<tag>p<i>) is on the same bridge, the bridge's
// address its gateway, and its public IPv4 pool two addresses of the /24
// (.100+2(i-1) and the next): ipv4 workloads get them on macvlans of
// pub0, reachable from the host.

// MaxRootNodes is the most nodes a root devnet's /24 has room for.
const MaxRootNodes = 60

// tagOf is the devnet's part of names: 6 hex characters of its
// directory's path, so that two devnets on one host do not meet.
func tagOf(dir string) string {
	h := sha256.Sum256([]byte(dir))
	return hex.EncodeToString(h[:3])
}

func (s *State) bridge() string { return "g4dv" + s.Tag }

// planNode fills in where node i (from 1) lives.
func (s *State) planNode(i int) Node {
	n := Node{Name: fmt.Sprintf("node%d", i), Farm: s.Farm}
	if i == 1 {
		n.Farm = s.TestFarm
	}
	if s.Root {
		n.Namespace = fmt.Sprintf("g4dv-%s-%s", s.Tag, n.Name)
		n.Veth = fmt.Sprintf("g4dv%sh%d", s.Tag, i)
		base := strings.TrimSuffix(s.Subnet, "0/24")
		n.IP = base + strconv.Itoa(10+i)
		n.APIPort = 2021
		n.PublicVeth = fmt.Sprintf("g4dv%sp%d", s.Tag, i)
		n.PublicIPs = []string{base + strconv.Itoa(98+2*i) + "/24", base + strconv.Itoa(99+2*i) + "/24"}
	} else {
		n.IP = "127.0.0.1"
	}
	return n
}

// pickSubnet chooses a /24 of 198.18.0.0/15 no address of this host is
// in, starting from one derived from the tag.
func pickSubnet(tag string) (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	start, _ := strconv.ParseUint(tag[:4], 16, 16)
	for i := range 512 {
		k := (int(start) + i) % 512
		prefix := fmt.Sprintf("198.%d.%d.", 18+k/256, k%256)
		used := false
		for _, a := range addrs {
			used = used || strings.HasPrefix(a.String(), prefix)
		}
		if !used && k%256 != 0 && k%256 != 255 {
			return prefix + "0/24", nil
		}
	}
	return "", fmt.Errorf("no free /24 in 198.18.0.0/15 on this host")
}

// run runs a host tool and returns its output; a failure carries what
// the tool said.
func run(ctx context.Context, name string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.String(), nil
}

func linkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// ensureBridge makes the bridge with its address, if missing.
func (s *State) ensureBridge(ctx context.Context) error {
	br := s.bridge()
	if !linkExists(br) {
		if _, err := run(ctx, "ip", "link", "add", br, "type", "bridge"); err != nil {
			return err
		}
	}
	if _, err := run(ctx, "ip", "addr", "replace", s.Host+"/24", "dev", br); err != nil {
		return err
	}
	_, err := run(ctx, "ip", "link", "set", br, "up")
	return err
}

// ensureNodeNet makes the node's namespace and its link to the bridge, if
// missing.
func (s *State) ensureNodeNet(ctx context.Context, n Node) error {
	if !netnsExists(n.Namespace) {
		if _, err := run(ctx, "ip", "netns", "add", n.Namespace); err != nil {
			return err
		}
	}
	if !linkExists(n.Veth) {
		// A half-made namespace from an interrupted start: its eth0 is
		// replaced with the new pair's end.
		_, _ = run(ctx, "ip", "-n", n.Namespace, "link", "del", "eth0")
		if _, err := run(ctx, "ip", "link", "add", n.Veth, "type", "veth", "peer", "name", "eth0", "netns", n.Namespace); err != nil {
			return err
		}
	}
	if n.PublicVeth != "" && !linkExists(n.PublicVeth) {
		_, _ = run(ctx, "ip", "-n", n.Namespace, "link", "del", "pub0")
		if _, err := run(ctx, "ip", "link", "add", n.PublicVeth, "type", "veth", "peer", "name", "pub0", "netns", n.Namespace); err != nil {
			return err
		}
	}
	steps := [][]string{
		{"link", "set", n.Veth, "master", s.bridge()},
		{"link", "set", n.Veth, "up"},
		{"-n", n.Namespace, "link", "set", "lo", "up"},
		{"-n", n.Namespace, "addr", "replace", n.IP + "/24", "dev", "eth0"},
		{"-n", n.Namespace, "link", "set", "eth0", "up"},
		{"-n", n.Namespace, "route", "replace", "default", "via", s.Host},
	}
	if n.PublicVeth != "" {
		steps = append(steps, []string{"link", "set", n.PublicVeth, "master", s.bridge()},
			[]string{"link", "set", n.PublicVeth, "up"}, []string{"-n", n.Namespace, "link", "set", "pub0", "up"})
	}
	for _, args := range steps {
		if _, err := run(ctx, "ip", args...); err != nil {
			return err
		}
	}
	return nil
}

// netnsPIDs lists the processes in the named namespace.
func netnsPIDs(ctx context.Context, ns string) []int {
	if !netnsExists(ns) {
		return nil
	}
	out, _ := run(ctx, "ip", "netns", "pids", ns)
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
