package gridtypes

import (
	"errors"
	"strings"
	"testing"
)

// TestNetworkMesh: a network's mesh is checked against its subnet.
func TestNetworkMesh(t *testing.T) {
	net := func(mesh string) *Deployment {
		return &Deployment{TwinID: 1, Workloads: []Workload{{Name: "net", Type: NetworkLightType,
			Data: raw(`{"subnet":"10.20.1.0/24","mesh":` + mesh + `}`)}}}
	}
	if err := net(`{"range":"10.20.0.0/16","nodes":[2,3]}`).Validate(); err != nil {
		t.Fatalf("valid mesh: %v", err)
	}
	var d NetworkLightData
	if err := net(`{"range":"10.20.0.0/16","nodes":[2]}`).Workloads[0].DecodeData(&d); err != nil || d.Mesh == nil || d.Mesh.Nodes[0] != 2 {
		t.Fatalf("decoded %+v %v", d, err)
	}
	many := strings.Repeat("1,", MaxMeshNodes) + "1"
	for _, c := range []struct{ mesh, want string }{
		{`{"range":"10.20.0.0","nodes":[2]}`, "mesh.range"},
		{`{"range":"fd00::/64","nodes":[2]}`, "mesh.range"},
		{`{"range":"10.20.0.1/16","nodes":[2]}`, "host bits"},
		{`{"range":"10.0.0.0/7","nodes":[2]}`, "prefix length"},
		{`{"range":"10.20.1.0/24","nodes":[2]}`, "must hold the subnet"},
		{`{"range":"10.21.0.0/16","nodes":[2]}`, "must hold the subnet"},
		{`{"range":"10.20.0.0/16","nodes":[]}`, "mesh.nodes"},
		{`{"range":"10.20.0.0/16"}`, "mesh.nodes"},
		{`{"range":"10.20.0.0/16","nodes":[0]}`, "mesh.nodes[0]"},
		{`{"range":"10.20.0.0/16","nodes":[2,2]}`, "mesh.nodes[1]"},
		{`{"range":"10.20.0.0/16","nodes":[` + many + `]}`, "mesh.nodes"},
	} {
		err := net(c.mesh).Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an invalid %s", c.mesh, err, c.want)
		}
	}
}
