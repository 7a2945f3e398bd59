package registrar

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestListNodesKeyset walks a farm by the Link of each full page
// (after_node_id) and gets every node once, in order, like page numbers
// give them.
func TestListNodesKeyset(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		other := h.newFarm(farmer)
		var want []uint64
		for i := range 7 {
			f := farm
			if i%3 == 1 {
				f = other
			}
			id := h.newNode(h.newTwin(), f)
			if f == farm {
				want = append(want, id)
			}
		}
		var got []uint64
		next := fmt.Sprintf("/api/v1/nodes?farm_id=%d&size=2", farm)
		for pages := 0; next != ""; pages++ {
			if pages > 10 {
				t.Fatal("the links do not end")
			}
			r := h.do("GET", next, nil, nil).want(t, http.StatusOK)
			for _, n := range r.arr(t) {
				got = append(got, uint64(n["node_id"].(float64)))
			}
			next = ""
			if l := r.header.Get("Link"); l != "" {
				target, ok := strings.CutSuffix(l, `>; rel="next"`)
				if !ok || !strings.HasPrefix(target, "</api/v1/nodes?") || !strings.Contains(target, "after_node_id=") {
					t.Fatalf("Link %q", l)
				}
				next = target[1:]
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("walked %v, want %v", got, want)
		}
		byPage := h.do("GET", fmt.Sprintf("/api/v1/nodes?farm_id=%d&size=2&page=2", farm), nil, nil).want(t, http.StatusOK).arr(t)
		byKey := h.do("GET", fmt.Sprintf("/api/v1/nodes?farm_id=%d&size=2&after_node_id=%d", farm, want[1]), nil, nil).want(t, http.StatusOK).arr(t)
		if len(byPage) != 2 || byPage[0]["node_id"] != byKey[0]["node_id"] || byPage[1]["node_id"] != byKey[1]["node_id"] {
			t.Fatalf("page 2 %v, after node %d %v", byPage, want[1], byKey)
		}
		h.do("GET", "/api/v1/nodes?after_node_id=x", nil, nil).want(t, http.StatusBadRequest)
	})
}
