package netlightd

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// ipForward is IPv4 forwarding of the namespace a thread is in.
const ipForward = "/proc/sys/net/ipv4/ip_forward"

// NamespaceTable is the nftables table in each network's namespace.
const NamespaceTable = "netlightd"

// Chains of the host table (and, for the two NAT ones, the namespace's).
const (
	chainInput       = "input"
	chainForward     = "forward"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
)

// chains adds the base chains of table t (all with policy accept: the
// table only drops what it names, leaving the rest of the host alone).
func chains(c *nftables.Conn, t *nftables.Table, names ...string) map[string]*nftables.Chain {
	hooks := map[string]struct {
		hook *nftables.ChainHook
		prio *nftables.ChainPriority
		typ  nftables.ChainType
	}{
		chainInput:       {nftables.ChainHookInput, nftables.ChainPriorityFilter, nftables.ChainTypeFilter},
		chainForward:     {nftables.ChainHookForward, nftables.ChainPriorityFilter, nftables.ChainTypeFilter},
		chainPrerouting:  {nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest, nftables.ChainTypeNAT},
		chainOutput:      {nftables.ChainHookOutput, nftables.ChainPriorityNATDest, nftables.ChainTypeNAT},
		chainPostrouting: {nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource, nftables.ChainTypeNAT},
	}
	accept := nftables.ChainPolicyAccept
	out := map[string]*nftables.Chain{}
	for _, n := range names {
		h := hooks[n]
		out[n] = c.AddChain(&nftables.Chain{Name: n, Table: t, Hooknum: h.hook, Priority: h.prio, Type: h.typ, Policy: &accept})
	}
	return out
}

// applyHost replaces the rules of the host table with those of st's
// networks, in one transaction; with no network left the table goes.
func (s *Service) applyHost(st state) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("netlightd: nftables: %w", err)
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: s.c.Table})
	if len(st.Networks) == 0 {
		c.DelTable(t) // added first, so deleting never fails
		if err := c.Flush(); err != nil {
			return fmt.Errorf("netlightd: nftables table %s: %w", s.c.Table, err)
		}
		return nil
	}
	c.FlushTable(t)
	ch := chains(c, t, chainInput, chainForward, chainPrerouting, chainOutput, chainPostrouting)
	ids := make([]string, 0, len(st.Networks))
	for id := range st.Networks {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		nw := st.Networks[id]
		link := NamesOf(s.c.Salt, id).Transit
		_, nsT := s.transit(nw.Slot)
		tag := Tag(id)
		add := func(chain string, e ...[]expr.Any) {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch[chain], Exprs: slices.Concat(e...), UserData: tag})
		}
		// The host's own services: replies only.
		add(chainInput, iif(link), established(), verdict(expr.VerdictAccept))
		add(chainInput, iif(link), verdict(expr.VerdictDrop))
		// Other networks, whatever the way (port forwards included).
		add(chainForward, iif(link), oifPrefix(TransitPrefix), verdict(expr.VerdictDrop))
		add(chainForward, iifPrefix(TransitPrefix), oif(link), verdict(expr.VerdictDrop))
		// Egress: what the namespace sends leaves with the host's address.
		add(chainPostrouting, saddr(nsT.Addr()), []expr.Any{&expr.Masq{}})
		for _, f := range nw.Forwards {
			for _, chain := range []string{chainPrerouting, chainOutput} {
				add(chain, localDst(), dport(f.Protocol, f.HostPort), dnat(nsT.Addr(), f.HostPort))
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netlightd: nftables table %s: %w", s.c.Table, err)
	}
	return nil
}

// applyNamespace replaces the rules of a network's namespace: masquerade
// out of Out, and each forward from its host port to the workload.
func applyNamespace(ns string, forwards []Forward) error {
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return fmt.Errorf("netlightd: %w", err)
	}
	defer f.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())))
	if err != nil {
		return fmt.Errorf("netlightd: nftables in %s: %w", ns, err)
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: NamespaceTable})
	c.FlushTable(t)
	ch := chains(c, t, chainPrerouting, chainPostrouting)
	c.AddRule(&nftables.Rule{Table: t, Chain: ch[chainPostrouting], Exprs: slices.Concat(oif(Out), []expr.Any{&expr.Masq{}})})
	for _, fw := range forwards {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch[chainPrerouting], Exprs: slices.Concat(iif(Out), dport(fw.Protocol, fw.HostPort), dnat(fw.IP, fw.Port))})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("netlightd: nftables in %s: %w", ns, err)
	}
	return nil
}

// Tag is the user data of the host rules of the network with that
// workload ID (an nft comment), so they can be told apart.
func Tag(id string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, "network "+id)
}

// ifname is an interface name as the kernel compares it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func iif(n string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n)}}
}

func oif(n string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(n)}}
}

// iifPrefix and oifPrefix compare the first bytes of the name only.
func iifPrefix(p string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(p)}}
}

func oifPrefix(p string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte(p)}}
}

func saddr(a netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}
}

// localDst matches packets to one of the host's own addresses.
func localDst() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

func dport(proto string, port uint16) []expr.Any {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

func established() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

func dnat(a netip.Addr, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: a.AsSlice()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }

// inNamespace runs f on a thread moved into network namespace ns, and
// moves the thread back. A thread that cannot go back is not reused: it
// stays locked and ends with the goroutine.
func inNamespace(ns string, f func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("back from %s: %w", ns, err) // thread stays locked, then dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// enableHostForwarding turns on the host's IPv4 forwarding.
func enableHostForwarding() error {
	b, err := os.ReadFile(ipForward)
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile(ipForward, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("netlightd: enabling IPv4 forwarding: %w", err)
	}
	return nil
}
