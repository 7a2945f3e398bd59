package registrar

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// nodeSamples are nodes with every shape a field can take.
func nodeSamples() []api.Node {
	seen := time.Date(2026, 12, 5, 10, 0, 0, 123456000, time.UTC)
	return []api.Node{
		{},
		{NodeID: 1, FarmID: 2, TwinID: 3, Location: api.Location{Country: "Belgium", City: "Ghent", Longitude: "3.72", Latitude: "51.05"},
			Resources:  api.Resources{HRU: math.MaxUint64, SRU: 1 << 40, CRU: 16, MRU: 64 << 30},
			Interfaces: []api.Interface{{Name: "eth0", Mac: "52:54:00:12:34:56", IPs: api.IPList{"10.0.0.2/24", "2001:db8::2/64"}}, {Name: "x"}},
			SecureBoot: true, Virtualized: true, SerialNumber: "SN-1", Approved: true, LastSeen: &seen, Online: true,
			Healthy: true, StatusAt: &seen, Free: &api.Capacity{CRU: 4, MRU: 8 << 30, SRU: 1, HRU: math.MaxUint64, IPv4: 2},
			ZosVersion: "v4.1.0", APIEndpoints: []string{"http://10.0.0.2:2021/api/v1/rpc", "https://n1.example/a&b"}, CreatedAt: seen.Add(-time.Hour), UpdatedAt: seen.In(time.FixedZone("x", 3600))},
		{Interfaces: []api.Interface{}, APIEndpoints: []string{}, SerialNumber: "<a href=\"x\">&amp;</a>\\\b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xfe 😀",
			Location: api.Location{City: "Zürich", Country: "\u00a0"}},
	}
}

// TestAppendNodeIsJSONMarshal: the hand-written encoder writes what
// encoding/json writes, byte for byte.
func TestAppendNodeIsJSONMarshal(t *testing.T) {
	for i, n := range nodeSamples() {
		want, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendNode(nil, &n); !bytes.Equal(got, want) {
			t.Errorf("node %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
