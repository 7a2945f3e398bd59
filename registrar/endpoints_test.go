package registrar

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestAPIEndpoints: a node publishes the URLs of its zos-api-light with
// its registration and updates them by PATCH; bad URLs are refused with
// the field named and change nothing; clients that do not know the field
// (the public ones) neither see it when empty nor lose it with their
// whole-node PATCH.
func TestAPIEndpoints(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farm := h.newFarm(h.newTwin())

		// A node registered without endpoints: the field is absent.
		old := h.newTwin()
		oldNode := h.newNode(old, farm)
		r := h.do("GET", fmt.Sprintf("/api/v1/nodes/%d", oldNode), nil, nil).want(t, http.StatusOK)
		if _, ok := r.obj(t)["api_endpoints"]; ok {
			t.Fatalf("a node without endpoints shows the field: %s", r.body)
		}

		tw := h.newTwin()
		body := nodeReq(tw, farm)
		eps := []string{"http://10.0.0.5:2021/api/v1/rpc", "https://node5.example.org/api/v1/rpc"}
		body["api_endpoints"] = eps
		r = h.do("POST", "/api/v1/nodes", body, h.legacy(tw)).want(t, http.StatusCreated)
		node := uint64(r.obj(t)["node_id"].(float64))
		path := fmt.Sprintf("/api/v1/nodes/%d", node)
		if got := h.nodeJSON(node).APIEndpoints; !slices.Equal(got, eps) {
			t.Fatalf("registered endpoints %q, want %q", got, eps)
		}
		list := h.do("GET", fmt.Sprintf("/api/v1/nodes?twin_id=%d", tw.id), nil, nil).want(t, http.StatusOK).arr(t)
		if len(list) != 1 || fmt.Sprint(list[0]["api_endpoints"]) != fmt.Sprint(eps) {
			t.Fatalf("GET /nodes: %v", list)
		}

		// The public client's whole-node PATCH, without the field, keeps it.
		whole := nodeReq(tw, farm)
		whole["node_id"], whole["approved"], whole["Approved"], whole["online"] = node, false, false, true
		whole["serial_number"] = "SN-CHANGED"
		h.do("PATCH", path, whole, h.v2(tw)).want(t, http.StatusOK)
		if n := h.nodeJSON(node); !slices.Equal(n.APIEndpoints, eps) || n.SerialNumber != "SN-CHANGED" {
			t.Fatalf("after a whole-node PATCH without endpoints: %+v", n)
		}
		// A changed address replaces the list whole.
		moved := []string{"http://10.0.0.7:2021/api/v1/rpc"}
		h.do("PATCH", path, map[string]any{"api_endpoints": moved}, h.v2(tw)).want(t, http.StatusOK)
		if got := h.nodeJSON(node).APIEndpoints; !slices.Equal(got, moved) {
			t.Fatalf("after PATCH: %q", got)
		}

		// Refusals name the field and store nothing, on registration and
		// update alike.
		bad := []struct{ what, ep, msg string }{
			{"scheme", "ftp://10.0.0.5/x", "scheme"},
			{"no scheme", "10.0.0.5:2021/api", "scheme"},
			{"no host", "http:///api/v1/rpc", "host"},
			{"user info", "http://admin:secret@10.0.0.5:2021/api", "user information"},
			{"query", "http://10.0.0.5:2021/api?x=1", "query"},
			{"fragment", "http://10.0.0.5:2021/api#top", "fragment"},
			{"port zero", "http://10.0.0.5:0/api", "port"},
			{"port range", "http://10.0.0.5:70000/api", "port"},
			{"space", "http://10.0.0.5/a b", "printable"},
			{"control", "http://10.0.0.5/\x01", "printable"},
			{"zone", "http://[fe80::1%25eth0]:2021/api", "host"},
			{"host", "http://exa_mple.org/api", "host"},
			{"empty", "", "characters"},
			{"long", "http://10.0.0.5/" + strings.Repeat("a", 250), "256"},
		}
		for _, c := range bad {
			wantField(t, c.what, h.do("PATCH", path, map[string]any{"api_endpoints": []string{c.ep}}, h.v2(tw)), "api_endpoints[0]", c.msg)
			other := h.newTwin()
			b := nodeReq(other, farm)
			b["api_endpoints"] = []string{moved[0], c.ep}
			wantField(t, c.what+" (POST)", h.do("POST", "/api/v1/nodes", b, h.legacy(other)), "api_endpoints[1]", c.msg)
		}
		wantField(t, "too many", h.do("PATCH", path, map[string]any{"api_endpoints": []string{
			"http://a/", "http://b/", "http://c/", "http://d/", "http://e/"}}, h.v2(tw)), "api_endpoints", "at most 4")
		wantField(t, "duplicate", h.do("PATCH", path, map[string]any{"api_endpoints": []string{moved[0], moved[0]}}, h.v2(tw)),
			"api_endpoints[1]", "twice")
		wantField(t, "not a list", h.do("PATCH", path, `{"api_endpoints":"http://10.0.0.5/"}`, h.v2(tw)), "api_endpoints")
		if got := h.nodeJSON(node).APIEndpoints; !slices.Equal(got, moved) {
			t.Fatalf("refused PATCHes changed the endpoints: %q", got)
		}

		// null clears them; the field is then absent again.
		h.do("PATCH", path, `{"api_endpoints":null}`, h.v2(tw)).want(t, http.StatusOK)
		if _, ok := h.do("GET", path, nil, nil).want(t, http.StatusOK).obj(t)["api_endpoints"]; ok {
			t.Fatal("api_endpoints still shown after null")
		}
	})
}
