package gridtypes

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestPortForwards: a network's forwards are checked against its subnet;
// a deployment without any keeps the wire form (and hash) it had.
func TestPortForwards(t *testing.T) {
	net := func(forwards string) *Deployment {
		data := `{"subnet":"10.20.1.0/24"}`
		if forwards != "" {
			data = `{"subnet":"10.20.1.0/24","port_forwards":` + forwards + `}`
		}
		return &Deployment{TwinID: 1, Workloads: []Workload{{Name: "net", Type: NetworkLightType, Data: raw(data)}}}
	}
	if err := net(`[{"protocol":"tcp","host_port":8080,"ip":"10.20.1.5","port":80},{"protocol":"udp","host_port":8080,"ip":"10.20.1.5","port":53}]`).Validate(); err != nil {
		t.Fatalf("valid forwards: %v", err)
	}
	var many []string
	for i := range MaxPortForwards + 1 {
		many = append(many, fmt.Sprintf(`{"protocol":"tcp","host_port":%d,"ip":"10.20.1.5","port":80}`, 9000+i))
	}
	for _, c := range []struct{ forwards, want string }{
		{`[{"protocol":"sctp","host_port":1,"ip":"10.20.1.5","port":1}]`, "port_forwards[0].protocol"},
		{`[{"protocol":"tcp","host_port":0,"ip":"10.20.1.5","port":1}]`, "port_forwards[0].host_port"},
		{`[{"protocol":"tcp","host_port":1,"ip":"10.20.1.5","port":0}]`, "port_forwards[0].port"},
		{`[{"protocol":"tcp","host_port":1,"ip":"10.20.1.1","port":1}]`, "port_forwards[0].ip"},
		{`[{"protocol":"tcp","host_port":1,"ip":"10.20.1.255","port":1}]`, "port_forwards[0].ip"},
		{`[{"protocol":"tcp","host_port":1,"ip":"10.20.2.5","port":1}]`, "port_forwards[0].ip"},
		{`[{"protocol":"tcp","host_port":1,"ip":"fd00::5","port":1}]`, "port_forwards[0].ip"},
		{`[{"protocol":"tcp","host_port":1,"ip":"10.20.1.5","port":1},{"protocol":"tcp","host_port":1,"ip":"10.20.1.6","port":2}]`, "port_forwards[1].host_port"},
		{`[{"protocol":"tcp","host_port":70000,"ip":"10.20.1.5","port":1}]`, "host_port"},
		{"[" + strings.Join(many, ",") + "]", "port_forwards"},
	} {
		err := net(c.forwards).Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an invalid %s", c.forwards, err, c.want)
		}
	}
	// No forwards: the same JSON as before the field existed.
	if b, _ := json.Marshal(NetworkLightData{Subnet: "10.20.1.0/24"}); string(b) != `{"subnet":"10.20.1.0/24"}` {
		t.Errorf("marshalled %s", b)
	}
	a := net("")
	var d NetworkLightData
	if err := a.Workloads[0].DecodeData(&d); err != nil || d.PortForwards != nil {
		t.Errorf("decoded %+v %v", d, err)
	}
}
