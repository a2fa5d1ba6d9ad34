package handlers

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

var updateDocs = flag.Bool("update-docs", false, "rewrite the generated response fields in docs/monitor.md")

const (
	monitorDoc    = "../docs/monitor.md"
	fieldsBegin   = "<!-- openapi:monitor-fields begin (generated from the OpenAPI document: go test ./handlers -run TestMonitorFieldsDocumented -update-docs) -->"
	fieldsEnd     = "<!-- openapi:monitor-fields end -->"
	schemasPrefix = "#/components/schemas/"
)

// The fields of every /db-monitor response are listed in docs/monitor.md,
// generated from the OpenAPI document (itself reflected from the Go
// response types): this fails while the list is stale.
func TestMonitorFieldsDocumented(t *testing.T) {
	want, err := monitorFieldsMarkdown(OpenAPI())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(monitorDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, fieldsBegin), strings.Index(doc, fieldsEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the markers %q … %q", monitorDoc, fieldsBegin, fieldsEnd)
	}
	updated := doc[:i+len(fieldsBegin)] + "\n" + want + doc[j:]
	if updated == doc {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(monitorDoc, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s: the response fields are stale: run go test ./handlers -run TestMonitorFieldsDocumented -update-docs", monitorDoc)
}

type jsonSchema = map[string]any

// monitorFieldsMarkdown lists, for each /db-monitor route answering JSON,
// its response schema, then every schema those reach with its fields.
func monitorFieldsMarkdown(document []byte) (string, error) {
	var doc struct {
		Paths      map[string]map[string]struct{ Responses jsonSchema } `json:"paths"`
		Components struct {
			Schemas map[string]jsonSchema `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(document, &doc); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("| route | response |\n| --- | --- |\n")
	var order []string
	seen := map[string]bool{}
	var visit func(s any)
	visit = func(s any) {
		switch s := s.(type) {
		case map[string]any:
			if ref, ok := s["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, schemasPrefix)
				if !seen[name] {
					seen[name] = true
					order = append(order, name)
					visit(doc.Components.Schemas[name])
				}
				return
			}
			for _, k := range jsonKeys(s) {
				visit(s[k])
			}
		case []any:
			for _, v := range s {
				visit(v)
			}
		}
	}
	for _, r := range docRoutes() {
		if !strings.HasPrefix(r.path, "/db-monitor/") || r.out == nil || r.outType != "" {
			continue
		}
		op := doc.Paths[r.path][strings.ToLower(r.method)]
		schema := dig(op.Responses, fmt.Sprint(r.ok), "content", "application/json", "schema")
		if schema == nil {
			return "", fmt.Errorf("%s %s: no JSON response schema", r.method, r.path)
		}
		fmt.Fprintf(&b, "| `%s %s` | %s |\n", r.method, r.path, fieldType(schema))
		visit(schema)
	}
	for _, name := range order {
		s := doc.Components.Schemas[name]
		props, _ := s["properties"].(map[string]any)
		if len(props) == 0 {
			continue
		}
		required := map[string]bool{}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				required[fmt.Sprint(r)] = true
			}
		}
		fmt.Fprintf(&b, "\n### %s\n\n| field | type | always present |\n| --- | --- | --- |\n", name)
		for _, f := range jsonKeys(props) {
			always := "no"
			if required[f] {
				always = "yes"
			}
			fs, _ := props[f].(map[string]any)
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", f, fieldType(fs), always)
		}
	}
	return b.String(), nil
}

// fieldType renders a property's schema: a link to a named schema, an
// array or map of one, a JSON type (with its format), "or null".
func fieldType(s jsonSchema) string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, schemasPrefix)
		return "[" + name + "](#" + strings.ToLower(name) + ")"
	}
	var types []string
	switch t := s["type"].(type) {
	case string:
		types = []string{t}
	case []any:
		for _, v := range t {
			types = append(types, fmt.Sprint(v))
		}
	}
	nullable := slices.Contains(types, "null")
	types = slices.DeleteFunc(types, func(t string) bool { return t == "null" })
	base := "any JSON"
	switch {
	case len(types) == 0:
	case types[0] == "array":
		items, _ := s["items"].(map[string]any)
		base = "array of " + fieldType(items)
	case types[0] == "object":
		base = "object"
		if ap, ok := s["additionalProperties"].(map[string]any); ok {
			base = "map of " + fieldType(ap)
		}
	default:
		base = strings.Join(types, " or ")
		if f, ok := s["format"].(string); ok {
			base += " (" + f + ")"
		}
	}
	if nullable {
		base += " or null"
	}
	return base
}

// dig follows keys through nested JSON objects.
func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, ok := m[k].(map[string]any)
		if !ok {
			return nil
		}
		m = next
	}
	return m
}

func jsonKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
