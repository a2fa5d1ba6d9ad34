package dbgen

import (
	"errors"
	"fmt"
	"go/types"
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Path values a write cannot know from its own SQL — a COPY of emails
// carries each row's campaign_id, not the campaign's user_id — can be
// looked up after it: a resolver is a query annotated "-- cache: resolver"
// that maps the parent's key to the path's column, of the shape
//
//	SELECT <key>, <column> FROM <parent> WHERE <key> = ANY(@keys)
//
// For a path scope that a write would bump wide while it knows its rows'
// key values, the generated code runs the resolver (at most
// cache.MaxResolveKeys keys) and bumps the values it returns; if the
// lookup fails or misses a key, the write bumps wide as before.

// resolver is a query that maps Parent.Key to Parent.Column.
type resolver struct {
	method              string
	parent, key, column string
	columnField         string // the field of the result row
	keyType, columnType types.Type
}

var errShape = errors.New("want SELECT <key>, <column> FROM <table> WHERE <key> = ANY(@keys), a :many read")

// readResolver reads the resolver an annotated query defines; an error
// when its shape is not a resolver's.
func readResolver(m *method, schema *Schema) (resolver, error) {
	if m.Kind != ":many" || len(m.Writes) > 0 || len(m.Reads) != 1 || m.Result == nil {
		return resolver{}, errShape
	}
	sel, _ := topStatement(m.stmt.tree).(*pg_query.SelectStmt)
	from := sel.GetFromClause()
	if sel == nil || len(from) != 1 || from[0].GetRangeVar() == nil ||
		sel.GetLimitCount() != nil || sel.GetGroupClause() != nil ||
		sel.GetDistinctClause() != nil || sel.GetWithClause() != nil {
		return resolver{}, errShape
	}
	s := newSel(&env{schema: schema, params: m.stmt.params}, nil)
	s.addRangeVar(from[0].GetRangeVar())
	var cols []string
	for _, tg := range sel.GetTargetList() {
		t, ok := s.term(tg.GetResTarget().GetVal())
		if _, isCol := s.occOf(t); !ok || !isCol || tg.GetResTarget().GetName() != "" {
			return resolver{}, fmt.Errorf("%w: select plain, unrenamed columns", errShape)
		}
		cols = append(cols, t.col)
	}
	if where := conjuncts(sel.GetWhereClause()); len(cols) == 2 && len(where) == 1 {
		s.addEquality(where[0], nil)
	}
	for k, key := range cols {
		if vals := s.lists[s.colTerm(0, key)]; len(vals) == 1 && vals[0].Many {
			return m.resolverOf(s.occs[0].table, key, cols[1-k], vals[0].Param)
		}
	}
	return resolver{}, errShape
}

// resolverOf binds a resolver's columns and parameter to Go.
func (m *method) resolverOf(parent, key, column, param string) (resolver, error) {
	elem, ok := m.Result.(*types.Slice)
	if !ok {
		return resolver{}, fmt.Errorf("%w: the result is not a slice", errShape)
	}
	kf, ok1 := fieldOf(elem.Elem(), key)
	cf, ok2 := fieldOf(elem.Elem(), column)
	_, argType, ok3 := m.param(param)
	if !ok1 || !ok2 || !ok3 {
		return resolver{}, fmt.Errorf("%w: no Go field for %s, %s or @%s", errShape, key, column, param)
	}
	if _, ok := argType.Underlying().(*types.Slice); !ok {
		return resolver{}, fmt.Errorf("%w: @%s is not a slice", errShape, param)
	}
	return resolver{method: m.Name, parent: parent, key: key, column: column, columnField: cf.Name(), keyType: kf.Type(), columnType: cf.Type()}, nil
}

// applyResolvers turns the wide path bumps of writes that know their rows'
// keys into lookups through the annotated resolvers.
func applyResolvers(ms []method, schema *Schema) error {
	resolvers := map[string]resolver{}
	for i := range ms {
		if !ms[i].Resolver {
			continue
		}
		r, err := readResolver(&ms[i], schema)
		if err != nil {
			return fmt.Errorf("%s: %s is annotated as a resolver: %w", ms[i].Pos(), ms[i].Name, err)
		}
		k := r.parent + "." + r.key + ">" + r.column
		if prev, dup := resolvers[k]; dup {
			return fmt.Errorf("%s: %s and %s both resolve %s", ms[i].Pos(), prev.method, r.method, k)
		}
		resolvers[k] = r
	}
	for mi := range ms {
		m := &ms[mi]
		for k, w := range m.ScopeWrites {
			r, ok := resolvers[w.Scope.Parent+"."+w.Scope.ParentKey+">"+w.Scope.ParentColumn]
			// The write's own values of the path's column: the keys.
			i := slices.IndexFunc(m.ScopeWrites, func(o ScopeWrite) bool { return o.Scope.Name() == w.Scope.Table+"."+w.Scope.Column })
			if !w.Wide || !w.Scope.IsPath() || !ok || i < 0 || !resolvable(m, m.ScopeWrites[i], r) {
				continue
			}
			w.Wide, w.Values, w.Through = false, m.ScopeWrites[i].Values, r
			w.Why = fmt.Sprintf("%s looked up from %s through %s", w.Scope.ParentColumn, w.Scope.Column, r.method)
			m.ScopeWrites[k] = w
		}
	}
	return nil
}

// resolvable: the keys are known, each of the resolver's key type.
func resolvable(m *method, keys ScopeWrite, r resolver) bool {
	return !keys.Wide && len(keys.Values) > 0 && !slices.ContainsFunc(keys.Values, func(v valueRef) bool {
		gv, ok := m.resolve(v)
		return !ok || !types.Identical(gv.typ, r.keyType)
	})
}
