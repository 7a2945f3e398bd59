package hostinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/grid4/grid4/registrar/api"
)

const (
	routePath     = "/proc/net/route"
	ipv6RoutePath = "/proc/net/ipv6_route"
	sysNetPath    = "/sys/class/net"
)

// AddrSource lists the addresses of a network interface. It is the one
// probe input that does not come from files under the root: the kernel
// hands addresses out over netlink, not sysfs.
type AddrSource interface {
	// Addrs returns the addresses of the interface named name, each with
	// its prefix length.
	Addrs(name string) ([]netip.Prefix, error)
}

// SystemAddrs is the live system's AddrSource, through package net.
type SystemAddrs struct{}

// Addrs returns the addresses of the live interface named name.
func (SystemAddrs) Addrs(name string) ([]netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("addresses of %s: %w", name, err)
	}
	out := make([]netip.Prefix, 0, len(addrs))
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// Interface returns the management interface: its name (configured, or
// that of the default route), its MAC and its addresses (see the package
// documentation for which addresses are left out and why). An interface
// without addresses is known, with none: a node waiting for DHCP has a
// management interface all the same.
func (p *Prober) Interface() Fact[api.Interface] {
	name, source := p.iface, "configured"
	if name == "" {
		var reason string
		name, source, reason = p.defaultRouteInterface()
		if name == "" {
			return unknown[api.Interface](routePath, "no management interface: %s", reason)
		}
	}
	macFile := path.Join(sysNetPath, name, "address")
	mac, err := p.readLine(macFile)
	if err != nil {
		return unknown[api.Interface](macFile, "interface %s (%s): %s", name, source, p.describe(macFile, err))
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || (len(hw) != 6 && len(hw) != 8) {
		return unknown[api.Interface](macFile, "interface %s: %q is not a MAC address", name, mac)
	}
	prefixes, err := p.addrs.Addrs(name)
	if err != nil {
		return unknown[api.Interface](source, "listing the addresses: %v", err)
	}
	return known(api.Interface{Name: name, Mac: hw.String(), IPs: reportable(prefixes)}, source)
}

// reportable returns the addresses worth reporting, without prefix
// length, sorted and without duplicates. Bare addresses keep the list
// readable by older readers that join and split the list on "/".
func reportable(prefixes []netip.Prefix) api.IPList {
	var addrs []netip.Addr
	for _, pf := range prefixes {
		a := pf.Addr().Unmap()
		if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsMulticast() ||
			a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() {
			continue
		}
		addrs = append(addrs, a.WithZone(""))
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	addrs = slices.Compact(addrs)
	ips := api.IPList{}
	for _, a := range addrs {
		ips = append(ips, a.String())
	}
	return ips
}

// defaultRouteInterface returns the interface of the default route with
// the lowest metric, IPv4 first, then IPv6 (an IPv6-only node has no IPv4
// default route). On failure name is "" and reason says why.
func (p *Prober) defaultRouteInterface() (name, source, reason string) {
	var reasons []string
	for _, r := range []struct {
		file  string
		parse func([]byte) string
	}{
		{routePath, defaultRoute4},
		{ipv6RoutePath, defaultRoute6},
	} {
		b, err := p.readFile(r.file)
		if err != nil {
			reasons = append(reasons, p.describe(r.file, err))
			continue
		}
		if name := r.parse(b); name != "" {
			if !validIfName(name) {
				return "", "", fmt.Sprintf("%s names %q, not an interface", r.file, name)
			}
			return name, "default route (" + r.file + ")", ""
		}
		reasons = append(reasons, "no default route in "+r.file)
	}
	return "", "", strings.Join(reasons, "; ")
}

// Route flags of the kernel's route tables (linux/route.h).
const (
	rtfUp     = 0x0001
	rtfReject = 0x0200
)

// defaultRoute4 returns the interface of the IPv4 default route with the
// lowest metric in /proc/net/route, or "". The table is one header line,
// then "Iface Destination Gateway Flags RefCnt Use Metric Mask ..." per
// route, numbers in hex.
func defaultRoute4(b []byte) string {
	best, bestMetric := "", uint64(0)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		flags, err1 := strconv.ParseUint(f[3], 16, 32)
		metric, err2 := strconv.ParseUint(f[6], 10, 32)
		if err1 != nil || err2 != nil || flags&rtfUp == 0 || flags&rtfReject != 0 {
			continue
		}
		if best == "" || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best
}

// defaultRoute6 returns the interface of the IPv6 default route (::/0)
// with the lowest metric in /proc/net/ipv6_route, or "". Each line is
// "dest destlen src srclen nexthop metric refcnt use flags iface", numbers
// in hex. The kernel lists unreachable ::/0 routes on lo; those carry the
// reject flag.
func defaultRoute6(b []byte) string {
	best, bestMetric := "", uint64(0)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[0] != strings.Repeat("0", 32) || f[1] != "00" {
			continue
		}
		metric, err1 := strconv.ParseUint(f[5], 16, 32)
		flags, err2 := strconv.ParseUint(f[8], 16, 32)
		if err1 != nil || err2 != nil || flags&rtfUp == 0 || flags&rtfReject != 0 || f[9] == "lo" {
			continue
		}
		if best == "" || metric < bestMetric {
			best, bestMetric = f[9], metric
		}
	}
	return best
}

// validIfName reports whether s can be a Linux interface name: 1 to 15
// bytes (IFNAMSIZ - 1), no "/", white space or NUL, and not "." or "..".
// The probes join the name into paths, so this also keeps them under
// /sys/class/net.
func validIfName(s string) bool {
	if s == "" || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '/' || c == ':' || c >= 0x7f {
			return false
		}
	}
	return true
}
