package dbgen

import (
	"fmt"
	"go/types"
)

// Path values a write cannot know from its own SQL — a COPY of emails
// carries each row's campaign_id, not the campaign's user_id — can be
// looked up after it: a resolver is a query that maps the parent's key to
// the path's column, recognised by its shape alone:
//
//	SELECT <key>, <column> FROM <parent> WHERE <key> = ANY(@keys)
//
// For a path scope that a write would bump wide while it knows its rows'
// key values, the generated code runs the resolver (at most
// cache.MaxResolveKeys keys) and bumps the values it returns; if the
// lookup fails or misses a key, the write bumps wide as before.

// resolver is a query that maps Parent.Key to Parent.Column.
type resolver struct {
	method                string
	parent, key, column   string
	keyField, columnField string // fields of the result row
	keyType, columnType   types.Type
}

// findResolver reports whether m has a resolver's shape.
func findResolver(m *method, schema *Schema) (resolver, bool) {
	if m.Kind != ":many" || len(m.Writes) > 0 || len(m.Reads) != 1 || m.result == nil {
		return resolver{}, false
	}
	numbered, params := numberParams(m.SQL)
	tree, err := parseTree(numbered)
	if err != nil {
		return resolver{}, false
	}
	top := topStatement(tree)
	sel, ok := top["SelectStmt"].(map[string]any)
	if !ok || sel["limitCount"] != nil || sel["groupClause"] != nil || sel["distinctClause"] != nil || sel["withClause"] != nil {
		return resolver{}, false
	}
	from, _ := sel["fromClause"].([]any)
	if len(from) != 1 {
		return resolver{}, false
	}
	rv, ok := from[0].(map[string]any)["RangeVar"].(map[string]any)
	if !ok {
		return resolver{}, false
	}
	parent := schema.parent(relName(rv))
	s := newSel(schema, params, nil)
	s.addRangeVar(rv, nil)
	var cols []string
	targets, _ := sel["targetList"].([]any)
	for _, tg := range targets {
		rt, _ := tg.(map[string]any)["ResTarget"].(map[string]any)
		if name, _ := rt["name"].(string); name != "" {
			return resolver{}, false // renamed: keep the shape plain
		}
		t, ok := s.term(rt["val"])
		if _, isCol := s.occOf(t); !ok || !isCol {
			return resolver{}, false
		}
		_, col, _ := cutTerm(t)
		cols = append(cols, col)
	}
	if len(cols) != 2 {
		return resolver{}, false
	}
	where := conjuncts(sel["whereClause"])
	if len(where) != 1 {
		return resolver{}, false
	}
	s.addEquality(where[0], nil)
	for k, key := range cols {
		vals := s.lists[s.colTerm(0, key)]
		if len(vals) != 1 || !vals[0].Many {
			continue
		}
		column := cols[1-k]
		elem, ok := m.result.(*types.Slice)
		if !ok {
			return resolver{}, false
		}
		kf, ok1 := fieldOf(elem.Elem(), key)
		cf, ok2 := fieldOf(elem.Elem(), column)
		_, argType, ok3 := m.param(vals[0].Param)
		if !ok1 || !ok2 || !ok3 {
			return resolver{}, false
		}
		if _, ok := argType.Underlying().(*types.Slice); !ok {
			return resolver{}, false
		}
		return resolver{method: m.Name, parent: parent, key: key, column: column, keyField: kf.Name(), columnField: cf.Name(), keyType: kf.Type(), columnType: cf.Type()}, true
	}
	return resolver{}, false
}

func cutTerm(t string) (head, col string, ok bool) {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i] == '.' {
			return t[:i], t[i+1:], true
		}
	}
	return "", "", false
}

// applyResolvers turns the wide path bumps of writes that know their rows'
// keys into lookups through a resolver.
func applyResolvers(ms []method, schema *Schema) {
	resolvers := map[string]resolver{}
	for i := range ms {
		if r, ok := findResolver(&ms[i], schema); ok {
			resolvers[r.parent+"."+r.key+">"+r.column] = r
		}
	}
	for i := range ms {
		m := &ms[i]
		direct := map[string]ScopeWrite{}
		for _, w := range m.ScopeWrites {
			if !w.Scope.IsPath() {
				direct[w.Scope.Name()] = w
			}
		}
		for k, w := range m.ScopeWrites {
			if !w.Wide || !w.Scope.IsPath() {
				continue
			}
			r, ok := resolvers[w.Scope.Parent+"."+w.Scope.ParentKey+">"+w.Scope.ParentColumn]
			keys, known := direct[w.Scope.Table+"."+w.Scope.Column]
			if !ok || !known || keys.Wide || len(keys.Values) == 0 || !resolvable(m, keys.Values, r) {
				continue
			}
			w.Wide, w.Values, w.Through = false, keys.Values, r
			w.Why = fmt.Sprintf("%s looked up from %s through %s", w.Scope.ParentColumn, w.Scope.Column, r.method)
			m.ScopeWrites[k] = w
		}
	}
}

// resolvable: every key value has the resolver's key type.
func resolvable(m *method, vals []valueRef, r resolver) bool {
	for _, v := range vals {
		gv, ok := m.resolve(v)
		if !ok || !types.Identical(gv.typ, r.keyType) {
			return false
		}
	}
	return true
}
