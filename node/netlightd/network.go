package netlightd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"

	"github.com/grid4/grid4/node/internal/iproute"
)

// Forward sends a port of the host's addresses to a workload.
type Forward struct {
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// HostPort is the port on the host's addresses.
	HostPort uint16 `json:"host_port"`
	// IP is the workload's address in the network's subnet.
	IP netip.Addr `json:"ip"`
	// Port is the workload's port.
	Port uint16 `json:"port"`
}

// NetworkSpec is a network as its workload defines it.
type NetworkSpec struct {
	// ID is the workload's ID (provisiond.Task.ID), unique on the node.
	ID string `json:"id"`
	// Subnet is the network's IPv4 subnet.
	Subnet netip.Prefix `json:"subnet"`
	// Forwards are the network's inbound port forwards.
	Forwards []Forward `json:"forwards,omitempty"`
}

// Network is a network as made.
type Network struct {
	Names
	// Subnet and Gateway are the network's (gateway with prefix length).
	Subnet  string `json:"subnet"`
	Gateway string `json:"gateway"`
	// TransitAddress is the namespace's address on its way out (with
	// prefix length); the host end is TransitGateway.
	TransitAddress string `json:"transit_address"`
	TransitGateway string `json:"transit_gateway"`
	// Forwards are the port forwards in place.
	Forwards []Forward `json:"forwards,omitempty"`
}

// check validates the spec.
func (n NetworkSpec) check() error {
	if n.ID == "" {
		return fmt.Errorf("%w: no network ID", ErrInvalid)
	}
	if !n.Subnet.IsValid() || !n.Subnet.Addr().Is4() || n.Subnet.Bits() > 30 {
		return fmt.Errorf("%w: subnet %s is not an IPv4 prefix of /30 or larger", ErrInvalid, n.Subnet)
	}
	sub := n.Subnet.Masked()
	seen := map[string]bool{}
	for _, f := range n.Forwards {
		if f.Protocol != "tcp" && f.Protocol != "udp" {
			return fmt.Errorf("%w: port forward protocol %q is not tcp or udp", ErrInvalid, f.Protocol)
		}
		if f.HostPort == 0 || f.Port == 0 {
			return fmt.Errorf("%w: port forward %s/%d: ports must not be 0", ErrInvalid, f.Protocol, f.HostPort)
		}
		if !sub.Contains(f.IP) || f.IP == sub.Addr() || f.IP == sub.Addr().Next() {
			return fmt.Errorf("%w: port forward %s/%d: %s is not a machine address of %s", ErrInvalid, f.Protocol, f.HostPort, f.IP, sub)
		}
		key := fmt.Sprintf("%s/%d", f.Protocol, f.HostPort)
		if seen[key] {
			return fmt.Errorf("%w: host port %s forwarded twice", ErrInvalid, key)
		}
		seen[key] = true
	}
	return nil
}

// EnsureNetwork makes (or completes, or brings back) the network and its
// rules, and records it.
func (s *Service) EnsureNetwork(ctx context.Context, spec NetworkSpec) (Network, error) {
	if err := spec.check(); err != nil {
		return Network{}, err
	}
	spec.Subnet = spec.Subnet.Masked()
	if err := s.ip.Check(); err != nil {
		return Network{}, fmt.Errorf("netlightd: cannot manage networks on this node: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load()
	if err != nil {
		return Network{}, err
	}
	if err := portsFree(st, spec); err != nil {
		return Network{}, err
	}
	nw, ok := st.Networks[spec.ID]
	if !ok {
		if nw.Slot, err = st.freeSlot(s.slots()); err != nil {
			return Network{}, err
		}
	}
	nw.Subnet, nw.Forwards = spec.Subnet, slices.Clone(spec.Forwards)
	st.Networks[spec.ID] = nw
	if err := s.save(st); err != nil {
		return Network{}, err
	}
	out, err := s.makeNetwork(ctx, spec.ID, nw)
	if err != nil {
		return Network{}, err
	}
	if err := s.applyHost(st); err != nil {
		return Network{}, err
	}
	if s.c.HostForwarding {
		if err := enableHostForwarding(); err != nil {
			return Network{}, err
		}
	}
	return out, nil
}

// portsFree fails when another network forwards one of spec's host ports.
func portsFree(st state, spec NetworkSpec) error {
	for id, nw := range st.Networks {
		if id == spec.ID {
			continue
		}
		for _, theirs := range nw.Forwards {
			for _, f := range spec.Forwards {
				if f.Protocol == theirs.Protocol && f.HostPort == theirs.HostPort {
					return fmt.Errorf("netlightd: %w: %s/%d", ErrPortTaken, f.Protocol, f.HostPort)
				}
			}
		}
	}
	return nil
}

// makeNetwork makes what is missing of a network's links, addresses,
// routes and namespace rules; every step checks or replaces, so it runs
// again after a crash or a reboot.
func (s *Service) makeNetwork(ctx context.Context, id string, nw networkState) (Network, error) {
	n := NamesOf(s.c.Salt, id)
	gw := netip.PrefixFrom(nw.Subnet.Addr().Next(), nw.Subnet.Bits())
	hostT, nsT := s.transit(nw.Slot)
	if !iproute.NetnsExists(n.Namespace) {
		if err := s.ip.Do(ctx, "netns", "add", n.Namespace); err != nil {
			return Network{}, fmt.Errorf("netlightd: %w", err)
		}
	}
	if !iproute.LinkExists(n.Bridge) {
		if err := s.ip.Do(ctx, "link", "add", "name", n.Bridge, "type", "bridge"); err != nil {
			return Network{}, fmt.Errorf("netlightd: %w", err)
		}
	}
	if err := s.pair(ctx, n.Namespace, n.Veth, LAN); err != nil {
		return Network{}, err
	}
	if err := s.pair(ctx, n.Namespace, n.Transit, Out); err != nil {
		return Network{}, err
	}
	for _, args := range [][]string{
		{"link", "set", "dev", n.Bridge, "up"},
		{"link", "set", "dev", n.Veth, "master", n.Bridge, "up"},
		{"addr", "replace", hostT.String(), "dev", n.Transit},
		{"link", "set", "dev", n.Transit, "up"},
		{"-n", n.Namespace, "addr", "replace", gw.String(), "dev", LAN},
		{"-n", n.Namespace, "addr", "replace", nsT.String(), "dev", Out},
		{"-n", n.Namespace, "link", "set", "dev", LAN, "up"},
		{"-n", n.Namespace, "link", "set", "dev", Out, "up"},
		{"-n", n.Namespace, "link", "set", "dev", "lo", "up"},
		{"-n", n.Namespace, "route", "replace", "default", "via", hostT.Addr().String(), "dev", Out},
	} {
		if err := s.ip.Do(ctx, args...); err != nil {
			return Network{}, fmt.Errorf("netlightd: %w", err)
		}
	}
	if err := inNamespace(n.Namespace, func() error { return os.WriteFile(ipForward, []byte("1\n"), 0o644) }); err != nil {
		return Network{}, fmt.Errorf("netlightd: forwarding in %s: %w", n.Namespace, err)
	}
	if err := applyNamespace(n.Namespace, nw.Forwards); err != nil {
		return Network{}, err
	}
	return Network{
		Names: n, Subnet: nw.Subnet.String(), Gateway: gw.String(),
		TransitAddress: nsT.String(), TransitGateway: hostT.Addr().String(), Forwards: nw.Forwards,
	}, nil
}

// pair makes the veth hostEnd / nsEnd (in ns) unless both ends exist; a
// half pair (one end gone with a crash) is remade.
func (s *Service) pair(ctx context.Context, ns, hostEnd, nsEnd string) error {
	h, in := iproute.LinkExists(hostEnd), s.ip.LinkExistsIn(ctx, ns, nsEnd)
	if h && in {
		return nil
	}
	if h {
		_ = s.ip.Do(ctx, "link", "del", "dev", hostEnd)
	}
	if in {
		_ = s.ip.In(ctx, ns, "link", "del", "dev", nsEnd)
	}
	if err := s.ip.Do(ctx, "link", "add", "name", hostEnd, "type", "veth", "peer", "name", nsEnd, "netns", ns); err != nil {
		return fmt.Errorf("netlightd: %w", err)
	}
	return nil
}

// RemoveNetwork removes the network's links, namespace and rules, and
// forgets it. Machines must be gone first (the engine removes them before
// their networks). Removing an unknown network succeeds.
func (s *Service) RemoveNetwork(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeMesh(id)
	n := NamesOf(s.c.Salt, id)
	for _, link := range []string{n.Veth, n.Transit, n.Bridge} {
		if iproute.LinkExists(link) {
			if err := s.ip.Do(ctx, "link", "del", "dev", link); err != nil {
				return fmt.Errorf("netlightd: %w", err)
			}
		}
	}
	if iproute.NetnsExists(n.Namespace) {
		if err := s.ip.Do(ctx, "netns", "del", n.Namespace); err != nil {
			return fmt.Errorf("netlightd: %w", err)
		}
	}
	st, err := s.load()
	if err != nil {
		return err
	}
	if _, ok := st.Networks[id]; !ok {
		return nil
	}
	delete(st.Networks, id)
	// The rules go before the record: a crash in between leaves a record
	// whose removal runs again.
	if err := s.applyHost(st); err != nil {
		return err
	}
	return s.save(st)
}
