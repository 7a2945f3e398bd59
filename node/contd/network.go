package contd

import (
	"context"
	"fmt"

	"github.com/grid4/grid4/node/internal/iproute"
	"github.com/grid4/grid4/node/internal/linkguard"
)

// privateTable is the routing table, in a container with a public
// address, of what leaves from its private address.
const privateTable = "100"

// plug makes the container's network namespace with what sp asks for:
// the veth joining it to the network's bridge, with the container's
// address, MAC and default route on eth0; and a public address on a
// macvlan (PublicLink), which then has the default route while eth0's
// gateway serves what leaves from eth0's address (a table of its own),
// so that answers to a port forwarded to the private address go back
// the way they came. What exists of a previous attempt is replaced.
func (s *Service) plug(ctx context.Context, c container, sp Spec) error {
	n, p := sp.Network, sp.Public
	if n != nil && !iproute.LinkExists(n.Bridge) {
		return fmt.Errorf("contd: %w: bridge %s does not exist", ErrNoNetwork, n.Bridge)
	}
	if p != nil && !iproute.LinkExists(p.Parent) {
		return fmt.Errorf("contd: %w: interface %s does not exist", ErrNoNetwork, p.Parent)
	}
	if err := s.unplug(ctx, c); err != nil {
		return err
	}
	in := func(args ...string) []string { return append([]string{"-n", c.netns}, args...) }
	steps := [][]string{{"netns", "add", c.netns}, in("link", "set", "dev", "lo", "up")}
	if n != nil {
		steps = append(steps,
			[]string{"link", "add", "name", c.name, "type", "veth", "peer", "name", Eth, "netns", c.netns},
			[]string{"link", "set", "dev", c.name, "master", n.Bridge, "up"})
		if n.MAC != "" {
			steps = append(steps, in("link", "set", "dev", Eth, "address", n.MAC))
		}
		steps = append(steps, in("addr", "add", n.IP.String(), "dev", Eth), in("link", "set", "dev", Eth, "up"))
		if n.Gateway.IsValid() && p == nil {
			steps = append(steps, in("route", "add", "default", "via", n.Gateway.String(), "dev", Eth))
		}
		if n.Gateway.IsValid() && p != nil {
			steps = append(steps,
				in("route", "add", n.IP.Masked().String(), "dev", Eth, "table", privateTable),
				in("route", "add", "default", "via", n.Gateway.String(), "dev", Eth, "table", privateTable),
				in("rule", "add", "from", n.IP.Addr().String(), "table", privateTable, "priority", "1000"))
		}
	}
	if p != nil {
		// Made on the host under the container's name, then moved in and
		// renamed; its MAC is the address's own.
		steps = append(steps,
			[]string{"link", "add", "link", p.Parent, "name", c.name + "p", "address", p.MAC, "netns", c.netns, "type", "macvlan", "mode", "bridge"},
			in("link", "set", "dev", c.name+"p", "name", PublicLink),
			in("addr", "add", p.IP.String(), "dev", PublicLink),
			in("link", "set", "dev", PublicLink, "up"),
			in("route", "add", "default", "via", p.Gateway.String(), "dev", PublicLink))
	}
	for _, args := range steps {
		if err := s.ip.Do(ctx, args...); err != nil {
			return fmt.Errorf("contd: %w", err)
		}
	}
	if p != nil {
		// The container sends only as its address and MAC on the public
		// network (linkguard): it has raw sockets.
		if err := linkguard.Guard(c.netns, PublicLink, p.MAC, p.IP.Addr()); err != nil {
			return fmt.Errorf("contd: %w", err)
		}
	}
	return nil
}

// unplug removes the container's veth (both ends) and namespace.
func (s *Service) unplug(ctx context.Context, c container) error {
	if iproute.LinkExists(c.name) {
		if err := s.ip.Do(ctx, "link", "del", "dev", c.name); err != nil {
			return fmt.Errorf("contd: %w", err)
		}
	}
	if iproute.NetnsExists(c.netns) {
		// The public macvlan first (under its name, or the one it is
		// made with if a crash came before the rename): deleting a link
		// is synchronous, while those of a deleted namespace linger and
		// keep its MAC taken.
		for _, l := range []string{PublicLink, c.name + "p"} {
			if s.ip.LinkExistsIn(ctx, c.netns, l) {
				_ = s.ip.In(ctx, c.netns, "link", "del", "dev", l)
			}
		}
		if err := s.ip.Do(ctx, "netns", "del", c.netns); err != nil {
			return fmt.Errorf("contd: %w", err)
		}
	}
	return nil
}
