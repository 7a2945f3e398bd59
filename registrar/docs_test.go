package registrar

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grid4/grid4/registrar/api"
)

// The tests of this file keep docs/registrar.md, the served OpenAPI
// document and the Go types the handlers decode and encode in agreement:
// the "Bodies" section's route table and object tables are parsed and
// compared with the OpenAPI operations and schemas, and those with the Go
// types' JSON fields.

// bodyDocs is what the "Bodies" section of docs/registrar.md states.
type bodyDocs struct {
	// routes: "POST /nodes" → request body and answer cells.
	routes map[string][2]string
	// schemas: object name → its fields in order.
	schemas map[string][]fieldDoc
	// example is the text of the "Example" code block.
	example string
}

type fieldDoc struct {
	name, typ, rules string
	required         bool
}

// tableCells splits a markdown table row into trimmed cells (no cell of
// these tables holds a '|').
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(strings.TrimSuffix(line, "|"), "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

var backticked = regexp.MustCompile("`([^`]*)`")

// unquote returns the text of a cell without its backticks.
func unquote(cell string) string { return strings.ReplaceAll(cell, "`", "") }

// parseBodyDocs reads the "## Bodies" section of docs/registrar.md.
func parseBodyDocs(t *testing.T) bodyDocs {
	t.Helper()
	md, err := os.ReadFile("../docs/registrar.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(md), "\n## Bodies\n")
	if !ok {
		t.Fatal(`docs/registrar.md has no "## Bodies" section`)
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	d := bodyDocs{routes: map[string][2]string{}, schemas: map[string][]fieldDoc{}}
	heading := "" // current "### `Name`" object, "" before the first
	inCode := false
	for _, line := range strings.Split(sec, "\n") {
		switch {
		case strings.HasPrefix(line, "```"):
			inCode = !inCode
			continue
		case inCode:
			if heading == "Example" {
				d.example += line + "\n"
			}
			continue
		case strings.HasPrefix(line, "### "):
			heading = unquote(strings.TrimPrefix(line, "### "))
			continue
		case !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") ||
			strings.HasPrefix(line, "| route ") || strings.HasPrefix(line, "| field "):
			continue
		}
		cells := tableCells(line)
		if heading == "" {
			if len(cells) != 3 {
				t.Fatalf("route row %q: want 3 cells", line)
			}
			for _, m := range backticked.FindAllStringSubmatch(cells[0], -1) {
				d.routes[m[1]] = [2]string{cells[1], cells[2]}
			}
			continue
		}
		if len(cells) != 4 {
			t.Fatalf("%s: row %q: want 4 cells", heading, line)
		}
		d.schemas[heading] = append(d.schemas[heading], fieldDoc{
			name: unquote(cells[0]), typ: unquote(cells[1]), required: cells[2] == "yes", rules: cells[3],
		})
	}
	if len(d.routes) < 20 || len(d.schemas) < 15 {
		t.Fatalf("parsed %d routes and %d objects from docs/registrar.md: the tables look wrong", len(d.routes), len(d.schemas))
	}
	return d
}

// servedSpec returns the OpenAPI document as the registrar serves it.
func servedSpec(t *testing.T) []byte {
	h := newHarnessOn(t, openStore(t, "sqlite"), newFakeClock(), nil)
	return h.do("GET", "/openapi.json", nil, nil).want(t, http.StatusOK).body
}

// specOp is the part of an operation this file compares.
type specOp struct {
	RequestBody *struct {
		Content map[string]struct {
			Schema openAPISchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Ref     string `json:"$ref"`
		Content map[string]struct {
			Schema openAPISchema `json:"schema"`
		} `json:"content"`
	} `json:"responses"`
}

// TestDocsBodiesMatchOpenAPI: every operation's request body and success
// answer, and every object's fields (name, type, required, numeric
// limits), are the same in docs/registrar.md and in /openapi.json.
func TestDocsBodiesMatchOpenAPI(t *testing.T) {
	docs := parseBodyDocs(t)
	spec := servedSpec(t)
	var doc openAPI
	if err := json.Unmarshal(spec, &doc); err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Components struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema openAPISchema `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(spec, &raw); err != nil {
		t.Fatal(err)
	}

	// Routes.
	seen := map[string]bool{}
	for path, item := range doc.Paths {
		for _, m := range httpMethods() {
			opRaw, ok := item[m]
			if !ok {
				continue
			}
			route := strings.ToUpper(m) + " " + path
			seen[route] = true
			var op specOp
			if err := json.Unmarshal(opRaw, &op); err != nil {
				t.Fatal(err)
			}
			body := "–"
			if op.RequestBody != nil {
				body = "`" + op.RequestBody.Content["application/json"].Schema.typeName() + "`"
			}
			var code, answer string
			for c, r := range op.Responses {
				if !strings.HasPrefix(c, "2") {
					continue
				}
				code = c
				content := r.Content
				if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
					content = raw.Components.Responses[name].Content
				}
				if c, ok := content["application/json"]; ok {
					answer = c.Schema.typeName()
				}
			}
			got, ok := docs.routes[route]
			if !ok {
				t.Errorf("%s is in openapi.json, not in the Bodies table of docs/registrar.md", route)
				continue
			}
			if got[0] != body {
				t.Errorf("%s: request body %s in the docs, %s in openapi.json", route, got[0], body)
			}
			docCode, rest, _ := strings.Cut(got[1], " ")
			docType := ""
			if m := backticked.FindStringSubmatch(rest); m != nil {
				docType = m[1]
			}
			if docCode != code || docType != answer {
				t.Errorf("%s: answer %q in the docs, %s %q in openapi.json", route, got[1], code, answer)
			}
		}
	}
	for route := range docs.routes {
		if !seen[route] {
			t.Errorf("%s is in the Bodies table of docs/registrar.md, not in openapi.json", route)
		}
	}

	// Objects.
	for name, sc := range doc.Components.Schemas {
		fields, ok := docs.schemas[name]
		if !ok {
			t.Errorf("object %s of openapi.json has no table in docs/registrar.md", name)
			continue
		}
		var limits struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		if err := json.Unmarshal(raw.Components.Schemas[name], &limits); err != nil {
			t.Fatal(err)
		}
		var docNames []string
		for _, f := range fields {
			docNames = append(docNames, f.name)
			p, ok := sc.Properties[f.name]
			if !ok {
				t.Errorf("%s.%s is in docs/registrar.md, not in openapi.json", name, f.name)
				continue
			}
			if f.typ != p.typeName() {
				t.Errorf("%s.%s: type %q in the docs, %q in openapi.json", name, f.name, f.typ, p.typeName())
			}
			if req := slices.Contains(sc.Required, f.name); req != f.required {
				t.Errorf("%s.%s: required %v in the docs, %v in openapi.json", name, f.name, f.required, req)
			}
			for _, n := range schemaNumbers(t, limits.Properties[f.name]) {
				if !strings.Contains(f.rules, n) {
					t.Errorf("%s.%s: openapi.json has the limit %s, the docs' rules %q do not", name, f.name, n, f.rules)
				}
			}
		}
		for p := range sc.Properties {
			if !slices.Contains(docNames, p) {
				t.Errorf("%s.%s is in openapi.json, not in docs/registrar.md", name, p)
			}
		}
	}
	for name := range docs.schemas {
		if _, ok := doc.Components.Schemas[name]; !ok && name != "Example" {
			t.Errorf("object %s of docs/registrar.md is not in openapi.json", name)
		}
	}
}

// schemaNumbers returns the numeric limits (maxLength, maxItems,
// minItems, minimum, maximum) of a property schema and of its items and
// alternatives, as written in the JSON.
func schemaNumbers(t *testing.T, raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var s struct {
		MaxLength json.Number       `json:"maxLength"`
		MaxItems  json.Number       `json:"maxItems"`
		MinItems  json.Number       `json:"minItems"`
		Minimum   json.Number       `json:"minimum"`
		Maximum   json.Number       `json:"maximum"`
		Items     json.RawMessage   `json:"items"`
		OneOf     []json.RawMessage `json:"oneOf"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range []json.Number{s.MaxLength, s.MaxItems, s.MinItems, s.Minimum, s.Maximum} {
		if n != "" {
			out = append(out, n.String())
		}
	}
	out = append(out, schemaNumbers(t, s.Items)...)
	for _, o := range s.OneOf {
		out = append(out, schemaNumbers(t, o)...)
	}
	return out
}

// schemaGoTypes are the Go types behind the OpenAPI objects: what the
// handlers decode requests into and encode answers from.
var schemaGoTypes = map[string]reflect.Type{
	"Error":                 reflect.TypeFor[api.Error](),
	"Message":               reflect.TypeFor[api.Message](),
	"Account":               reflect.TypeFor[api.Account](),
	"CreateAccountRequest":  reflect.TypeFor[api.CreateAccountRequest](),
	"UpdateAccountRequest":  reflect.TypeFor[api.UpdateAccountRequest](),
	"Farm":                  reflect.TypeFor[api.Farm](),
	"CreateFarmRequest":     reflect.TypeFor[createFarmBody](),
	"UpdateFarmRequest":     reflect.TypeFor[api.UpdateFarmRequest](),
	"FarmID":                reflect.TypeFor[api.FarmID](),
	"Location":              reflect.TypeFor[api.Location](),
	"Resources":             reflect.TypeFor[api.Resources](),
	"Interface":             reflect.TypeFor[api.Interface](),
	"Node":                  reflect.TypeFor[api.Node](),
	"RegisterNodeRequest":   reflect.TypeFor[nodeBody](),
	"UpdateNodeRequest":     reflect.TypeFor[nodeBody](),
	"NodeID":                reflect.TypeFor[api.NodeID](),
	"ApprovalRequest":       reflect.TypeFor[api.ApprovalRequest](),
	"UptimeReport":          reflect.TypeFor[api.UptimeReport](),
	"UptimeReply":           reflect.TypeFor[api.UptimeReply](),
	"UptimeSession":         reflect.TypeFor[api.UptimeSession](),
	"Capacity":              reflect.TypeFor[api.Capacity](),
	"HealthCheck":           reflect.TypeFor[api.HealthCheck](),
	"ModuleState":           reflect.TypeFor[api.ModuleState](),
	"NodeStatusReport":      reflect.TypeFor[api.NodeStatusReport](),
	"NodeStatus":            reflect.TypeFor[api.NodeStatus](),
	"NodeStatusHistory":     reflect.TypeFor[api.NodeStatusHistory](),
	"PeerReachability":      reflect.TypeFor[api.PeerReachability](),
	"NodePower":             reflect.TypeFor[api.NodePower](),
	"PeerProbe":             reflect.TypeFor[api.PeerProbe](),
	"ZosVersion":            reflect.TypeFor[api.ZosVersion](),
	"ZosVersionRequest":     reflect.TypeFor[versionBody](),
	"Prices":                reflect.TypeFor[api.Prices](),
	"PricingEntry":          reflect.TypeFor[api.PricingEntry](),
	"ScheduledPrices":       reflect.TypeFor[api.ScheduledPrices](),
	"FarmPricing":           reflect.TypeFor[api.FarmPricing](),
	"SLA":                   reflect.TypeFor[api.SLA](),
	"Contract":              reflect.TypeFor[api.Contract](),
	"CreateContractRequest": reflect.TypeFor[api.CreateContractRequest](),
	"UpdateContractRequest": reflect.TypeFor[api.UpdateContractRequest](),
	"CreditRequest":         reflect.TypeFor[api.CreditRequest](),
	"Balance":               reflect.TypeFor[api.Balance](),
	"LedgerLine":            reflect.TypeFor[api.LedgerLine](),
	"Usage":                 reflect.TypeFor[api.Usage](),
	"UsageReport":           reflect.TypeFor[api.UsageReport](),
}

// goTypeName is typeName for a Go type (without "or null": a JSON null
// decodes into any Go type).
func goTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case reflect.TypeFor[json.RawMessage]():
		return "any"
	case reflect.TypeFor[api.IPList]():
		return "array of string or string"
	case reflect.TypeFor[time.Time]():
		return "string (date-time)"
	}
	switch k := t.Kind(); {
	case k == reflect.Struct:
		return t.Name()
	case k == reflect.Slice:
		return "array of " + goTypeName(t.Elem())
	case k == reflect.String:
		return "string"
	case k == reflect.Map:
		return "object"
	case k == reflect.Bool:
		return "boolean"
	case isInteger(k):
		return "integer"
	}
	return t.String()
}

// TestOpenAPIMatchesGoTypes: every OpenAPI object has exactly the JSON
// fields of its Go type, with the same types.
func TestOpenAPIMatchesGoTypes(t *testing.T) {
	var doc openAPI
	if err := json.Unmarshal(servedSpec(t), &doc); err != nil {
		t.Fatal(err)
	}
	// Members the server adds to an Error beside its Go fields (see
	// createAccount).
	extra := map[string][]string{"Error": {"server_time", "window_seconds"}}
	for name, sc := range doc.Components.Schemas {
		gt, ok := schemaGoTypes[name]
		if !ok {
			t.Errorf("object %s of openapi.json has no Go type in schemaGoTypes", name)
			continue
		}
		fields := structFields(gt)
		for f, ft := range fields {
			p, ok := sc.Properties[f]
			if !ok {
				t.Errorf("%s: %s has the JSON field %q, openapi.json does not", name, gt, f)
				continue
			}
			if got, want := strings.TrimSuffix(p.typeName(), " or null"), goTypeName(ft); got != want {
				t.Errorf("%s.%s: %q in openapi.json, %q in Go (%s)", name, f, got, want, ft)
			}
		}
		for p := range sc.Properties {
			if _, ok := fields[p]; !ok && !slices.Contains(extra[name], p) {
				t.Errorf("%s.%s is in openapi.json, %s has no such JSON field", name, p, gt)
			}
		}
	}
}

// TestDocsExampleRuns sends the requests of the Example in
// docs/registrar.md, as written there, and checks the answers' statuses
// and fields. Only ids and the timestamp are replaced by this run's.
func TestDocsExampleRuns(t *testing.T) {
	ex := parseBodyDocs(t).example
	if ex == "" {
		t.Fatal("docs/registrar.md has no Example in its Bodies section")
	}
	forEachBackend(t, func(t *testing.T, backend string) {
		h := newHarness(t, backend, nil)
		farm := h.newFarm(h.newTwin())
		tw := h.newTwin()
		var nodeID uint64
		ids := regexp.MustCompile(`/nodes/\d+`)
		n := 0
		for _, block := range strings.Split(strings.TrimSpace(ex), "\n\n") {
			lines := strings.Split(block, "\n")
			method, path, _ := strings.Cut(lines[0], " ")
			var body, answer string
			for _, l := range lines[1:] {
				if a, ok := strings.CutPrefix(l, "→ "); ok {
					answer = a
				} else {
					body += l + "\n"
				}
			}
			path = ids.ReplaceAllString(path, fmt.Sprintf("/nodes/%d", nodeID))
			body = regexp.MustCompile(`"farm_id": \d+`).ReplaceAllString(body, fmt.Sprintf(`"farm_id": %d`, farm))
			body = regexp.MustCompile(`"timestamp": \d+`).ReplaceAllString(body, fmt.Sprintf(`"timestamp": %d`, h.clock.Now().Unix()))
			codeText, wantJSON, _ := strings.Cut(answer, " ")
			code, err := strconv.Atoi(codeText)
			if err != nil {
				t.Fatalf("example answer %q", answer)
			}
			r := h.do(method, path, []byte(body), h.v2(tw)).want(t, code)
			var want, got map[string]any
			if err := json.Unmarshal([]byte(wantJSON), &want); err != nil {
				t.Fatalf("example answer %q: %v", wantJSON, err)
			}
			got = r.obj(t)
			if !sameKeys(want, got) {
				t.Errorf("%s %s: answer %s, the docs show %s", method, path, r.body, wantJSON)
			}
			if want["message"] != got["message"] {
				t.Errorf("%s %s: message %v, the docs show %v", method, path, got["message"], want["message"])
			}
			if id, ok := got["node_id"].(float64); ok {
				nodeID = uint64(id)
			}
			n++
		}
		if n < 3 {
			t.Fatalf("only %d example requests", n)
		}
		if c := h.nodeJSON(nodeID).Location; c.City != "Antwerp" || c.Country != "Belgium" {
			t.Errorf("after the example's PATCH: %+v", c)
		}
	})
}

func sameKeys(a, b map[string]any) bool {
	ka, kb := make([]string, 0, len(a)), make([]string, 0, len(b))
	for k := range a {
		ka = append(ka, k)
	}
	for k := range b {
		kb = append(kb, k)
	}
	sort.Strings(ka)
	sort.Strings(kb)
	return bytes.Equal([]byte(strings.Join(ka, ",")), []byte(strings.Join(kb, ",")))
}
