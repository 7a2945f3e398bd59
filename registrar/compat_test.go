package registrar

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The compatibility suite drives every route of the public Grid v4
// registrar API the way the existing clients do (the Go SDK client, ZOS's
// registrar gateway, the zos-update-worker): legacy X-Auth built by hand,
// the bodies they send (with their extra fields), and checks statuses and
// JSON field names. See /tmp/research/registrar-wire.md, the facts this
// suite encodes.

// clientNode mirrors the public Go client's Node struct: what it decodes
// from GET /nodes/{id} and sends back whole on PATCH /nodes/{id}.
type clientNode struct {
	NodeID        uint64              `json:"node_id"`
	FarmID        uint64              `json:"farm_id"`
	TwinID        uint64              `json:"twin_id"`
	Location      map[string]string   `json:"location"`
	Resources     map[string]uint64   `json:"resources"`
	Interfaces    []clientInterface   `json:"interfaces"`
	SecureBoot    bool                `json:"secure_boot"`
	Virtualized   bool                `json:"virtualized"`
	SerialNumber  string              `json:"serial_number"`
	UptimeReports []map[string]uint64 `json:"uptime"`
	LastSeen      *time.Time          `json:"last_seen"`
	Online        bool                `json:"online"`
	Approved      bool
}

type clientInterface struct {
	Name string   `json:"name"`
	Mac  string   `json:"mac"`
	IPs  []string `json:"ips"`
}

// nodeKeys are the node fields every known client reads.
var nodeKeys = []string{"node_id", "farm_id", "twin_id", "location", "resources", "interfaces", "secure_boot",
	"virtualized", "serial_number", "last_seen", "online", "approved", "created_at", "updated_at"}

var farmKeys = []string{"farm_id", "farm_name", "twin_id", "stellar_address", "dedicated", "created_at", "updated_at"}

var accountKeys = []string{"twin_id", "public_key", "relays", "rmb_enc_key"}

func TestCompatibility(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend string) {
		for _, prefix := range []string{"/api/v1", "/v1"} {
			t.Run(strings.TrimPrefix(prefix, "/"), func(t *testing.T) {
				// Legacy X-Auth on admin routes, as the public tooling sends it.
				h := newHarness(t, backend, func(c *Config) { c.AdminTwins, c.AdminLegacyAuth = []uint64{1}, true })
				compatSuite(t, h, prefix)
			})
		}
	})
}

func compatSuite(t *testing.T, h *harness, p string) {
	now := func() int64 { return h.clock.Now().Unix() }
	tick := func() { h.clock.Advance(time.Second) } // new X-Auth timestamps: identical requests are replays

	// --- accounts -----------------------------------------------------
	admin := newKey()
	r := h.do("POST", p+"/accounts", accountBody(admin, now()), nil).want(t, http.StatusCreated)
	acc := r.obj(t)
	hasKeys(t, "POST /accounts", acc, accountKeys...)
	admin.id = uint64(acc["twin_id"].(float64))
	if admin.id != 1 {
		t.Fatalf("first twin id %d, want 1", admin.id)
	}
	if acc["public_key"] != admin.pubB64() {
		t.Errorf("public_key %v, want %s", acc["public_key"], admin.pubB64())
	}

	farmer := newKey()
	r = h.do("POST", p+"/accounts/", accountBody(farmer, now()), nil).want(t, http.StatusCreated) // trailing slash
	farmer.id = uint64(r.obj(t)["twin_id"].(float64))

	r = h.do("POST", p+"/accounts", accountBody(farmer, now()), nil).want(t, http.StatusConflict)
	if got := r.errMsg(t); got != "account with this public key already exists" {
		t.Errorf("duplicate account: %q", got)
	}
	late := newKey()
	r = h.do("POST", p+"/accounts", accountBody(late, now()-3600), nil).want(t, http.StatusBadRequest)
	if m := r.obj(t); m["error"] != "timestamp outside acceptable window" || m["server_time"] != float64(now()) {
		t.Errorf("stale account timestamp: %s", r.body)
	}

	// GET /accounts: by public key (as NewRegistrarClient does with q.Add,
	// which escapes '+'), by twin id, with a trailing slash; 200, not 201.
	q := url.Values{}
	q.Add("public_key", farmer.pubB64())
	r = h.do("GET", p+"/accounts?"+q.Encode(), nil, nil).want(t, http.StatusOK)
	hasKeys(t, "GET /accounts", r.obj(t), accountKeys...)
	r = h.do("GET", fmt.Sprintf("%s/accounts?twin_id=%d", p, farmer.id), nil, nil).want(t, http.StatusOK)
	if r.obj(t)["public_key"] != farmer.pubB64() {
		t.Errorf("GET by twin: %s", r.body)
	}
	h.do("GET", fmt.Sprintf("%s/accounts/?twin_id=%d", p, farmer.id), nil, nil).want(t, http.StatusOK)
	r = h.do("GET", p+"/accounts?twin_id=999999", nil, nil).want(t, http.StatusNotFound)
	if r.errMsg(t) != "account not found" {
		t.Errorf("missing account: %s", r.body)
	}
	h.do("GET", fmt.Sprintf("%s/accounts?twin_id=1&%s", p, q.Encode()), nil, nil).want(t, http.StatusBadRequest)
	h.do("GET", p+"/accounts", nil, nil).want(t, http.StatusBadRequest)

	// PATCH /accounts/{twin_id}: only non-empty keys, as the Go client sends.
	r = h.do("PATCH", fmt.Sprintf("%s/accounts/%d", p, farmer.id), map[string]any{"relays": []string{"relay.qa4.grid.tf"}}, h.legacy(farmer)).want(t, http.StatusOK)
	if r.obj(t)["message"] == nil {
		t.Errorf("PATCH /accounts: no message in %s", r.body)
	}
	r = h.do("GET", fmt.Sprintf("%s/accounts?twin_id=%d", p, farmer.id), nil, nil).want(t, http.StatusOK)
	if relays, _ := r.obj(t)["relays"].([]any); len(relays) != 1 || relays[0] != "relay.qa4.grid.tf" {
		t.Errorf("relays not updated: %s", r.body)
	}

	// --- farms --------------------------------------------------------
	// The Go client posts its whole Farm struct: farm_id 0 and an empty
	// stellar_address.
	name := uniqueFarmName()
	r = h.do("POST", p+"/farms", map[string]any{"farm_id": 0, "farm_name": name, "twin_id": farmer.id, "dedicated": false, "stellar_address": ""}, h.legacy(farmer)).want(t, http.StatusCreated)
	farm := uint64(r.obj(t)["farm_id"].(float64))
	tick()
	r = h.do("POST", p+"/farms/", map[string]any{"farm_name": uniqueFarmName(), "twin_id": farmer.id, "dedicated": true, "stellar_address": "GA7QYNF7SOWQ3GLR2BGMZEHXAVIRZA4KVWLTJJFC7MGXUA74P7UJVSGZ"}, h.legacy(farmer)).want(t, http.StatusCreated)
	hasKeys(t, "POST /farms/", r.obj(t), "farm_id")
	tick()
	h.do("POST", p+"/farms", map[string]any{"farm_name": strings.ToUpper(name), "twin_id": farmer.id}, h.legacy(farmer)).want(t, http.StatusConflict)

	r = h.do("GET", fmt.Sprintf("%s/farms/%d", p, farm), nil, nil).want(t, http.StatusOK)
	hasKeys(t, "GET /farms/{id}", r.obj(t), farmKeys...)
	h.do("GET", p+"/farms/999999", nil, nil).want(t, http.StatusNotFound)
	h.do("GET", p+"/farms/abc", nil, nil).want(t, http.StatusBadRequest)
	r = h.do("GET", p+"/farms?farm_name="+name[:6]+"&page=1&size=50", nil, nil).want(t, http.StatusOK)
	if fs := r.arr(t); len(fs) != 1 {
		t.Errorf("GET /farms?farm_name: %s", r.body)
	} else {
		hasKeys(t, "GET /farms", fs[0], farmKeys...)
	}
	r = h.do("GET", fmt.Sprintf("%s/farms?twin_id=%d&dedicated=true&page=1&size=50", p, farmer.id), nil, nil).want(t, http.StatusOK)
	if fs := r.arr(t); len(fs) != 2 {
		t.Errorf("GET /farms?twin_id: %d farms, want 2", len(fs))
	}
	if r := h.do("GET", p+"/farms?twin_id=999999", nil, nil).want(t, http.StatusOK); string(r.body) != "[]\n" {
		t.Errorf("empty list: %q, want []", r.body)
	}

	newName := uniqueFarmName()
	r = h.do("PATCH", fmt.Sprintf("%s/farms/%d", p, farm), map[string]any{"farm_name": newName}, h.legacy(farmer)).want(t, http.StatusOK)
	hasKeys(t, "PATCH /farms", r.obj(t), "message")
	tick()
	h.do("PATCH", fmt.Sprintf("%s/farms/%d", p, farm), map[string]any{"dedicated": true}, h.legacy(farmer)).want(t, http.StatusOK)
	r = h.do("GET", fmt.Sprintf("%s/farms/%d", p, farm), nil, nil).want(t, http.StatusOK)
	if m := r.obj(t); m["farm_name"] != newName || m["dedicated"] != true {
		t.Errorf("farm not updated: %s", r.body)
	}

	// --- nodes --------------------------------------------------------
	node1 := newKey()
	r = h.do("POST", p+"/accounts", accountBody(node1, now()), nil).want(t, http.StatusCreated)
	node1.id = uint64(r.obj(t)["twin_id"].(float64))

	// The Go client posts its whole Node struct, extras included.
	reg := nodeReq(node1, farm)
	reg["node_id"], reg["uptime"], reg["last_seen"], reg["online"], reg["Approved"] = 0, nil, nil, false, false
	r = h.do("POST", p+"/nodes", reg, h.legacy(node1)).want(t, http.StatusCreated)
	nodeID := uint64(r.obj(t)["node_id"].(float64))

	// Older nodes send the interface addresses as one "/"-joined string.
	node2 := newKey()
	r = h.do("POST", p+"/accounts", accountBody(node2, now()), nil).want(t, http.StatusCreated)
	node2.id = uint64(r.obj(t)["twin_id"].(float64))
	reg2 := nodeReq(node2, farm)
	reg2["interfaces"] = []map[string]any{{"name": "zos", "mac": "52:54:00:aa:bb:cc", "ips": "10.0.0.6/2001:db8::6"}}
	r = h.do("POST", p+"/nodes", reg2, h.legacy(node2)).want(t, http.StatusCreated)
	node2ID := uint64(r.obj(t)["node_id"].(float64))
	r = h.do("GET", fmt.Sprintf("%s/nodes/%d", p, node2ID), nil, nil).want(t, http.StatusOK)
	var n2 clientNode
	if err := json.Unmarshal(r.body, &n2); err != nil {
		t.Fatalf("Go client cannot decode node: %v", err)
	}
	if len(n2.Interfaces) != 1 || strings.Join(n2.Interfaces[0].IPs, ",") != "10.0.0.6,2001:db8::6" {
		t.Errorf("legacy ips string not split into an array: %+v", n2.Interfaces)
	}

	// zos finds its node with GET /nodes?twin_id=.
	r = h.do("GET", fmt.Sprintf("%s/nodes?twin_id=%d", p, node1.id), nil, nil).want(t, http.StatusOK)
	ns := r.arr(t)
	if len(ns) != 1 || ns[0]["node_id"] != float64(nodeID) {
		t.Fatalf("GET /nodes?twin_id: %s", r.body)
	}
	hasKeys(t, "GET /nodes", ns[0], nodeKeys...)
	if ns[0]["last_seen"] != nil || ns[0]["online"] != false || ns[0]["approved"] != false {
		t.Errorf("fresh node: %s", r.body)
	}
	if ifs, _ := ns[0]["interfaces"].([]any); len(ifs) != 1 {
		t.Errorf("interfaces: %v", ns[0]["interfaces"])
	} else if ips, _ := ifs[0].(map[string]any)["ips"].([]any); len(ips) != 2 {
		t.Errorf("ips must be an array: %v", ifs[0])
	}
	// The old client always sends farm_id=0 and healthy=false.
	r = h.do("GET", p+"/nodes?farm_id=0&healthy=false&page=1&size=50", nil, nil).want(t, http.StatusOK)
	if len(r.arr(t)) != 2 {
		t.Errorf("GET /nodes with old client filters: %s", r.body)
	}
	r = h.do("GET", fmt.Sprintf("%s/nodes?farm_id=%d&online=false&last_seen=0&status=up", p, farm), nil, nil).want(t, http.StatusOK)
	h.do("GET", p+"/nodes/999999", nil, nil).want(t, http.StatusNotFound)
	h.do("GET", p+"/nodes/x", nil, nil).want(t, http.StatusBadRequest)

	// PATCH /nodes/{id}: the Go client GETs the node, changes it and sends
	// the whole struct back (node_id, uptime, last_seen, online, Approved).
	r = h.do("GET", fmt.Sprintf("%s/nodes/%d", p, nodeID), nil, nil).want(t, http.StatusOK)
	hasKeys(t, "GET /nodes/{id}", r.obj(t), nodeKeys...)
	var cn clientNode
	if err := json.Unmarshal(r.body, &cn); err != nil {
		t.Fatalf("Go client cannot decode node: %v", err)
	}
	cn.SerialNumber = "NEW-SERIAL"
	cn.Resources["cru"] = 16
	r = h.do("PATCH", fmt.Sprintf("%s/nodes/%d", p, nodeID), cn, h.legacy(node1)).want(t, http.StatusOK)
	hasKeys(t, "PATCH /nodes", r.obj(t), "message")
	r = h.do("GET", fmt.Sprintf("%s/nodes/%d", p, nodeID), nil, nil).want(t, http.StatusOK)
	if m := r.obj(t); m["serial_number"] != "NEW-SERIAL" || m["resources"].(map[string]any)["cru"] != float64(16) {
		t.Errorf("node not updated: %s", r.body)
	}

	// Uptime: {uptime seconds, timestamp unix} → 201 {"message"}.
	r = h.do("POST", fmt.Sprintf("%s/nodes/%d/uptime", p, nodeID), map[string]any{"uptime": 3600, "timestamp": now()}, h.legacy(node1)).want(t, http.StatusCreated)
	if m := r.obj(t); m["message"] != "uptime reported successfully" {
		t.Errorf("uptime reply: %s", r.body)
	}
	r = h.do("GET", fmt.Sprintf("%s/nodes/%d", p, nodeID), nil, nil).want(t, http.StatusOK)
	if err := json.Unmarshal(r.body, &cn); err != nil {
		t.Fatal(err)
	}
	if !cn.Online || cn.LastSeen == nil {
		t.Errorf("after a report the node is online with last_seen: %s", r.body)
	}
	r = h.do("GET", fmt.Sprintf("%s/nodes?online=true", p), nil, nil).want(t, http.StatusOK)
	if ns := r.arr(t); len(ns) != 1 || ns[0]["node_id"] != float64(nodeID) {
		t.Errorf("online=true: %s", r.body)
	}
	r = h.do("GET", fmt.Sprintf("%s/nodes?last_seen=5", p), nil, nil).want(t, http.StatusOK)
	if ns := r.arr(t); len(ns) != 1 {
		t.Errorf("last_seen=5: %s", r.body)
	}

	// --- ZOS version --------------------------------------------------
	r = h.do("GET", p+"/zos/version", nil, nil).want(t, http.StatusNotFound)
	if r.errMsg(t) != "zos version not set" {
		t.Errorf("unset version: %s", r.body)
	}
	// The Go client's SetZosVersion tries the typed form first.
	r = h.do("PUT", p+"/zos/version", map[string]any{"version": "v0.1.8", "safe_to_upgrade": true}, h.legacy(admin)).want(t, http.StatusOK)
	if len(r.body) != 0 {
		t.Errorf("PUT /zos/version: body %q, want empty", r.body)
	}
	r = h.do("GET", p+"/zos/version", nil, nil).want(t, http.StatusOK)
	if v := workerDecode(t, r.body); v.Version != "v0.1.8" || !v.SafeToUpgrade {
		t.Errorf("GET /zos/version: %+v", v)
	}
	if want := `"` + base64.StdEncoding.EncodeToString([]byte(`{"version":"v0.1.8","safe_to_upgrade":true}`)) + `"` + "\n"; string(r.body) != want {
		t.Errorf("GET /zos/version body %q, want byte-identical %q", r.body, want)
	}
	// The base64 form (single quotes tolerated, as consumers do).
	tick()
	enc := base64.StdEncoding.EncodeToString([]byte(`{'version':'v0.1.9','safe_to_upgrade':false}`))
	h.do("PUT", p+"/zos/version", map[string]any{"version": enc}, h.legacy(admin)).want(t, http.StatusOK)
	r = h.do("GET", p+"/zos/version", nil, nil).want(t, http.StatusOK)
	if v := workerDecode(t, r.body); v.Version != "v0.1.9" || v.SafeToUpgrade {
		t.Errorf("after base64 PUT: %+v", v)
	}
	tick()
	r = h.do("PUT", p+"/zos/version", map[string]any{"version": enc}, h.legacy(admin)).want(t, http.StatusConflict)
	if r.errMsg(t) != "version already set" {
		t.Errorf("unchanged version: %s", r.body)
	}
	// A non-base64 version without safe_to_upgrade is a 400, so the Go
	// client's fallback logic keeps working.
	tick()
	h.do("PUT", p+"/zos/version", map[string]any{"version": "v0.2.0"}, h.legacy(admin)).want(t, http.StatusBadRequest)
	// Non-admins get 401 "not authorized".
	r = h.do("PUT", p+"/zos/version", map[string]any{"version": "v0.2.0", "safe_to_upgrade": true}, h.legacy(farmer)).want(t, http.StatusUnauthorized)
	if !strings.HasPrefix(r.errMsg(t), "not authorized") {
		t.Errorf("non-admin: %s", r.body)
	}
}

// workerDecode decodes GET /zos/version the way the zos-update-worker
// does: trim the quotes, base64-decode, replace ' with ", unmarshal.
func workerDecode(t *testing.T, body []byte) (v struct {
	Version       string `json:"version"`
	SafeToUpgrade bool   `json:"safe_to_upgrade"`
}) {
	t.Helper()
	s := strings.Trim(strings.TrimSpace(string(body)), `"`)
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("not base64: %q", body)
	}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(raw), "'", `"`)), &v); err != nil {
		t.Fatalf("decoded %q: %v", raw, err)
	}
	return v
}
