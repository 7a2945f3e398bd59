package registrarlight

import (
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	zosapi "github.com/grid4/grid4/node/zosapi/api"
	"github.com/grid4/grid4/registrar/api"
)

// APIEndpoints returns the URLs of the node's zos-api-light that the node
// publishes in its registration, so that users find its API from its id:
//
//   - apiURL alone when it is set (the farmer's public URL: a proxy, a
//     name, a forwarded port);
//   - none when listen is empty or its port is 0 or missing (the port is
//     only known once the API listens: give apiURL);
//   - when listen names a host (127.0.0.1:2021, node.example:2021), that
//     host;
//   - otherwise (":2021", "0.0.0.0:2021", "[::]:2021": every address) one
//     URL per address of the management interface iface that others can
//     reach (not loopback, link-local, multicast or unspecified), IPv4
//     first, at most api.MaxAPIEndpoints.
//
// A URL the registrar would refuse is left out.
func APIEndpoints(apiURL, listen string, iface api.Interface) []string {
	if apiURL != "" {
		return valid([]string{apiURL})
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" {
		return nil
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return nil
	}
	if a, err := netip.ParseAddr(host); host != "" && (err != nil || !a.IsUnspecified()) {
		return valid([]string{rpcURL(host, port)})
	}
	var v4, v6 []string
	for _, s := range iface.IPs {
		s, _, _ = strings.Cut(s, "/") // a prefix length is not part of the address
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" || a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() ||
			a.IsLinkLocalUnicast() {
			continue
		}
		a = a.Unmap()
		list := &v6
		if a.Is4() {
			list = &v4
		}
		if u := rpcURL(a.String(), port); !slices.Contains(*list, u) {
			*list = append(*list, u)
		}
	}
	eps := valid(append(v4, v6...))
	return eps[:min(len(eps), api.MaxAPIEndpoints)]
}

// rpcURL is the URL of zos-api-light's JSON-RPC on host:port.
func rpcURL(host, port string) string {
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: zosapi.RPCPath}).String()
}

// valid keeps the URLs the registrar accepts.
func valid(urls []string) []string {
	return slices.DeleteFunc(urls, func(u string) bool { return api.CheckAPIEndpoint(u) != nil })
}
