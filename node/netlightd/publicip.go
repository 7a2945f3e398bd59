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
	// Namespace holds the link ("" while a machine holds the address:
	// AttachPublicIP).
	Namespace string `json:"namespace"`
}

// EnsurePublicIP gives the workload an address of the pool (the one it
// has, if any) and makes (or brings back) its namespace and link.
func (s *Service) EnsurePublicIP(ctx context.Context, spec PublicIPSpec) (PublicIP, error) {
	if spec.ID == "" {
		return PublicIP{}, fmt.Errorf("%w: no workload ID", ErrInvalid)
	}
	if err := s.publicConfigured(); err != nil {
		return PublicIP{}, err
	}
	if err := s.ip.Check(); err != nil {
		return PublicIP{}, fmt.Errorf("netlightd: cannot manage networks on this node: %w", err)
	}
	if !iproute.LinkExists(s.c.PublicInterface) {
		return PublicIP{}, fmt.Errorf("netlightd: public interface %s not found", s.c.PublicInterface)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load()
	if err != nil {
		return PublicIP{}, err
	}
	addr, err := s.allocate(st, spec)
	if err != nil {
		return PublicIP{}, err
	}
	if st.Holders[spec.ID] != "" {
		// A machine holds the address on a link of its own.
		return PublicIP{IP: addr.String(), Gateway: s.c.PublicGateway.String()}, nil
	}
	ns, err := s.setUpNamespace(ctx, spec.ID, addr)
	if err != nil {
		return PublicIP{}, err
	}
	return PublicIP{IP: addr.String(), Gateway: s.c.PublicGateway.String(), Namespace: ns}, nil
}

// setUpNamespace makes (or brings back) the namespace of public address
// id: addr on a macvlan of the public interface, with the default route
// via the gateway.
func (s *Service) setUpNamespace(ctx context.Context, id string, addr netip.Prefix) (string, error) {
	ns, mv := PublicNamespaceOf(s.c.Salt, id), macvlanPrefix+iproute.ShortID(s.c.Salt+id)
	if !iproute.NetnsExists(ns) {
		if err := s.ip.Do(ctx, "netns", "add", ns); err != nil {
			return "", fmt.Errorf("netlightd: %w", err)
		}
	}
	if !s.ip.LinkExistsIn(ctx, ns, PublicLink) {
		// Made in the namespace under a temporary name, then renamed:
		// a crash in between leaves a link the next run renames.
		if !s.ip.LinkExistsIn(ctx, ns, mv) {
			// The same MAC every time the address is made (after a
			// reboot too): the upstream router's ARP entry stays right.
			if err := s.ip.Do(ctx, "link", "add", "name", mv, "link", s.c.PublicInterface, "address", PublicMAC(s.c.Salt, id),
				"netns", ns, "type", "macvlan", "mode", "bridge"); err != nil {
				return "", fmt.Errorf("netlightd: %w", err)
			}
		}
		if err := s.ip.In(ctx, ns, "link", "set", "dev", mv, "name", PublicLink); err != nil {
			return "", fmt.Errorf("netlightd: %w", err)
		}
	}
	if err := s.ip.In(ctx, ns, "addr", "replace", addr.String(), "dev", PublicLink); err != nil {
		return "", fmt.Errorf("netlightd: %w", err)
	}
	if err := s.linkUp(ctx, ns); err != nil {
		return "", fmt.Errorf("netlightd: %w", err)
	}
	for _, args := range [][]string{
		{"link", "set", "dev", "lo", "up"},
		{"route", "replace", "default", "via", s.c.PublicGateway.String(), "dev", PublicLink},
	} {
		if err := s.ip.In(ctx, ns, args...); err != nil {
			return "", fmt.Errorf("netlightd: %w", err)
		}
	}
	return ns, nil
}

// tearDownNamespace removes the namespace of public address id and the
// link in it.
func (s *Service) tearDownNamespace(ctx context.Context, id string) error {
	ns := PublicNamespaceOf(s.c.Salt, id)
	if !iproute.NetnsExists(ns) {
		return nil
	}
	// The link first: deleting it is synchronous, while the links of a
	// deleted namespace linger for a while and keep the MAC taken.
	_ = s.ip.In(ctx, ns, "link", "del", "dev", PublicLink)
	if err := s.ip.Do(ctx, "netns", "del", ns); err != nil {
		return fmt.Errorf("netlightd: %w", err)
	}
	return nil
}

// PublicAttachment is a public address handed over to a machine: the
// machine puts it on a link of its own on Parent (a macvtap for a
// virtual machine, a macvlan in a container's namespace) with MAC, the
// one the address always has.
type PublicAttachment struct {
	// Parent is the node's public interface.
	Parent string `json:"parent"`
	// MAC is the address's MAC (PublicMAC).
	MAC string `json:"mac"`
	// IP is the address with its prefix length.
	IP netip.Prefix `json:"ip"`
	// Gateway is the default route.
	Gateway netip.Addr `json:"gateway"`
}

// HolderSpec names a public address (its PublicIPv4 workload's ID) and
// the machine (its workload's ID) that holds it or lets it go.
type HolderSpec struct {
	ID     string `json:"id"`
	Holder string `json:"holder"`
}

// AttachPublicIP hands the public address of workload spec.ID (given out
// by EnsurePublicIP before) over to machine spec.Holder: its namespace
// goes, so that the machine's link can take the address and the MAC, and
// restores keep it away until DetachPublicIP. Attaching again for the
// same machine returns the same; an address another machine holds is
// refused (ErrInvalid).
func (s *Service) AttachPublicIP(ctx context.Context, spec HolderSpec) (PublicAttachment, error) {
	if err := s.publicConfigured(); err != nil {
		return PublicAttachment{}, err
	}
	if spec.ID == "" || spec.Holder == "" {
		return PublicAttachment{}, fmt.Errorf("netlightd: %w: attaching needs the address's and the machine's workload IDs", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load()
	if err != nil {
		return PublicAttachment{}, err
	}
	addr, ok := st.Public[spec.ID]
	if !ok || st.Released[spec.ID] {
		return PublicAttachment{}, fmt.Errorf("netlightd: %w: no public address given to %s", ErrInvalid, spec.ID)
	}
	switch h := st.Holders[spec.ID]; h {
	case spec.Holder:
	case "":
		// Recorded first: a crash after it leaves the address with the
		// machine, whose next attach (or detach) finishes the job.
		st.Holders[spec.ID] = spec.Holder
		if err := s.save(st); err != nil {
			return PublicAttachment{}, err
		}
	default:
		return PublicAttachment{}, fmt.Errorf("netlightd: %w: the public address of %s is held by machine %s", ErrInvalid, spec.ID, h)
	}
	if err := s.tearDownNamespace(ctx, spec.ID); err != nil {
		return PublicAttachment{}, err
	}
	return PublicAttachment{Parent: s.c.PublicInterface, MAC: PublicMAC(s.c.Salt, spec.ID), IP: addr, Gateway: s.c.PublicGateway}, nil
}

// DetachPublicIP takes the public address of workload spec.ID back from
// machine spec.Holder (whose link must be gone): its namespace is set up
// again, or, if the address was removed meanwhile (RemovePublicIP), it
// goes back to the pool. An address the machine does not hold is left as
// it is, and that succeeds.
func (s *Service) DetachPublicIP(ctx context.Context, spec HolderSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.load()
	if err != nil {
		return err
	}
	if spec.Holder == "" || st.Holders[spec.ID] != spec.Holder {
		return nil
	}
	addr, ok := st.Public[spec.ID]
	if ok && !st.Released[spec.ID] {
		// The namespace first: until it is there the machine still
		// holds the address, and a retry does it again.
		if _, err := s.setUpNamespace(ctx, spec.ID, addr); err != nil {
			return err
		}
	}
	delete(st.Holders, spec.ID)
	if st.Released[spec.ID] {
		delete(st.Released, spec.ID)
		delete(st.Public, spec.ID)
	}
	return s.save(st)
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

// publicConfigured says ErrNotConfigured unless the node has a public
// interface, an address pool and a gateway.
func (s *Service) publicConfigured() error {
	if s.c.PublicInterface == "" || len(s.c.PublicPool) == 0 || !s.c.PublicGateway.IsValid() {
		return fmt.Errorf("netlightd: %w", ErrNotConfigured)
	}
	return nil
}

// allocate returns the workload's address, choosing one (the one wanted,
// or the first free) if it has none, recording it in st and saving st.
func (s *Service) allocate(st state, spec PublicIPSpec) (netip.Prefix, error) {
	if p, ok := st.Public[spec.ID]; ok {
		if st.Released[spec.ID] {
			// Removed while a machine held it, and wanted again.
			delete(st.Released, spec.ID)
			return p, s.save(st)
		}
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
// address; one a machine still holds is freed when the machine lets it go
// (DetachPublicIP), so that nobody else gets it meanwhile. Removing an
// unknown one succeeds.
func (s *Service) RemovePublicIP(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.tearDownNamespace(ctx, id); err != nil {
		return err
	}
	st, err := s.load()
	if err != nil {
		return err
	}
	if _, ok := st.Public[id]; !ok {
		return nil
	}
	if st.Holders[id] != "" {
		// A machine still holds it (its update comes after this
		// removal, or failed): kept from the pool until it lets go.
		if st.Released[id] {
			return nil
		}
		st.Released[id] = true
		return s.save(st)
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
