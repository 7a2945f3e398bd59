package contd

import (
	"context"
	"fmt"

	"github.com/grid4/grid4/node/internal/iproute"
)

// plug makes the container's network namespace and the veth joining it
// to the network's bridge, with the container's address, MAC and default
// route on eth0. What exists of a previous attempt is replaced.
func (s *Service) plug(ctx context.Context, c container, n Network) error {
	if !iproute.LinkExists(n.Bridge) {
		return fmt.Errorf("contd: %w: bridge %s does not exist", ErrNoNetwork, n.Bridge)
	}
	if err := s.unplug(ctx, c); err != nil {
		return err
	}
	steps := [][]string{
		{"netns", "add", c.netns},
		{"link", "add", "name", c.name, "type", "veth", "peer", "name", Eth, "netns", c.netns},
		{"link", "set", "dev", c.name, "master", n.Bridge, "up"},
	}
	if n.MAC != "" {
		steps = append(steps, []string{"-n", c.netns, "link", "set", "dev", Eth, "address", n.MAC})
	}
	steps = append(steps,
		[]string{"-n", c.netns, "addr", "add", n.IP.String(), "dev", Eth},
		[]string{"-n", c.netns, "link", "set", "dev", Eth, "up"},
		[]string{"-n", c.netns, "link", "set", "dev", "lo", "up"},
	)
	if n.Gateway.IsValid() {
		steps = append(steps, []string{"-n", c.netns, "route", "add", "default", "via", n.Gateway.String(), "dev", Eth})
	}
	for _, args := range steps {
		if err := s.ip.Do(ctx, args...); err != nil {
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
		if err := s.ip.Do(ctx, "netns", "del", c.netns); err != nil {
			return fmt.Errorf("contd: %w", err)
		}
	}
	return nil
}
