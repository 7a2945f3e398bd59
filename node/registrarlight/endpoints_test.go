package registrarlight

import (
	"slices"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// TestAPIEndpoints: what the node publishes for each way zos-api-light
// can be configured.
func TestAPIEndpoints(t *testing.T) {
	iface := api.Interface{Name: "eth0", IPs: api.IPList{
		"fe80::1/64", "10.0.0.5/24", "2001:db8::5/64", "127.0.0.1/8", "198.18.0.9", "::1", "ff02::1", "not-an-ip", "::ffff:10.0.0.5",
	}}
	for _, c := range []struct {
		name, url, listen string
		iface             api.Interface
		want              []string
	}{
		{"override wins", "https://node5.example.org/api/v1/rpc", ":2021", iface, []string{"https://node5.example.org/api/v1/rpc"}},
		{"bad override dropped", "ftp://node5.example.org/", ":2021", iface, nil},
		{"every address, IPv4 first, unreachable ones left out", "", ":2021", iface, []string{
			"http://10.0.0.5:2021/api/v1/rpc", "http://198.18.0.9:2021/api/v1/rpc", "http://[2001:db8::5]:2021/api/v1/rpc"}},
		{"unspecified v4", "", "0.0.0.0:2021", iface, []string{
			"http://10.0.0.5:2021/api/v1/rpc", "http://198.18.0.9:2021/api/v1/rpc", "http://[2001:db8::5]:2021/api/v1/rpc"}},
		{"unspecified v6", "", "[::]:8080", api.Interface{IPs: api.IPList{"2001:db8::5"}}, []string{"http://[2001:db8::5]:8080/api/v1/rpc"}},
		{"at most four", "", ":2021", api.Interface{IPs: api.IPList{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"}}, []string{
			"http://10.0.0.1:2021/api/v1/rpc", "http://10.0.0.2:2021/api/v1/rpc", "http://10.0.0.3:2021/api/v1/rpc", "http://10.0.0.4:2021/api/v1/rpc"}},
		{"a given host", "", "127.0.0.1:4321", iface, []string{"http://127.0.0.1:4321/api/v1/rpc"}},
		{"a given v6 host", "", "[2001:db8::7]:2021", iface, []string{"http://[2001:db8::7]:2021/api/v1/rpc"}},
		{"a given name", "", "node5.example.org:2021", iface, []string{"http://node5.example.org:2021/api/v1/rpc"}},
		{"port 0: not known yet", "", "127.0.0.1:0", iface, nil},
		{"no port", "", "127.0.0.1", iface, nil},
		{"not listening", "", "", iface, nil},
		{"no address", "", ":2021", api.Interface{IPs: api.IPList{"fe80::1"}}, nil},
	} {
		got := APIEndpoints(c.url, c.listen, c.iface)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		for _, e := range got {
			if err := api.CheckAPIEndpoint(e); err != nil {
				t.Errorf("%s: %q would be refused: %v", c.name, e, err)
			}
		}
	}
}
