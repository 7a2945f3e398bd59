package registrar

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/grid4/grid4/registrar/api"
)

// The tests of this file encode what an outside probe of the registrar
// got through (issue 10): bodies that are not what the docs describe must
// be refused with a 400 naming the field, on both stores, and leave the
// stored data as it was.

// wantField fails unless r is a 400 whose message contains every one of
// parts (the field name, and what was wrong).
func wantField(t *testing.T, what string, r resp, parts ...string) {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Errorf("%s: status %d, want 400; body %s", what, r.status, r.body)
		return
	}
	msg := r.errMsg(t)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("%s: message %q does not contain %q", what, msg, p)
		}
	}
	if strings.Contains(msg, "store:") {
		t.Errorf("%s: message %q leaks a store error", what, msg)
	}
}

// rawNode is nodeReq as JSON text with the given replacements applied to
// the text (for bodies json.Marshal cannot produce: duplicate keys,
// invalid UTF-8, lone surrogates).
func rawNode(t *testing.T, tw twin, farm uint64, replace ...string) []byte {
	t.Helper()
	b, err := json.Marshal(nodeReq(tw, farm))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(replace); i += 2 {
		if !strings.Contains(s, replace[i]) {
			t.Fatalf("rawNode: %q not in %s", replace[i], s)
		}
		s = strings.Replace(s, replace[i], replace[i+1], 1)
	}
	return []byte(s)
}

// TestIPsJoinedWithPrefixLengths: the public node client's fallback sends
// each interface's addresses as one "/"-joined string, prefix lengths
// included; the registrar recovers the CIDRs.
func TestIPsJoinedWithPrefixLengths(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		// The public client's fallback body: its whole Node with the
		// interfaces in the old format.
		body := nodeReq(tw, farm)
		body["node_id"], body["last_seen"], body["online"], body["Approved"] = 0, nil, false, false
		body["interfaces"] = []map[string]any{{"name": "zos", "mac": "52:54:00:12:34:56", "ips": "10.1.2.3/24/fe80::1/64"}}
		r := h.do("POST", "/api/v1/nodes", body, h.v2(tw)).want(t, http.StatusCreated)
		id := uint64(r.obj(t)["node_id"].(float64))
		n := h.nodeJSON(id)
		if got := []string(n.Interfaces[0].IPs); !slices.Equal(got, []string{"10.1.2.3/24", "fe80::1/64"}) {
			t.Errorf("ips %q, want [10.1.2.3/24 fe80::1/64]", got)
		}
		// The same on PATCH, with a mix of bare addresses and CIDRs.
		body["interfaces"] = []map[string]any{{"name": "zos", "mac": "52:54:00:12:34:56", "ips": "10.1.2.4/2001:db8::4/48/10.9.9.9"}}
		h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", id), body, h.v2(tw)).want(t, http.StatusOK)
		if got := []string(h.nodeJSON(id).Interfaces[0].IPs); !slices.Equal(got, []string{"10.1.2.4", "2001:db8::4/48", "10.9.9.9"}) {
			t.Errorf("after PATCH ips %q", got)
		}
		// A prefix length with no address before it is still refused.
		body["interfaces"] = []map[string]any{{"name": "zos", "mac": "52:54:00:12:34:56", "ips": "24/10.0.0.1"}}
		wantField(t, "leading prefix", h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", id), body, h.v2(tw)), "interfaces[0].ips[0]", `"24"`)
	})
}

// TestStrictFieldNames: duplicate keys and field names in another case are
// refused; the exact spellings the public clients send are accepted.
func TestStrictFieldNames(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		nodePath := fmt.Sprintf("/api/v1/nodes/%d", node)
		before := h.nodeJSON(node)

		name := uniqueFarmName()
		wantField(t, "FARM_NAME", h.do("POST", "/api/v1/farms", fmt.Sprintf(`{"FARM_NAME":%q}`, name), h.v2(farmer)), `"FARM_NAME"`, "farm_name")
		wantField(t, "Farm_Name", h.do("POST", "/api/v1/farms", fmt.Sprintf(`{"farm_name":%q,"Farm_Name":"x"}`, name), h.v2(farmer)), `"Farm_Name"`)
		// Messages read as written, not HTML-escaped (\u003e for ">").
		r := h.do("PATCH", nodePath, `{"farm_id":null}`, h.v2(tw))
		wantField(t, "farm_id null", r, "farm_id", "(>= 1)")
		if strings.Contains(string(r.body), `\u003e`) {
			t.Errorf("error body HTML-escaped: %s", r.body)
		}
		wantField(t, "array body", h.do("POST", "/api/v1/farms", `[{"farm_name":"x"}]`, h.v2(farmer)), "invalid request body: expected an object, got array")
		wantField(t, "duplicate farm_name", h.do("POST", "/api/v1/farms", fmt.Sprintf(`{"farm_name":"a%s","farm_name":%q}`, name, name), h.v2(farmer)), "duplicate", `"farm_name"`)
		if r := h.do("GET", "/api/v1/farms?farm_name="+name, nil, nil).want(t, http.StatusOK); len(r.arr(t)) != 0 {
			t.Errorf("a refused body created a farm: %s", r.body)
		}
		wantField(t, "PATCH farm duplicate", h.do("PATCH", fmt.Sprintf("/api/v1/farms/%d", farm), `{"dedicated":true,"dedicated":false}`, h.v2(farmer)), "duplicate", `"dedicated"`)

		// Nested names and duplicates are named with their path.
		wantField(t, "location.City", h.do("PATCH", nodePath, rawNode(t, tw, farm, `"city":`, `"City":`), h.v2(tw)), `"location.City"`)
		wantField(t, "duplicate location.city", h.do("PATCH", nodePath, rawNode(t, tw, farm, `"city":"Ghent"`, `"city":"Ghent","city":"Paris"`), h.v2(tw)), "duplicate", `"location.city"`)
		wantField(t, "duplicate interfaces[0].mac", h.do("PATCH", nodePath, rawNode(t, tw, farm, `"mac":`, `"mac":"52:54:00:00:00:01","mac":`), h.v2(tw)), "duplicate", `"interfaces[0].mac"`)
		wantField(t, "Interfaces", h.do("PATCH", nodePath, rawNode(t, tw, farm, `"interfaces":`, `"Interfaces":`), h.v2(tw)), `"Interfaces"`)
		wantField(t, "APPROVED", h.do("PATCH", nodePath, rawNode(t, tw, farm, `"farm_id":`, `"APPROVED":true,"farm_id":`), h.v2(tw)), `"APPROVED"`)
		wantField(t, "Relays", h.do("PATCH", fmt.Sprintf("/api/v1/accounts/%d", farmer.id), `{"Relays":["relay.grid.tf"]}`, h.v2(farmer)), `"Relays"`)
		wantField(t, "Uptime", h.do("POST", nodePath+"/uptime", fmt.Sprintf(`{"Uptime":5,"timestamp":%d}`, h.clock.Now().Unix()), h.v2(tw)), `"Uptime"`)
		wantField(t, "duplicate uptime", h.do("POST", nodePath+"/uptime", fmt.Sprintf(`{"uptime":5,"uptime":6,"timestamp":%d}`, h.clock.Now().Unix()), h.v2(tw)), "duplicate", `"uptime"`)
		if after := h.nodeJSON(node); after.Location != before.Location || after.Interfaces[0].Mac != before.Interfaces[0].Mac || after.LastSeen != nil {
			t.Errorf("a refused body changed the node: %+v", after)
		}

		// What the public Go client sends: its whole Node with "Approved"
		// (no JSON tag), and "approved" as documented.
		for _, k := range []string{"Approved", "approved"} {
			b := nodeReq(tw, farm)
			b["node_id"], b["uptime"], b["last_seen"], b["online"], b[k] = node, nil, nil, false, true
			h.do("PATCH", nodePath, b, h.v2(tw)).want(t, http.StatusOK)
		}
		if h.nodeJSON(node).Approved {
			t.Error("approved sent by the node was not ignored")
		}
	})
}

// TestInvalidTextRefused: invalid UTF-8 (raw or as lone surrogate
// escapes) is refused, not replaced, anywhere in a body; bidi controls and
// zero-width characters are refused in names and free text.
func TestInvalidTextRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		nodePath := fmt.Sprintf("/api/v1/nodes/%d", node)
		before := h.nodeJSON(node)
		for _, c := range []struct {
			name, from, to, field string
		}{
			{"raw invalid UTF-8", `"Ghent"`, "\"Gh\xffent\"", "location.city"},
			{"truncated UTF-8", `"Ghent"`, "\"Ghent\xc3\"", "location.city"},
			{"lone high surrogate", `"Ghent"`, `"Gh\ud800ent"`, "location.city"},
			{"lone low surrogate", `"Belgium"`, `"\udc00Belgium"`, "location.country"},
			{"invalid UTF-8 in a name", `"city":`, "\"ci\xfety\":", "location"},
			{"RLO", `"Ghent"`, `"Gh\u202eent"`, "location.city"},
			{"RLI as raw UTF-8", `"Ghent"`, "\"Gh\u2067ent\"", "location.city"},
			{"LRM", `"Belgium"`, `"Belgium\u200e"`, "location.country"},
			{"ALM", `"Belgium"`, `"Bel\u061cgium"`, "location.country"},
			{"zero-width space", `"Ghent"`, `"Gh\u200bent"`, "location.city"},
			{"zero-width joiner", `"Ghent"`, `"Gh\u200dent"`, "location.city"},
			{"word joiner", `"Belgium"`, `"Bel\u2060gium"`, "location.country"},
			{"BOM", `"serial_number":"`, `"serial_number":"\ufeff`, "serial_number"},
		} {
			for _, method := range []string{"POST", "PATCH"} {
				path, who := "/api/v1/nodes", h.newTwin()
				if method == "PATCH" {
					path, who = nodePath, tw
				}
				r := h.do(method, path, rawNode(t, who, farm, c.from, c.to), h.v2(who))
				wantField(t, method+" "+c.name, r, c.field)
			}
		}
		if after := h.nodeJSON(node); after.Location != before.Location || after.SerialNumber != before.SerialNumber {
			t.Errorf("a refused body changed the node: %+v", after)
		}
		// Everywhere else in a body too: a farm name, an account relay.
		wantField(t, "farm_name", h.do("POST", "/api/v1/farms", "{\"farm_name\":\"ab\xffc\"}", h.v2(farmer)), "farm_name", "UTF-8")
		wantField(t, "relays", h.do("PATCH", fmt.Sprintf("/api/v1/accounts/%d", farmer.id), `{"relays":["relay\udfff.grid.tf"]}`, h.v2(farmer)), "relays[0]", "UTF-8")
		// Letters from any script are still fine.
		b := nodeReq(tw, farm)
		b["location"] = map[string]any{"country": "Côte d'Ivoire", "city": "القاهرة 東京 😀", "latitude": "", "longitude": ""}
		h.do("PATCH", nodePath, b, h.v2(tw)).want(t, http.StatusOK)
		if got := h.nodeJSON(node).Location.City; got != "القاهرة 東京 😀" {
			t.Errorf("city %q", got)
		}
	})
}

// TestIDsAboveInt64: every id beyond what the stores hold — in a query
// filter, a path or a body — is the same 400 naming the field.
func TestIDsAboveInt64(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, func(c *Config) { c.AdminTwins = []uint64{1} })
		admin := h.newTwin()
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		for _, big := range []string{"9223372036854775808", "18446744073709551615", "18446744073709551616", "99999999999999999999999"} {
			for _, c := range []struct {
				path, field string
			}{
				{"/api/v1/nodes?node_id=" + big, "node_id"},
				{"/api/v1/nodes?farm_id=" + big, "farm_id"},
				{"/api/v1/nodes?twin_id=" + big, "twin_id"},
				{"/api/v1/farms?farm_id=" + big, "farm_id"},
				{"/api/v1/farms?twin_id=" + big, "twin_id"},
				{"/api/v1/accounts?twin_id=" + big, "twin_id"},
				{"/api/v1/nodes/" + big, "node_id"},
				{"/api/v1/nodes/" + big + "/uptime", "node_id"},
				{"/api/v1/farms/" + big, "farm_id"},
			} {
				wantField(t, "GET "+c.path, h.do("GET", c.path, nil, nil), c.field, "9223372036854775807")
			}
			wantField(t, "PATCH account "+big, h.do("PATCH", "/api/v1/accounts/"+big, `{"relays":[]}`, h.v2(farmer)), "twin_id", "9223372036854775807")
			wantField(t, "PATCH farm "+big, h.do("PATCH", "/api/v1/farms/"+big, `{"dedicated":true}`, h.v2(farmer)), "farm_id", "9223372036854775807")
			wantField(t, "PATCH node "+big, h.do("PATCH", "/api/v1/nodes/"+big, nodeReq(tw, farm), h.v2(tw)), "node_id", "9223372036854775807")
			wantField(t, "uptime "+big, h.do("POST", "/api/v1/nodes/"+big+"/uptime", map[string]any{"uptime": 5, "timestamp": h.clock.Now().Unix()}, h.v2(tw)), "node_id", "9223372036854775807")
			wantField(t, "approve path "+big, h.do("POST", "/api/v1/farms/"+big+"/approve", `{"node_ids":[1]}`, h.v2(farmer)), "farm_id", "9223372036854775807")

			// Bodies.
			wantField(t, "approve body "+big, h.do("POST", fmt.Sprintf("/api/v1/farms/%d/approve", farm), `{"node_ids":[`+fmt.Sprint(node)+`,`+big+`]}`, h.v2(farmer)), "node_ids[1]", "9223372036854775807")
			nt := h.newTwin()
			wantField(t, "node farm_id "+big, h.do("POST", "/api/v1/nodes", rawNode(t, nt, farm, fmt.Sprintf(`"farm_id":%d`, farm), `"farm_id":`+big), h.v2(nt)), "farm_id", "9223372036854775807")
			wantField(t, "node twin_id "+big, h.do("POST", "/api/v1/nodes", rawNode(t, nt, farm, fmt.Sprintf(`"twin_id":%d`, nt.id), `"twin_id":`+big), h.v2(nt)), "twin_id", "9223372036854775807")
			wantField(t, "PATCH node farm_id "+big, h.do("PATCH", fmt.Sprintf("/api/v1/nodes/%d", node), rawNode(t, tw, farm, fmt.Sprintf(`"farm_id":%d`, farm), `"farm_id":`+big), h.v2(tw)), "farm_id", "9223372036854775807")
			wantField(t, "farm twin_id "+big, h.do("POST", "/api/v1/farms", `{"farm_name":"`+uniqueFarmName()+`","twin_id":`+big+`}`, h.v2(farmer)), "twin_id", "9223372036854775807")
			wantField(t, "test_farms "+big, h.do("POST", "/api/v1/zos/versions", `{"version":"v4.0.0","test_farms":[`+big+`]}`, h.v2(admin)), "test_farms[0]", "9223372036854775807")
		}
		// An id of 0 in a list is named with its index, as the docs'
		// input rules say (node_ids[3]).
		wantField(t, "approve node 0", h.do("POST", fmt.Sprintf("/api/v1/farms/%d/approve", farm), fmt.Sprintf(`{"node_ids":[%d,0]}`, node), h.v2(farmer)), "node_ids[1]", "not a node id")
		wantField(t, "test farm 0", h.do("POST", "/api/v1/zos/versions", `{"version":"v4.0.0","test_farms":[1,0]}`, h.v2(admin)), "test_farms[1]", "not a farm id")
		// The largest id is fine (and not found).
		h.do("GET", "/api/v1/nodes/9223372036854775807", nil, nil).want(t, http.StatusNotFound)
		if r := h.do("GET", "/api/v1/nodes?farm_id=9223372036854775807", nil, nil).want(t, http.StatusOK); len(r.arr(t)) != 0 {
			t.Errorf("nodes of farm 2^63-1: %s", r.body)
		}
		if n := h.nodeJSON(node); n.Approved || n.FarmID != farm {
			t.Errorf("a refused body changed the node: %+v", n)
		}
		// An id in range that is not a node of the farm: 404 naming it,
		// without the store's own words.
		r := h.do("POST", fmt.Sprintf("/api/v1/farms/%d/approve", farm), fmt.Sprintf(`{"node_ids":[%d,4242]}`, node), h.v2(farmer)).want(t, http.StatusNotFound)
		if msg := r.errMsg(t); !strings.Contains(msg, "node 4242 is not in farm") || strings.Contains(msg, "store") || strings.Contains(msg, "not found") {
			t.Errorf("approve a missing node: %q", msg)
		}
	})
}

// TestPatchMerges: PATCH on nodes, farms and accounts is a JSON merge
// patch (RFC 7396): omitted members are unchanged, null clears where
// clearing is valid and is refused where it is not.
func TestPatchMerges(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farmer := h.newTwin()
		farm := h.newFarm(farmer)
		tw := h.newTwin()
		node := h.newNode(tw, farm)
		nodePath := fmt.Sprintf("/api/v1/nodes/%d", node)
		orig := h.nodeJSON(node)
		patch := func(body string) resp { return h.do("PATCH", nodePath, body, h.v2(tw)) }

		// Omitted members keep their values; nested objects merge.
		patch(`{"resources":{"cru":16}}`).want(t, http.StatusOK)
		n := h.nodeJSON(node)
		want := orig.Resources
		want.CRU = 16
		if n.Resources != want || n.Location != orig.Location || !slices.Equal(n.Interfaces[0].IPs, orig.Interfaces[0].IPs) ||
			n.SerialNumber != orig.SerialNumber || n.SecureBoot != orig.SecureBoot || n.FarmID != farm {
			t.Fatalf("after {resources:{cru:16}}: %+v, was %+v", n, orig)
		}
		patch(`{"secure_boot":false,"zos_version":"v4.1.0"}`).want(t, http.StatusOK)
		if n := h.nodeJSON(node); n.SecureBoot || n.ZosVersion != "v4.1.0" || n.Resources != want {
			t.Fatalf("after secure_boot false: %+v", n)
		}
		patch(`{}`).want(t, http.StatusOK)
		wantField(t, "null body", patch(`null`), "request body", "null")
		wantField(t, "null farm body", h.do("PATCH", fmt.Sprintf("/api/v1/farms/%d", farm), `null`, h.v2(farmer)), "request body", "null")
		if n := h.nodeJSON(node); n.ZosVersion != "v4.1.0" || n.Location != orig.Location {
			t.Fatalf("after {}: %+v", n)
		}
		// null clears what may be empty.
		patch(`{"location":{"city":null},"zos_version":null}`).want(t, http.StatusOK)
		n = h.nodeJSON(node)
		wantLoc := orig.Location
		wantLoc.City = ""
		if n.Location != wantLoc || n.ZosVersion != "" {
			t.Fatalf("after city null: %+v", n)
		}
		patch(`{"location":null,"serial_number":null}`).want(t, http.StatusOK)
		if n := h.nodeJSON(node); n.Location != (api.Location{}) || n.SerialNumber != "" || n.Resources != want {
			t.Fatalf("after location null: %+v", n)
		}
		// ... and is refused where a value is required; nothing changes.
		before := h.nodeJSON(node)
		wantField(t, "farm_id null", patch(`{"farm_id":null,"serial_number":"X"}`), "farm_id")
		wantField(t, "interfaces null", patch(`{"interfaces":null}`), "interfaces")
		wantField(t, "interfaces empty", patch(`{"interfaces":[]}`), "interfaces")
		wantField(t, "bad value in a merge", patch(`{"location":{"latitude":"91"}}`), "location.latitude")
		if after := h.nodeJSON(node); after.SerialNumber != before.SerialNumber || after.FarmID != farm || len(after.Interfaces) != 1 {
			t.Fatalf("a refused PATCH changed the node: %+v", after)
		}
		// Arrays are replaced whole.
		patch(`{"interfaces":[{"name":"eth1","mac":"52:54:00:00:00:02","ips":["10.0.0.9"]}]}`).want(t, http.StatusOK)
		if n := h.nodeJSON(node); len(n.Interfaces) != 1 || n.Interfaces[0].Name != "eth1" || !slices.Equal(n.Interfaces[0].IPs, []string{"10.0.0.9"}) {
			t.Fatalf("after interfaces: %+v", n.Interfaces)
		}

		// Farms: null clears the Stellar address and the dedicated flag,
		// and cannot clear the name.
		farmPath := fmt.Sprintf("/api/v1/farms/%d", farm)
		const stellar = "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ"
		h.do("PATCH", farmPath, `{"stellar_address":"`+stellar+`","dedicated":true}`, h.v2(farmer)).want(t, http.StatusOK)
		getFarm := func() api.Farm {
			var f api.Farm
			if err := json.Unmarshal(h.do("GET", farmPath, nil, nil).want(t, http.StatusOK).body, &f); err != nil {
				t.Fatal(err)
			}
			return f
		}
		f0 := getFarm()
		wantField(t, "farm_name null", h.do("PATCH", farmPath, `{"farm_name":null,"dedicated":false}`, h.v2(farmer)), "farm_name")
		if f := getFarm(); f != f0 {
			t.Fatalf("a refused PATCH changed the farm: %+v", f)
		}
		h.do("PATCH", farmPath, `{"stellar_address":null}`, h.v2(farmer)).want(t, http.StatusOK)
		if f := getFarm(); f.StellarAddress != "" || !f.Dedicated || f.FarmName != f0.FarmName {
			t.Fatalf("after stellar_address null: %+v", f)
		}
		h.do("PATCH", farmPath, `{"dedicated":null}`, h.v2(farmer)).want(t, http.StatusOK)
		if f := getFarm(); f.Dedicated || f.FarmName != f0.FarmName {
			t.Fatalf("after dedicated null: %+v", f)
		}

		// Accounts: null clears relays and the RMB key; empty values keep
		// them (as on the public registrar).
		accPath := fmt.Sprintf("/api/v1/accounts/%d", farmer.id)
		h.do("PATCH", accPath, `{"relays":["relay.grid.tf"],"rmb_enc_key":"0xabc"}`, h.v2(farmer)).want(t, http.StatusOK)
		getAcc := func() api.Account {
			var a api.Account
			if err := json.Unmarshal(h.do("GET", fmt.Sprintf("/api/v1/accounts?twin_id=%d", farmer.id), nil, nil).want(t, http.StatusOK).body, &a); err != nil {
				t.Fatal(err)
			}
			return a
		}
		h.do("PATCH", accPath, `{"relays":[],"rmb_enc_key":""}`, h.v2(farmer)).want(t, http.StatusOK)
		if a := getAcc(); !slices.Equal(a.Relays, []string{"relay.grid.tf"}) || a.RMBEncKey != "0xabc" {
			t.Fatalf("empty values changed the account: %+v", a)
		}
		h.do("PATCH", accPath, `{"relays":null}`, h.v2(farmer)).want(t, http.StatusOK)
		if a := getAcc(); a.Relays == nil || len(a.Relays) != 0 || a.RMBEncKey != "0xabc" {
			t.Fatalf("after relays null: %+v", a)
		}
		h.do("PATCH", accPath, `{"rmb_enc_key":null}`, h.v2(farmer)).want(t, http.StatusOK)
		if a := getAcc(); a.RMBEncKey != "" || len(a.Relays) != 0 {
			t.Fatalf("after rmb_enc_key null: %+v", a)
		}
	})
}
