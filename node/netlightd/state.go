package netlightd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/grid4/grid4/internal/atomicfile"
)

// state is what netlightd keeps across restarts (Dir/state.json).
type state struct {
	// Networks by workload ID.
	Networks map[string]networkState `json:"networks"`
	// Public maps workload IDs to their public addresses.
	Public map[string]netip.Prefix `json:"public"`
	// Holders maps the workload IDs of the public addresses a machine
	// holds (AttachPublicIP) to that machine's: their namespaces are not
	// made.
	Holders map[string]string `json:"holders,omitempty"`
	// Released are addresses removed (RemovePublicIP) while a machine
	// still held them: kept from the pool until it lets go.
	Released map[string]bool `json:"released,omitempty"`
}

// networkState is one network as last ensured.
type networkState struct {
	Subnet netip.Prefix `json:"subnet"`
	// Slot is the network's /30 in the transit range (0 is the first).
	Slot     uint32    `json:"slot"`
	Forwards []Forward `json:"forwards,omitempty"`
	// Mesh joins the network to its parts on other nodes (nil: none).
	Mesh *meshState `json:"mesh,omitempty"`
}

func (s *Service) stateFile() string { return filepath.Join(s.c.Dir, "state.json") }

// load reads the state; a missing file is an empty state.
func (s *Service) load() (state, error) {
	st := state{Networks: map[string]networkState{}, Public: map[string]netip.Prefix{}, Holders: map[string]string{}, Released: map[string]bool{}}
	b, err := os.ReadFile(s.stateFile())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("netlightd: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("netlightd: %s: %w", s.stateFile(), err)
	}
	if st.Networks == nil {
		st.Networks = map[string]networkState{}
	}
	if st.Public == nil {
		st.Public = map[string]netip.Prefix{}
	}
	if st.Holders == nil {
		st.Holders = map[string]string{}
	}
	if st.Released == nil {
		st.Released = map[string]bool{}
	}
	return st, nil
}

// save writes the state atomically.
func (s *Service) save(st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("netlightd: %w", err)
	}
	if err := atomicfile.WriteFile(s.stateFile(), b, 0o600); err != nil {
		return fmt.Errorf("netlightd: %w", err)
	}
	return nil
}

// transit returns the host and namespace addresses of slot (a /30).
func (s *Service) transit(slot uint32) (host, ns netip.Prefix) {
	a := s.c.Transit.Addr().As4()
	base := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	base += slot * 4
	at := func(off uint32) netip.Prefix {
		v := base + off
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), 30)
	}
	return at(1), at(2)
}

// slots is the number of /30s in the transit range.
func (s *Service) slots() uint32 { return 1 << (30 - s.c.Transit.Bits()) }

// freeSlot returns the lowest slot no network uses.
func (st state) freeSlot(n uint32) (uint32, error) {
	used := map[uint32]bool{}
	for _, nw := range st.Networks {
		used[nw.Slot] = true
	}
	for i := range n {
		if !used[i] {
			return i, nil
		}
	}
	return 0, fmt.Errorf("netlightd: %w (%d in use)", ErrTransitExhausted, n)
}
