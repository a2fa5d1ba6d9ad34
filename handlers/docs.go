package handlers

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// /docs renders the OpenAPI document to plain HTML on the server: no
// JavaScript renderer and no CDN, so the page works offline and loads
// instantly.

type docOp struct {
	Method, Path, Summary, Auth, Body, BodyNote string
	Params                                      []docParam
	Responses                                   []docResp
}

type docParam struct{ Name, In, Desc string }

type docResp struct{ Code, Desc, Schema string }

type docTag struct {
	Name string
	Ops  []docOp
}

type docSchema struct{ Name, JSON string }

var docsTmpl = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ReplyRocket API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
main{max-width:980px;margin:auto;padding:24px}
h1{margin:0 0 4px} h2{margin-top:40px;border-bottom:2px solid #dde1e8;text-transform:capitalize}
details{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:8px 0}
summary{cursor:pointer;padding:8px 12px;font-family:ui-monospace,monospace}
.m{display:inline-block;width:64px;font-weight:bold}.GET{color:#0a7}.POST{color:#06c}.PATCH{color:#b70}.DELETE{color:#c22}
.s{font-family:system-ui,sans-serif;color:#555;margin-left:8px}
.b{padding:0 16px 12px} table{border-collapse:collapse;width:100%} td,th{border-bottom:1px solid #eee;padding:4px 8px;text-align:left;vertical-align:top}
pre{background:#f1f3f6;padding:8px;overflow:auto;font-size:13px} code{font-family:ui-monospace,monospace}
.auth{font-size:12px;background:#eef;padding:1px 6px;border-radius:4px}
</style></head><body><main>
<h1>ReplyRocket API</h1>
<p>{{.Description}}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
{{range .Tags}}<h2>{{.Name}}</h2>
{{range .Ops}}<details><summary><span class="m {{.Method}}">{{.Method}}</span>{{.Path}}<span class="s">{{.Summary}}</span>{{if .Auth}} <span class="auth">{{.Auth}}</span>{{end}}</summary><div class="b">
{{if .Params}}<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>description</th></tr>{{range .Params}}<tr><td><code>{{.Name}}</code></td><td>{{.In}}</td><td>{{.Desc}}</td></tr>{{end}}</table>{{end}}
{{if .Body}}<h4>Request body</h4><p>Schema <a href="#schema-{{.Body}}">{{.Body}}</a>. {{.BodyNote}}</p>{{end}}
<h4>Responses</h4><table>{{range .Responses}}<tr><td>{{.Code}}</td><td>{{.Desc}}{{if .Schema}} — <a href="#schema-{{.Schema}}">{{.Schema}}</a>{{end}}</td></tr>{{end}}</table>
</div></details>{{end}}{{end}}
<h2>Schemas</h2>
{{range .Schemas}}<h3 id="schema-{{.Name}}">{{.Name}}</h3><pre>{{.JSON}}</pre>{{end}}
</main></body></html>
`))

var docsHTML = sync.OnceValue(func() []byte {
	// The page is rendered from the document itself, in route-table order.
	var doc struct {
		Info  struct{ Description string } `json:"info"`
		Paths map[string]map[string]struct {
			Parameters []struct{ Name, In, Description string } `json:"parameters"`
			Responses  map[string]struct {
				Description string                     `json:"description"`
				Content     map[string]json.RawMessage `json:"content"`
			} `json:"responses"`
			RequestBody *struct {
				Content map[string]json.RawMessage `json:"content"`
			} `json:"requestBody"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		panic(err) // static data: tests render it
	}
	tagOrder := []string{}
	byTag := map[string][]docOp{}
	for _, r := range docRoutes() {
		op := doc.Paths[r.path][strings.ToLower(r.method)]
		d := docOp{Method: r.method, Path: r.path, Summary: r.summary, BodyNote: r.bodyNote}
		for _, p := range op.Parameters {
			d.Params = append(d.Params, docParam{Name: p.Name, In: p.In, Desc: p.Description})
		}
		if op.RequestBody != nil {
			d.Body = schemaRef(op.RequestBody.Content)
		}
		switch r.auth {
		case authUser:
			d.Auth = "API key"
		case authAdmin:
			d.Auth = "admin key"
		}
		codes := make([]string, 0, len(op.Responses))
		for code := range op.Responses {
			codes = append(codes, code)
		}
		sort.Strings(codes)
		for _, code := range codes {
			rm := op.Responses[code]
			d.Responses = append(d.Responses, docResp{Code: code, Desc: rm.Description, Schema: schemaRef(rm.Content)})
		}
		if _, seen := byTag[r.tag]; !seen {
			tagOrder = append(tagOrder, r.tag)
		}
		byTag[r.tag] = append(byTag[r.tag], d)
	}
	data := struct {
		Description string
		Tags        []docTag
		Schemas     []docSchema
	}{Description: doc.Info.Description}
	for _, t := range tagOrder {
		data.Tags = append(data.Tags, docTag{Name: t, Ops: byTag[t]})
	}
	names := make([]string, 0, len(doc.Components.Schemas))
	for n := range doc.Components.Schemas {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		var buf bytes.Buffer
		_ = json.Indent(&buf, doc.Components.Schemas[n], "", "  ")
		data.Schemas = append(data.Schemas, docSchema{Name: n, JSON: buf.String()})
	}
	var buf bytes.Buffer
	if err := docsTmpl.Execute(&buf, data); err != nil {
		panic(err) // static data: tests render it
	}
	return buf.Bytes()
})

// schemaRef is the component a media map refers to, if any.
func schemaRef(content map[string]json.RawMessage) string {
	for _, media := range content {
		var m struct {
			Schema struct {
				Ref string `json:"$ref"`
			} `json:"schema"`
		}
		if json.Unmarshal(media, &m) == nil && m.Schema.Ref != "" {
			return strings.TrimPrefix(m.Schema.Ref, "#/components/schemas/")
		}
	}
	return ""
}

func serveDocs(c echo.Context) error {
	return c.HTMLBlob(http.StatusOK, docsHTML())
}
