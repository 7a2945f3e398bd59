// Package linkguard keeps a machine's link on the node's public network to
// the address and MAC the machine was given.
//
// A machine holding a public address sits on the farm's public network
// (a macvtap for a virtual machine, a macvlan in a container's namespace).
// Its own kernel, or a container's raw sockets, could send with any
// source: answer ARP for a neighbour's address and take its traffic, or
// send as another MAC. Guard puts an nftables chain on the link's egress
// hook (family netdev: what the machine sends enters the host's stack
// there) that lets through only IPv4 from the address and ARP for it, both
// from the MAC, and drops the rest. The machine cannot change it: a
// virtual machine has no access to the host, and a container lacks
// CAP_NET_ADMIN.
package linkguard

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Table is the netdev table holding one chain per guarded link.
const Table = "grid4-guard"

// connect opens nftables in network namespace ns ("" for this one).
func connect(ns string) (*nftables.Conn, func(), error) {
	if ns == "" {
		c, err := nftables.New()
		return c, func() {}, err
	}
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return c, func() { f.Close() }, nil
}

// Guard makes link dev (in namespace ns; "" for this one) send only IPv4
// from addr and ARP for addr, both from mac; what else the machine behind
// it sends is dropped. Guarding a link again replaces its rules.
func Guard(ns, dev, mac string, addr netip.Addr) error {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return fmt.Errorf("linkguard: MAC %q: not an Ethernet address", mac)
	}
	if !addr.Is4() {
		return fmt.Errorf("linkguard: %s is not an IPv4 address", addr)
	}
	c, done, err := connect(ns)
	if err != nil {
		return fmt.Errorf("linkguard: %w", err)
	}
	defer done()
	if err := remove(c, dev); err != nil {
		return err
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyNetdev, Name: Table})
	drop := nftables.ChainPolicyDrop
	ch := c.AddChain(&nftables.Chain{
		Name: dev, Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookEgress,
		Priority: nftables.ChainPriorityFilter, Device: dev, Policy: &drop,
	})
	ip4 := addr.AsSlice()
	for _, exprs := range [][]expr.Any{
		// IPv4 from the address and the MAC.
		{
			protocol(), eq(binaryutil.BigEndian.PutUint16(unix.ETH_P_IP)), load(expr.PayloadBaseLLHeader, 6, 6), eq(hw),
			load(expr.PayloadBaseNetworkHeader, 12, 4), eq(ip4), accept(),
		},
		// ARP from the MAC, its sender the MAC and the address.
		{
			protocol(), eq(binaryutil.BigEndian.PutUint16(unix.ETH_P_ARP)), load(expr.PayloadBaseLLHeader, 6, 6), eq(hw),
			load(expr.PayloadBaseNetworkHeader, 8, 6), eq(hw),
			load(expr.PayloadBaseNetworkHeader, 14, 4), eq(ip4), accept(),
		},
	} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("linkguard: guarding %s: %w", dev, err)
	}
	return nil
}

// Remove drops the guard of link dev (in namespace ns). Removing what is
// not there succeeds. The table stays, empty or not: deleting it when the
// last chain goes would race with a Guard of another link.
func Remove(ns, dev string) error {
	c, done, err := connect(ns)
	if errors.Is(err, os.ErrNotExist) {
		return nil // the namespace went, and its tables with it
	}
	if err != nil {
		return fmt.Errorf("linkguard: %w", err)
	}
	defer done()
	return remove(c, dev)
}

// remove deletes the chain of dev, if any.
func remove(c *nftables.Conn, dev string) error {
	chains, err := c.ListChainsOfTableFamily(nftables.TableFamilyNetdev)
	if err != nil {
		return fmt.Errorf("linkguard: %w", err)
	}
	for _, ch := range chains {
		if ch.Table.Name == Table && ch.Name == dev {
			c.FlushChain(ch)
			c.DelChain(ch)
			if err := c.Flush(); err != nil {
				return fmt.Errorf("linkguard: removing the guard of %s: %w", dev, err)
			}
		}
	}
	return nil
}

// protocol loads the frame's EtherType.
func protocol() expr.Any { return &expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1} }

// load loads n bytes at offset of the header base.
func load(base expr.PayloadBase, offset, n uint32) expr.Any {
	return &expr.Payload{DestRegister: 1, Base: base, Offset: offset, Len: n}
}

func eq(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }

func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }
