package dbgen

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Tracing a trigger statement's written rows back to the rows of the
// trigger's table (see triggers.go).

// tracer follows a value back to a column of the trigger's table.
type tracer struct {
	s *Schema
	t Trigger
}

const (
	srcTransition = iota // a transition table: rows of the trigger's table
	srcTable             // a table: values not traced
	srcSelect            // a subquery or CTE
	srcOpaque            // a function or anything else: columns unknown
)

type source struct {
	names    []string
	kind     int
	table    string
	sel      *pg_query.SelectStmt
	colnames []string
	ctes     map[string]cteDef
	isTarget bool
}

type cteDef struct {
	sel      *pg_query.SelectStmt
	colnames []string
}

type traceScope struct {
	sources []source
	ctes    map[string]cteDef
}

// traceWrite fills in w.From for the top-level INSERT, UPDATE or DELETE.
func (s *Schema) traceWrite(t Trigger, stmt proto.Message, w *TriggerWrite) {
	tr := &tracer{s: s, t: t}
	switch st := stmt.(type) {
	case *pg_query.InsertStmt:
		if upsertsUpdate(st) {
			return // an upsert may change existing rows: not traced
		}
		ctes := tr.withCTEs(st.GetWithClause(), nil)
		cols := columnNames(st.GetCols())
		if len(cols) == 0 {
			cols = s.Columns[w.Table]
		}
		for i, col := range cols {
			if !slices.Contains(s.scopeColumns(w.Table), col) {
				continue
			}
			if src, ok := tr.insertValue(st.GetSelectStmt().GetSelectStmt(), i, ctes); ok {
				w.From[col] = src
			}
		}
	case *pg_query.UpdateStmt:
		tr.traceWhere(st.GetWithClause(), st.GetRelation(), st.GetFromClause(), st.GetWhereClause(), w)
	case *pg_query.DeleteStmt:
		tr.traceWhere(st.GetWithClause(), st.GetRelation(), st.GetUsingClause(), st.GetWhereClause(), w)
	}
}

// traceWhere traces the scope columns an UPDATE's or DELETE's WHERE ties
// to traced values.
func (tr *tracer) traceWhere(with *pg_query.WithClause, rel *pg_query.RangeVar, from []*pg_query.Node, where *pg_query.Node, w *TriggerWrite) {
	ctes := tr.withCTEs(with, nil)
	sc := &traceScope{ctes: ctes}
	target := tr.rangeVar(rel, ctes)
	target.kind, target.isTarget = srcTable, true
	sc.sources = append(sc.sources, target)
	for _, f := range from {
		sc.sources = append(sc.sources, tr.fromItem(f, ctes)...)
	}
	for _, c := range conjuncts(where) {
		col, src, ok := tr.matchTarget(sc, c)
		if _, done := w.From[col]; ok && !done && slices.Contains(tr.s.scopeColumns(w.Table), col) {
			w.From[col] = src
		}
	}
}

// insertValue traces the i-th column of an INSERT's rows: of every VALUES
// row (NEW.col of a row trigger), or of its SELECT.
func (tr *tracer) insertValue(sel *pg_query.SelectStmt, i int, ctes map[string]cteDef) (string, bool) {
	lists := sel.GetValuesLists()
	if lists == nil {
		return tr.output(sel, "", i, ctes)
	}
	src := ""
	for _, l := range lists {
		items := l.GetList().GetItems()
		if i >= len(items) {
			return "", false
		}
		c, ok := tr.value(&traceScope{ctes: ctes}, items[i])
		if !ok || (src != "" && c != src) {
			return "", false
		}
		src = c
	}
	return src, src != ""
}

// withCTEs adds a WITH clause's CTEs to those visible outside it.
func (tr *tracer) withCTEs(with *pg_query.WithClause, outer map[string]cteDef) map[string]cteDef {
	out := map[string]cteDef{}
	for k, v := range outer {
		out[k] = v
	}
	for _, c := range with.GetCtes() {
		cte := c.GetCommonTableExpr()
		if with.GetRecursive() {
			// A recursive CTE's rows come from its own iterations: not traced.
			out[cte.GetCtename()] = cteDef{}
			continue
		}
		out[cte.GetCtename()] = cteDef{sel: cte.GetCtequery().GetSelectStmt(), colnames: strs(cte.GetAliascolnames())}
	}
	return out
}

func (tr *tracer) rangeVar(rv *pg_query.RangeVar, ctes map[string]cteDef) source {
	n, ns := rv.GetRelname(), rv.GetSchemaname()
	src := source{names: []string{n}}
	if an := rv.GetAlias().GetAliasname(); an != "" {
		src.names = []string{an}
	}
	switch def, isCTE := ctes[n]; {
	case ns == "" && isCTE && def.sel == nil:
		src.kind = srcOpaque
	case ns == "" && isCTE:
		src.kind, src.sel, src.colnames, src.ctes = srcSelect, def.sel, def.colnames, ctes
	case ns == "" && n != "" && (n == tr.t.NewTable || n == tr.t.OldTable):
		src.kind, src.table = srcTransition, tr.t.Table
	default:
		src.kind, src.table = srcTable, tr.s.parent(relName(rv))
	}
	return src
}

func (tr *tracer) fromItem(item *pg_query.Node, ctes map[string]cteDef) []source {
	if rv := item.GetRangeVar(); rv != nil {
		return []source{tr.rangeVar(rv, ctes)}
	}
	if rs := item.GetRangeSubselect(); rs != nil {
		name := rs.GetAlias().GetAliasname()
		sel := rs.GetSubquery().GetSelectStmt()
		if rs.GetLateral() || sel == nil {
			return []source{{names: []string{name}, kind: srcOpaque}}
		}
		return []source{{names: []string{name}, kind: srcSelect, sel: sel, colnames: strs(rs.GetAlias().GetColnames()), ctes: ctes}}
	}
	if j := item.GetJoinExpr(); j != nil && j.GetAlias() == nil {
		return append(tr.fromItem(j.GetLarg(), ctes), tr.fromItem(j.GetRarg(), ctes)...)
	}
	return []source{{kind: srcOpaque}}
}

// has reports whether a source has a column: yes, no, or unknown.
func (tr *tracer) has(src source, col string) (bool, bool) {
	switch src.kind {
	case srcTransition, srcTable:
		return tr.s.hasColumn(src.table, col), true
	case srcSelect:
		if len(src.colnames) > 0 {
			return slices.Contains(src.colnames, col), true
		}
		names, ok := outputNames(src.sel)
		return ok && slices.Contains(names, col), ok
	}
	return false, false
}

// resolve finds the one source a column reference names.
func (tr *tracer) resolve(sc *traceScope, parts []string) (source, string, bool) {
	if len(parts) < 1 || len(parts) > 2 {
		return source{}, "", false
	}
	col := parts[len(parts)-1]
	var found []source
	for _, src := range sc.sources {
		if len(parts) == 2 {
			if slices.Contains(src.names, parts[0]) {
				found = append(found, src)
			}
			continue
		}
		has, known := tr.has(src, col)
		if !known {
			return source{}, "", false // an unknown source may have it too
		}
		if has {
			found = append(found, src)
		}
	}
	if len(found) != 1 {
		return source{}, "", false
	}
	if has, known := tr.has(found[0], col); len(parts) == 2 && !has && known {
		return source{}, "", false
	}
	return found[0], col, true
}

// value traces an expression to a column of the trigger's table.
func (tr *tracer) value(sc *traceScope, expr *pg_query.Node) (string, bool) {
	cr := expr.GetColumnRef()
	if cr == nil {
		return "", false
	}
	parts, star := columnRefParts(cr)
	if star || len(parts) == 0 {
		return "", false
	}
	src, col, ok := tr.resolve(sc, parts)
	switch {
	case !ok:
		return tr.rowValue(sc, parts)
	case src.kind == srcTransition:
		return col, true
	case src.kind == srcSelect && len(src.colnames) > 0:
		return tr.output(src.sel, "", slices.Index(src.colnames, col), src.ctes)
	case src.kind == srcSelect:
		return tr.output(src.sel, col, -1, src.ctes)
	}
	return "", false
}

// rowValue traces NEW.col and OLD.col of a row trigger, when no source is
// named so.
func (tr *tracer) rowValue(sc *traceScope, parts []string) (string, bool) {
	if !tr.t.Row || len(parts) != 2 || !strings.EqualFold(parts[0], "new") && !strings.EqualFold(parts[0], "old") || !tr.s.hasColumn(tr.t.Table, parts[1]) {
		return "", false
	}
	for _, s := range sc.sources {
		if slices.Contains(s.names, parts[0]) {
			return "", false
		}
	}
	return parts[1], true
}

// output traces a SELECT's output column (by name, or by position when
// name is ""), through set operations and its own FROM.
func (tr *tracer) output(sel *pg_query.SelectStmt, name string, idx int, outer map[string]cteDef) (string, bool) {
	if sel == nil {
		return "", false
	}
	ctes := tr.withCTEs(sel.GetWithClause(), outer)
	if op := sel.GetOp(); op != pg_query.SetOperation_SETOP_NONE && op != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		return tr.setOutput(sel, name, idx, ctes)
	}
	if sel.GetValuesLists() != nil {
		return "", false
	}
	targets := sel.GetTargetList()
	if name != "" {
		names, ok := outputNames(sel)
		if !ok {
			return "", false
		}
		idx = slices.Index(names, name)
	}
	if idx < 0 || idx >= len(targets) {
		return "", false
	}
	sc := &traceScope{ctes: ctes}
	for _, f := range sel.GetFromClause() {
		sc.sources = append(sc.sources, tr.fromItem(f, ctes)...)
	}
	return tr.value(sc, targets[idx].GetResTarget().GetVal())
}

// setOutput traces an output column of a UNION, INTERSECT or EXCEPT: the
// left side's, the same as the right side's for a UNION.
func (tr *tracer) setOutput(sel *pg_query.SelectStmt, name string, idx int, ctes map[string]cteDef) (string, bool) {
	l, r := sel.GetLarg(), sel.GetRarg()
	if name != "" {
		names, ok := outputNames(l)
		if !ok || slices.Index(names, name) < 0 {
			return "", false
		}
		idx = slices.Index(names, name)
	}
	lc, ok := tr.output(l, "", idx, ctes)
	if !ok {
		return "", false
	}
	if sel.GetOp() == pg_query.SetOperation_SETOP_UNION {
		if rc, ok := tr.output(r, "", idx, ctes); !ok || rc != lc {
			return "", false
		}
	}
	return lc, true // INTERSECT and EXCEPT return rows of the left side
}

// outputNames are a SELECT's output column names; false when one is not
// known (a * or an unnamed expression).
func outputNames(sel *pg_query.SelectStmt) ([]string, bool) {
	if op := sel.GetOp(); op != pg_query.SetOperation_SETOP_NONE && op != pg_query.SetOperation_SET_OPERATION_UNDEFINED {
		return outputNames(sel.GetLarg())
	}
	var out []string
	for _, t := range sel.GetTargetList() {
		rt := t.GetResTarget()
		if n := rt.GetName(); n != "" {
			out = append(out, n)
			continue
		}
		cr := rt.GetVal().GetColumnRef()
		if cr == nil {
			out = append(out, "?") // PostgreSQL names it ?column? or after a function
			continue
		}
		parts, star := columnRefParts(cr)
		if star || len(parts) == 0 {
			return nil, false
		}
		out = append(out, last(parts))
	}
	return out, true
}

// matchTarget recognises a WHERE conjunct tying a column of the written
// table to a traced value: target.col = value, value = target.col, or
// target.col IN (SELECT value …).
func (tr *tracer) matchTarget(sc *traceScope, c *pg_query.Node) (string, string, bool) {
	targetCol := func(expr *pg_query.Node) (string, bool) {
		cr := expr.GetColumnRef()
		if cr == nil {
			return "", false
		}
		parts, star := columnRefParts(cr)
		if star {
			return "", false
		}
		src, col, ok := tr.resolve(sc, parts)
		return col, ok && src.isTarget
	}
	if e := c.GetAExpr(); e != nil && e.GetKind() == pg_query.A_Expr_Kind_AEXPR_OP && isEquals(e) {
		for _, pair := range [][2]*pg_query.Node{{e.GetLexpr(), e.GetRexpr()}, {e.GetRexpr(), e.GetLexpr()}} {
			if col, ok := targetCol(pair[0]); ok {
				if src, ok := tr.value(sc, pair[1]); ok {
					return col, src, true
				}
			}
		}
	}
	if sl := c.GetSubLink(); sl != nil && sl.GetSubLinkType() == pg_query.SubLinkType_ANY_SUBLINK && len(sl.GetOperName()) == 0 {
		if col, ok := targetCol(sl.GetTestexpr()); ok {
			if src, ok := tr.output(sl.GetSubselect().GetSelectStmt(), "", 0, sc.ctes); ok {
				return col, src, true
			}
		}
	}
	return "", "", false
}
