package registrar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// TestNodePower: a node's power target is on until its farmer sets it;
// only the farmer of its farm may, with on or off; everybody may read it.
func TestNodePower(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		nodeTwin := h.newTwin()
		node := h.newNode(nodeTwin, farm)
		path := fmt.Sprintf("/api/v1/nodes/%d/power", node)
		get := func() api.NodePower {
			var p api.NodePower
			if err := json.Unmarshal(h.do("GET", path, nil, nil).want(t, http.StatusOK).body, &p); err != nil {
				t.Fatal(err)
			}
			return p
		}
		if p := get(); p.PowerTarget != api.PowerOn || p.NodeID != node || p.SetAt != nil {
			t.Fatalf("before any setting: %+v", p)
		}
		h.do("PUT", path, map[string]any{"power_target": "off"}, h.v2(farmer)).want(t, http.StatusOK)
		if p := get(); p.PowerTarget != api.PowerOff || p.SetBy != farmer.id || p.SetAt == nil {
			t.Fatalf("after off: %+v", p)
		}
		// The node itself and another twin may not; nor a bad target.
		h.do("PUT", path, map[string]any{"power_target": "on"}, h.v2(nodeTwin)).want(t, http.StatusUnauthorized)
		h.do("PUT", path, map[string]any{"power_target": "on"}, h.v2(h.newTwin())).want(t, http.StatusUnauthorized)
		h.do("PUT", path, map[string]any{"power_target": "sleep"}, h.v2(farmer)).want(t, http.StatusBadRequest)
		h.do("PUT", path, map[string]any{"power_target": "on"}, nil).want(t, http.StatusUnauthorized)
		if p := get(); p.PowerTarget != api.PowerOff {
			t.Fatalf("after refusals: %+v", p)
		}
		h.do("PUT", path, map[string]any{"power_target": "on"}, h.v2(farmer)).want(t, http.StatusOK)
		if p := get(); p.PowerTarget != api.PowerOn {
			t.Fatalf("after on: %+v", p)
		}
		h.do("GET", "/api/v1/nodes/999999/power", nil, nil).want(t, http.StatusNotFound)
	})
}
