package registrar

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// patternPath turns a mux pattern path into its OpenAPI form:
// "/v1/accounts/{$}" → "/v1/accounts/".
func patternPath(p string) string { return strings.TrimSuffix(p, "{$}") }

// TestOpenAPIMatchesRoutes checks the served OpenAPI document against the
// route table: every registered method and path is documented, and every
// documented operation is registered.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	h := newHarnessOn(t, openStore(t, "sqlite"), newFakeClock(), nil)
	r := h.do("GET", "/openapi.json", nil, nil).want(t, http.StatusOK)

	var doc openAPI
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		servers, err := docServers(doc, item)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range httpMethods() {
			if _, ok := item[m]; !ok {
				continue
			}
			for _, s := range servers {
				documented[strings.ToUpper(m)+" "+s+path] = true
			}
		}
	}
	registered := map[string]bool{}
	for _, sr := range expand(h.srv.routes()) {
		registered[sr.method+" "+patternPath(sr.path)] = true
	}
	var missing, extra []string
	for k := range registered {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !registered[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing) > 0 {
		t.Errorf("registered but not in openapi.json:\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("in openapi.json but not registered:\n  %s", strings.Join(extra, "\n  "))
	}
	if len(registered) < 40 {
		t.Errorf("only %d registered routes: the table looks wrong", len(registered))
	}

	// Every auth route declares a security requirement, and only those.
	for _, rt := range h.srv.routes() {
		if rt.ops {
			continue
		}
		raw := doc.Paths[rt.path][strings.ToLower(rt.method)]
		var op openAPIOperation
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		if (len(op.Security) > 0) != rt.auth {
			t.Errorf("%s %s: security in openapi.json is %v, route auth is %v", rt.method, rt.path, op.Security, rt.auth)
		}
	}

	// Every $ref resolves.
	var full map[string]any
	_ = json.Unmarshal(r.body, &full)
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/([^"]+)"`).FindAllStringSubmatch(string(r.body), -1) {
		var cur any = full
		for _, part := range strings.Split(ref[1], "/") {
			m, ok := cur.(map[string]any)
			if !ok {
				cur = nil
				break
			}
			cur = m[part]
		}
		if cur == nil {
			t.Errorf("unresolved $ref #/%s", ref[1])
		}
	}
}

func TestDocsPage(t *testing.T) {
	h := newHarnessOn(t, openStore(t, "sqlite"), newFakeClock(), nil)
	r := h.do("GET", "/docs", nil, nil).want(t, http.StatusOK)
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q", ct)
	}
	for _, s := range []string{"/api/v1/nodes/{node_id}/uptime", "/v1/zos/version", "/openapi.json", "PATCH"} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("docs page lacks %q", s)
		}
	}
}

func TestOpsEndpoints(t *testing.T) {
	h := newHarnessOn(t, openStore(t, "sqlite"), newFakeClock(), nil)
	h.do("GET", "/healthz", nil, nil).want(t, http.StatusOK)
	h.do("GET", "/readyz", nil, nil).want(t, http.StatusOK)
	h.do("GET", "/api/v1/nodes", nil, nil).want(t, http.StatusOK)
	h.do("POST", "/api/v1/farms", map[string]any{}, nil).want(t, http.StatusUnauthorized)
	r := h.do("GET", "/metrics", nil, nil).want(t, http.StatusOK)
	for _, s := range []string{
		`registrar_http_requests_total{code="200",route="GET /nodes"} 1`,
		`registrar_auth_failures_total{reason="no_credentials"} 1`,
		`registrar_http_request_duration_seconds_bucket`,
		`registrar_report_interval_seconds 2400`,
	} {
		if !strings.Contains(string(r.body), s) {
			t.Errorf("metrics lack %q", s)
		}
	}
	// readyz fails when the store is gone.
	h.db.Close()
	h.do("GET", "/readyz", nil, nil).want(t, http.StatusServiceUnavailable)
}

func TestCORS(t *testing.T) {
	h := newHarnessOn(t, openStore(t, "sqlite"), newFakeClock(), nil)
	req, _ := http.NewRequest("OPTIONS", h.ts.URL+"/api/v1/nodes/1", nil)
	req.Header.Set("Origin", "https://dashboard.example")
	req.Header.Set("Access-Control-Request-Method", "PATCH")
	req.Header.Set("Access-Control-Request-Headers", "x-auth, content-type")
	res, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "PATCH") ||
		!strings.Contains(res.Header.Get("Access-Control-Allow-Headers"), "X-Auth") {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	req, _ = http.NewRequest("GET", h.ts.URL+"/v1/farms", nil)
	req.Header.Set("Origin", "https://dashboard.example")
	res, err = h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("simple request: %d %v", res.StatusCode, res.Header)
	}

	off := newHarnessOn(t, openStore(t, "sqlite"), newFakeClock(), func(c *Config) { c.CORSOrigin = "" })
	req, _ = http.NewRequest("OPTIONS", off.ts.URL+"/api/v1/nodes/1", nil)
	req.Header.Set("Origin", "https://dashboard.example")
	req.Header.Set("Access-Control-Request-Method", "PATCH")
	res, err = off.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS off: %d %v", res.StatusCode, res.Header)
	}
}
