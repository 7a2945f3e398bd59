package guest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// rtnl speaks rtnetlink, the kernel's interface for links, addresses and
// routes, with x/sys/unix alone (package net would cost a static build).
type rtnl struct {
	fd  int
	seq uint32
}

func openRtnl() (*rtnl, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &rtnl{fd: fd}, nil
}

func (r *rtnl) close() { unix.Close(r.fd) }

// do sends one request and waits for its acknowledgement.
func (r *rtnl) do(typ, flags uint16, body []byte) error {
	r.seq++
	msg := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.NLMSG_HDRLEN+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], flags|unix.NLM_F_REQUEST|unix.NLM_F_ACK)
	binary.NativeEndian.PutUint32(msg[8:], r.seq)
	msg = append(msg, body...)
	if err := unix.Sendto(r.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(r.fd, buf, 0)
		if err != nil {
			return err
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(binary.NativeEndian.Uint32(b[0:]))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return fmt.Errorf("netlink: bad message length %d", l)
			}
			t, seq := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint32(b[8:])
			if t == unix.NLMSG_ERROR && seq == r.seq && l >= unix.NLMSG_HDRLEN+4 {
				if e := int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:])); e != 0 {
					return syscall.Errno(-e)
				}
				return nil
			}
			b = b[(l+3)&^3:]
		}
	}
}

// attr is an rtattr: length, type, data, padded to 4 bytes.
func attr(typ uint16, data []byte) []byte {
	b := make([]byte, 4, 4+len(data)+3)
	binary.NativeEndian.PutUint16(b[0:], uint16(4+len(data)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, data...)
	return append(b, make([]byte, (4-len(b)%4)%4)...)
}

// linkUp sets IFF_UP on link index.
func (r *rtnl) linkUp(index int) error {
	b := make([]byte, unix.SizeofIfInfomsg)
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	binary.NativeEndian.PutUint32(b[8:], unix.IFF_UP)
	binary.NativeEndian.PutUint32(b[12:], unix.IFF_UP)
	return r.do(unix.RTM_NEWLINK, 0, b)
}

func family(a netip.Addr) byte {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// addAddr gives link index the address p.
func (r *rtnl) addAddr(index int, p netip.Prefix) error {
	a := p.Addr().Unmap()
	b := make([]byte, unix.SizeofIfAddrmsg)
	b[0], b[1] = family(a), byte(p.Bits())
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	b = append(b, attr(unix.IFA_LOCAL, a.AsSlice())...)
	b = append(b, attr(unix.IFA_ADDRESS, a.AsSlice())...)
	return r.do(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b)
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// route routes dst in table through link index: via gw, or straight on
// the link when gw is invalid. An invalid dst is the default route (of
// gw's family).
func (r *rtnl) route(table uint8, dst netip.Prefix, gw netip.Addr, index int) error {
	b := make([]byte, unix.SizeofRtMsg)
	b[4], b[5], b[6], b[7] = table, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST
	if gw.IsValid() {
		gw = gw.Unmap()
		b[0] = family(gw)
		b = append(b, attr(unix.RTA_GATEWAY, gw.AsSlice())...)
	} else {
		b[6] = unix.RT_SCOPE_LINK
	}
	if dst.IsValid() {
		a := dst.Addr().Unmap()
		b[0], b[1] = family(a), byte(dst.Bits())
		b = append(b, attr(unix.RTA_DST, a.AsSlice())...)
	}
	b = append(b, attr(unix.RTA_OIF, u32(uint32(index)))...)
	return r.do(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b)
}

// sourceRule sends what leaves from address src to table.
func (r *rtnl) sourceRule(src netip.Addr, table uint8, priority uint32) error {
	src = src.Unmap()
	b := make([]byte, 12) // struct fib_rule_hdr
	b[0], b[2], b[4], b[7] = family(src), byte(src.BitLen()), table, unix.FR_ACT_TO_TBL
	b = append(b, attr(unix.FRA_SRC, src.AsSlice())...)
	b = append(b, attr(unix.FRA_TABLE, u32(uint32(table)))...)
	b = append(b, attr(unix.FRA_PRIORITY, u32(priority))...)
	err := r.do(unix.RTM_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_EXCL, b)
	if err == unix.EEXIST {
		return nil
	}
	return err
}

// Policy routing of machines with several gateways: NIC i's own table
// and the priority of its rule.
const (
	firstTable        = 100
	firstRulePriority = 1000
)

// linkByMAC waits up to wait for the link with MAC mac and returns its
// name and index.
func linkByMAC(mac string, wait time.Duration) (string, int, error) {
	deadline := time.Now().Add(wait)
	for {
		dirs, _ := filepath.Glob("/sys/class/net/*")
		for _, d := range dirs {
			if a, _ := os.ReadFile(filepath.Join(d, "address")); strings.TrimSpace(string(a)) == mac {
				b, err := os.ReadFile(filepath.Join(d, "ifindex"))
				if err != nil {
					return "", 0, err
				}
				i, err := strconv.Atoi(strings.TrimSpace(string(b)))
				return filepath.Base(d), i, err
			}
		}
		if time.Now().After(deadline) {
			return "", 0, fmt.Errorf("no network card with MAC %s", mac)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// network configures every NIC and the loopback. The first NIC with a
// gateway has the default route. When more than one has a gateway (a
// public address beside private networks), each of those also gets a
// table of its own — its subnet and its gateway — used for what leaves
// from its address, so that an answer leaves by the card its question
// came in on (a port forwarded to the private address, say).
func network(nics []NIC) error {
	r, err := openRtnl()
	if err != nil {
		return err
	}
	defer r.close()
	if err := r.linkUp(1); err != nil { // lo is always index 1
		return fmt.Errorf("loopback up: %w", err)
	}
	gateways, defaulted := 0, false
	for _, n := range nics {
		if n.Gateway.IsValid() {
			gateways++
		}
	}
	for i, n := range nics {
		mac, _ := parseMAC(n.MAC)
		name, index, err := linkByMAC(mac, 5*time.Second)
		if err != nil {
			return err
		}
		if n.IP.IsValid() {
			if err := r.addAddr(index, n.IP); err != nil {
				return fmt.Errorf("%s: address %s: %w", name, n.IP, err)
			}
		}
		if err := r.linkUp(index); err != nil {
			return fmt.Errorf("%s: up: %w", name, err)
		}
		if !n.Gateway.IsValid() {
			continue
		}
		if !defaulted {
			if err := r.route(unix.RT_TABLE_MAIN, netip.Prefix{}, n.Gateway, index); err != nil {
				return fmt.Errorf("%s: default route via %s: %w", name, n.Gateway, err)
			}
			defaulted = true
		}
		if gateways < 2 || !n.IP.IsValid() {
			continue
		}
		table := uint8(firstTable + i)
		if err := r.route(table, n.IP.Masked(), netip.Addr{}, index); err != nil {
			return fmt.Errorf("%s: route to %s in table %d: %w", name, n.IP.Masked(), table, err)
		}
		if err := r.route(table, netip.Prefix{}, n.Gateway, index); err != nil {
			return fmt.Errorf("%s: default route via %s in table %d: %w", name, n.Gateway, table, err)
		}
		if err := r.sourceRule(n.IP.Addr(), table, uint32(firstRulePriority+i)); err != nil {
			return fmt.Errorf("%s: rule from %s: %w", name, n.IP.Addr(), err)
		}
	}
	return nil
}
