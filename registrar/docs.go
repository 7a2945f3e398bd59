package registrar

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"slices"
	"sort"
	"strings"
)

// openAPIDocument is the OpenAPI 3 description of every route, served at
// /openapi.json. A test checks it against the route table.
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPI is the part of the OpenAPI document the docs page shows.
type openAPI struct {
	Info struct {
		Title       string `json:"title"`
		Version     string `json:"version"`
		Description string `json:"description"`
	} `json:"info"`
	Servers    []openAPIServer                       `json:"servers"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas map[string]openAPISchema `json:"schemas"`
	} `json:"components"`
}

// openAPISchema is the part of a schema the docs page shows.
type openAPISchema struct {
	Ref         string                   `json:"$ref"`
	Type        string                   `json:"type"`
	Format      string                   `json:"format"`
	Nullable    bool                     `json:"nullable"`
	OneOf       []openAPISchema          `json:"oneOf"`
	Description string                   `json:"description"`
	Required    []string                 `json:"required"`
	Properties  map[string]openAPISchema `json:"properties"`
	Items       *openAPISchema           `json:"items"`
}

// typeName is a short description of a schema's type, as docs/registrar.md
// writes it: "integer", "string (date-time)", "array of Interface",
// "array of string or string", "boolean or null", "any".
func (s openAPISchema) typeName() string {
	var t string
	switch {
	case s.Ref != "":
		t = strings.TrimPrefix(s.Ref, "#/components/schemas/")
	case len(s.OneOf) > 0:
		names := make([]string, len(s.OneOf))
		for i, o := range s.OneOf {
			names[i] = o.typeName()
		}
		t = strings.Join(names, " or ")
	case s.Type == "array" && s.Items != nil:
		t = "array of " + s.Items.typeName()
	case s.Type == "":
		t = "any"
	case s.Format != "":
		t = s.Type + " (" + s.Format + ")"
	default:
		t = s.Type
	}
	if s.Nullable {
		t += " or null"
	}
	return t
}

// docSchema is one schema on the docs page.
type docSchema struct {
	Name   string
	Fields []docField
}

type docField struct {
	Name, Type, Description string
	Required                bool
}

type openAPIServer struct {
	URL string `json:"url"`
}

type openAPIOperation struct {
	Tags        []string              `json:"tags"`
	Summary     string                `json:"summary"`
	Description string                `json:"description"`
	Security    []map[string][]string `json:"security"`
	Parameters  []struct {
		Ref         string `json:"$ref"`
		Name        string `json:"name"`
		In          string `json:"in"`
		Description string `json:"description"`
	} `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]json.RawMessage `json:"responses"`
}

// httpMethods returns the OpenAPI operation keys of a path item.
func httpMethods() []string {
	return []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
}

// docOp is one operation on the docs page.
type docOp struct {
	Method, Path, Summary, Description, Body string
	Auth                                     bool
	Params                                   []string
	Statuses                                 []string
}

// docServers returns the base URLs of a path item (its own servers, or the
// document's), without a trailing slash.
func docServers(doc openAPI, item map[string]json.RawMessage) ([]string, error) {
	servers := doc.Servers
	if raw, ok := item["servers"]; ok {
		servers = nil
		if err := json.Unmarshal(raw, &servers); err != nil {
			return nil, fmt.Errorf("servers: %w", err)
		}
	}
	out := make([]string, len(servers))
	for i, s := range servers {
		out[i] = strings.TrimSuffix(s.URL, "/")
	}
	return out, nil
}

// renderDocs builds the /docs HTML page from the OpenAPI document, so the
// page can never disagree with it.
func renderDocs(spec []byte) ([]byte, error) {
	var doc openAPI
	if err := json.Unmarshal(spec, &doc); err != nil {
		return nil, fmt.Errorf("parsing the OpenAPI document: %w", err)
	}
	groups := map[string][]docOp{}
	for path, item := range doc.Paths {
		servers, err := docServers(doc, item)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", path, err)
		}
		for _, m := range httpMethods() {
			raw, ok := item[m]
			if !ok {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				return nil, fmt.Errorf("%s %s: %w", m, path, err)
			}
			d := docOp{
				Method: strings.ToUpper(m), Summary: op.Summary, Description: op.Description,
				Auth: len(op.Security) > 0,
			}
			full := make([]string, len(servers))
			for i, s := range servers {
				full[i] = s + path
			}
			d.Path = strings.Join(full, "  ·  ")
			for _, p := range op.Parameters {
				switch {
				case p.Ref != "":
					d.Params = append(d.Params, strings.TrimPrefix(p.Ref, "#/components/parameters/"))
				default:
					s := p.Name + " (" + p.In + ")"
					if p.Description != "" {
						s += ": " + p.Description
					}
					d.Params = append(d.Params, s)
				}
			}
			if op.RequestBody != nil {
				for _, c := range op.RequestBody.Content {
					d.Body = strings.TrimPrefix(c.Schema.Ref, "#/components/schemas/")
				}
			}
			for code := range op.Responses {
				d.Statuses = append(d.Statuses, code)
			}
			sort.Strings(d.Statuses)
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			groups[tag] = append(groups[tag], d)
		}
	}
	type group struct {
		Tag string
		Ops []docOp
	}
	var gs []group
	for tag, ops := range groups {
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return ops[i].Method < ops[j].Method
		})
		gs = append(gs, group{tag, ops})
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].Tag < gs[j].Tag })

	var schemas []docSchema
	for name, sc := range doc.Components.Schemas {
		ds := docSchema{Name: name}
		for f, p := range sc.Properties {
			ds.Fields = append(ds.Fields, docField{Name: f, Type: p.typeName(), Description: p.Description, Required: slices.Contains(sc.Required, f)})
		}
		sort.Slice(ds.Fields, func(i, j int) bool { return ds.Fields[i].Name < ds.Fields[j].Name })
		schemas = append(schemas, ds)
	}
	sort.Slice(schemas, func(i, j int) bool { return schemas[i].Name < schemas[j].Name })

	var buf bytes.Buffer
	err := docsTemplate.Execute(&buf, struct {
		Title, Version, Description string
		Groups                      []group
		Schemas                     []docSchema
	}{doc.Info.Title, doc.Info.Version, doc.Info.Description, gs, schemas})
	if err != nil {
		return nil, fmt.Errorf("rendering: %w", err)
	}
	return buf.Bytes(), nil
}

var docsTemplate = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h2{border-bottom:1px solid #ccc;margin-top:2rem;text-transform:capitalize}
.op{margin:1rem 0;padding:.6rem .8rem;border-left:4px solid #888;background:#f7f7f7}
.m{font-weight:bold;font-family:monospace;display:inline-block;min-width:4.5rem}
.GET{border-color:#2a7} .POST{border-color:#27a} .PUT{border-color:#a72} .PATCH{border-color:#a2a}
code{font-family:monospace} table{border-collapse:collapse} td,th{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left;vertical-align:top} .auth{color:#a22;font-size:.85em} ul{margin:.3rem 0}
</style></head><body>
<h1>{{.Title}} <small>{{.Version}}</small></h1>
<p>{{.Description}}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3).</p>
{{range .Groups}}<h2>{{.Tag}}</h2>
{{range .Ops}}<div class="op {{.Method}}"><span class="m">{{.Method}}</span> <code>{{.Path}}</code>{{if .Auth}} <span class="auth">signed request</span>{{end}}
<div><b>{{.Summary}}</b></div>{{if .Description}}<div>{{.Description}}</div>{{end}}
{{if .Params}}<div>Parameters:<ul>{{range .Params}}<li><code>{{.}}</code></li>{{end}}</ul></div>{{end}}
{{if .Body}}<div>Body: <a href="#schema-{{.Body}}"><code>{{.Body}}</code></a></div>{{end}}
<div>Statuses: {{range .Statuses}}<code>{{.}}</code> {{end}}</div></div>
{{end}}{{end}}
<h2>Objects</h2>
{{range .Schemas}}<h3 id="schema-{{.Name}}">{{.Name}}</h3>
{{if .Fields}}<table><tr><th>field</th><th>type</th><th></th></tr>
{{range .Fields}}<tr><td><code>{{.Name}}</code>{{if .Required}} *{{end}}</td><td>{{.Type}}</td><td>{{.Description}}</td></tr>
{{end}}</table>{{else}}<p>See /openapi.json.</p>{{end}}
{{end}}
<p>* required</p>
</body></html>
`))
