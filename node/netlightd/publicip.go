package netlightd

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/grid4/grid4/node/internal/iproute"
)

// PublicIPSpec asks for a public address.
type PublicIPSpec struct {
	// ID is the workload's ID (provisiond.Task.ID), unique on the node.
	ID string `json:"id"`
	// Want is the address wanted ("" for any free one).
	Want string `json:"want,omitempty"`
}

// PublicIP is a public address as set up: on the macvlan PublicLink of
// the public interface, in a namespace of its own, with a default route
// via the pool's gateway.
type PublicIP struct {
	// IP is the address with its prefix length.
	IP string `json:"ip"`
	// Gateway is the default route.
	Gateway string `json:"gateway"`
	// Namespace holds the link.
	Namespace string `json:"namespace"`
}

// EnsurePublicIP gives the workload an address of the pool (the one it
// has, if any) and makes (or brings back) its namespace and link.
func (s *Service) EnsurePublicIP(ctx context.Context, spec PublicIPSpec) (PublicIP, error) {
	if spec.ID == "" {
		return PublicIP{}, fmt.Errorf("%w: no workload ID", ErrInvalid)
	}
	if s.c.PublicInterface == "" || len(s.c.PublicPool) == 0 || !s.c.PublicGateway.IsValid() {
		return PublicIP{}, fmt.Errorf("netlightd: %w", ErrNotConfigured)
	}
	if err := s.ip.Check(); err != nil {
		return PublicIP{}, fmt.Errorf("netlightd: cannot manage networks on this node: %w", err)
	}
	if !iproute.LinkExists(s.c.PublicInterface) {
		return PublicIP{}, fmt.Errorf("netlightd: public interface %s not found", s.c.PublicInterface)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, err := s.allocate(spec)
	if err != nil {
		return PublicIP{}, err
	}
	ns, mv := PublicNamespaceOf(s.c.Salt, spec.ID), macvlanPrefix+iproute.ShortID(s.c.Salt+spec.ID)
	if !iproute.NetnsExists(ns) {
		if err := s.ip.Do(ctx, "netns", "add", ns); err != nil {
			return PublicIP{}, fmt.Errorf("netlightd: %w", err)
		}
	}
	if !s.ip.LinkExistsIn(ctx, ns, PublicLink) {
		// Made in the namespace under a temporary name, then renamed:
		// a crash in between leaves a link the next run renames.
		if !s.ip.LinkExistsIn(ctx, ns, mv) {
			// The same MAC every time the address is made (after a
			// reboot too): the upstream router's ARP entry stays right.
			if err := s.ip.Do(ctx, "link", "add", "name", mv, "link", s.c.PublicInterface, "address", PublicMAC(s.c.Salt, spec.ID),
				"netns", ns, "type", "macvlan", "mode", "bridge"); err != nil {
				return PublicIP{}, fmt.Errorf("netlightd: %w", err)
			}
		}
		if err := s.ip.In(ctx, ns, "link", "set", "dev", mv, "name", PublicLink); err != nil {
			return PublicIP{}, fmt.Errorf("netlightd: %w", err)
		}
	}
	if err := s.ip.In(ctx, ns, "addr", "replace", addr.String(), "dev", PublicLink); err != nil {
		return PublicIP{}, fmt.Errorf("netlightd: %w", err)
	}
	if err := s.linkUp(ctx, ns); err != nil {
		return PublicIP{}, fmt.Errorf("netlightd: %w", err)
	}
	for _, args := range [][]string{
		{"link", "set", "dev", "lo", "up"},
		{"route", "replace", "default", "via", s.c.PublicGateway.String(), "dev", PublicLink},
	} {
		if err := s.ip.In(ctx, ns, args...); err != nil {
			return PublicIP{}, fmt.Errorf("netlightd: %w", err)
		}
	}
	return PublicIP{IP: addr.String(), Gateway: s.c.PublicGateway.String(), Namespace: ns}, nil
}

// macvlanGone bounds the wait for the kernel to finish removing a
// namespace deleted just before (its links go in a background work queue).
const macvlanGone = 10 * time.Second

// linkUp brings PublicLink up in ns. The kernel refuses a macvlan whose MAC
// another macvlan on the same parent still has ("Address already in use");
// that happens when the namespace of the same workload was deleted a moment
// ago (by RemovePublicIP, or by hand) and the kernel has not yet destroyed
// its link, so it is retried until the old link is gone.
func (s *Service) linkUp(ctx context.Context, ns string) error {
	deadline := time.Now().Add(macvlanGone)
	for {
		err := s.ip.In(ctx, ns, "link", "set", "dev", PublicLink, "up")
		if err == nil || !strings.Contains(err.Error(), "Address already in use") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waiting for the previous link with this MAC to go: %w)", err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// allocate returns the workload's address, choosing one (the one wanted,
// or the first free) if it has none.
func (s *Service) allocate(spec PublicIPSpec) (netip.Prefix, error) {
	st, err := s.load()
	if err != nil {
		return netip.Prefix{}, err
	}
	if p, ok := st.Public[spec.ID]; ok {
		return p, nil
	}
	taken := map[netip.Addr]bool{}
	for _, p := range st.Public {
		taken[p.Addr()] = true
	}
	for _, p := range s.c.PublicPool {
		if taken[p.Addr()] || (spec.Want != "" && p.Addr().String() != spec.Want) {
			continue
		}
		st.Public[spec.ID] = p
		return p, s.save(st)
	}
	if spec.Want != "" {
		return netip.Prefix{}, fmt.Errorf("netlightd: %w: %s", ErrPoolExhausted, spec.Want)
	}
	return netip.Prefix{}, fmt.Errorf("netlightd: %w (all %d in use)", ErrPoolExhausted, len(s.c.PublicPool))
}

// RemovePublicIP removes the namespace (and the link in it) and frees the
// address. Removing an unknown one succeeds.
func (s *Service) RemovePublicIP(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := PublicNamespaceOf(s.c.Salt, id)
	if iproute.NetnsExists(ns) {
		// The link first: deleting it is synchronous, while the links of a
		// deleted namespace linger for a while and keep the MAC taken.
		_ = s.ip.In(ctx, ns, "link", "del", "dev", PublicLink)
		if err := s.ip.Do(ctx, "netns", "del", ns); err != nil {
			return fmt.Errorf("netlightd: %w", err)
		}
	}
	st, err := s.load()
	if err != nil {
		return err
	}
	if _, ok := st.Public[id]; !ok {
		return nil
	}
	delete(st.Public, id)
	return s.save(st)
}

// PublicMAC is the MAC of the public address of workload id under salt:
// locally administered, unicast, stable.
func PublicMAC(salt, id string) string {
	h := sha256.Sum256([]byte("public-mac:" + salt + id))
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4])
}
