package dbgen

import (
	"maps"
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

// source is a FROM item, or a CTE's definition (without names).
type source struct {
	names    []string
	kind     int
	table    string
	sel      *pg_query.SelectStmt // srcSelect: the query
	colnames []string             // srcSelect: its column aliases
	ctes     map[string]source    // srcSelect: the CTEs its query sees
	isTarget bool                 // the table an UPDATE or DELETE writes
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
		for i, col := range s.insertColumns(st, w.table) {
			if !slices.Contains(s.scopeColumns(w.table), col) {
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
	target := tr.rangeVar(rel, ctes)
	target.kind, target.isTarget = srcTable, true
	srcs := append([]source{target}, tr.fromItems(from, ctes)...)
	for _, c := range conjuncts(where) {
		col, src, ok := tr.matchTarget(srcs, ctes, c)
		if _, done := w.From[col]; ok && !done && slices.Contains(tr.s.scopeColumns(w.table), col) {
			w.From[col] = src
		}
	}
}

// insertValue traces the i-th column of an INSERT's rows: of every VALUES
// row (NEW.col of a row trigger), the same in each, or of its SELECT.
func (tr *tracer) insertValue(sel *pg_query.SelectStmt, i int, ctes map[string]source) (string, bool) {
	if sel.GetValuesLists() == nil {
		return tr.output(sel, i, ctes)
	}
	srcs, ok := valuesColumn(sel.GetValuesLists(), i, func(n *pg_query.Node) (string, bool) { return tr.value(nil, n) })
	if srcs = slices.Compact(srcs); !ok || len(srcs) != 1 {
		return "", false
	}
	return srcs[0], srcs[0] != ""
}

// withCTEs adds a WITH clause's CTEs to those visible outside it.
func (tr *tracer) withCTEs(with *pg_query.WithClause, outer map[string]source) map[string]source {
	out := map[string]source{}
	maps.Copy(out, outer)
	for _, c := range with.GetCtes() {
		cte := c.GetCommonTableExpr()
		out[cte.GetCtename()] = source{kind: srcOpaque}
		// A recursive CTE's rows come from its own iterations: not traced.
		if sel := cte.GetCtequery().GetSelectStmt(); sel != nil && !with.GetRecursive() {
			out[cte.GetCtename()] = source{kind: srcSelect, sel: sel, colnames: strs(cte.GetAliascolnames())}
		}
	}
	return out
}

func (tr *tracer) rangeVar(rv *pg_query.RangeVar, ctes map[string]source) source {
	n := rv.GetRelname()
	def, isCTE := ctes[n]
	src := source{kind: srcTable, table: tr.s.parent(relName(rv))}
	switch unqualified := rv.GetSchemaname() == ""; {
	case unqualified && isCTE:
		src = def
		src.ctes = ctes
	case unqualified && n != "" && (n == tr.t.NewTable || n == tr.t.OldTable):
		src = source{kind: srcTransition, table: tr.t.Table}
	}
	src.names = refKeys(rv)
	return src
}

func (tr *tracer) fromItems(items []*pg_query.Node, ctes map[string]source) []source {
	var out []source
	for _, item := range items {
		rs, j := item.GetRangeSubselect(), item.GetJoinExpr()
		switch sel := rs.GetSubquery().GetSelectStmt(); {
		case item.GetRangeVar() != nil:
			out = append(out, tr.rangeVar(item.GetRangeVar(), ctes))
		case rs != nil && !rs.GetLateral() && sel != nil:
			out = append(out, source{names: []string{rs.GetAlias().GetAliasname()}, kind: srcSelect, sel: sel, colnames: strs(rs.GetAlias().GetColnames()), ctes: ctes})
		case rs != nil:
			out = append(out, source{names: []string{rs.GetAlias().GetAliasname()}, kind: srcOpaque})
		case j != nil && j.GetAlias() == nil:
			out = append(out, tr.fromItems([]*pg_query.Node{j.GetLarg(), j.GetRarg()}, ctes)...)
		default:
			out = append(out, source{kind: srcOpaque})
		}
	}
	return out
}

// has reports whether a source has a column: yes, no, or unknown.
func (tr *tracer) has(src source, col string) (has, known bool) {
	switch src.kind {
	case srcTransition, srcTable:
		return tr.s.hasColumn(src.table, col), true
	case srcSelect:
		names, ok := src.columns()
		return ok && slices.Contains(names, col), ok
	}
	return false, false
}

// columns are a subquery's or CTE's column names: its aliases, else its
// output names; false when one is not known.
func (src source) columns() ([]string, bool) {
	if len(src.colnames) > 0 {
		return src.colnames, true
	}
	return outputNames(src.sel)
}

// resolve finds the one source among srcs a column reference names.
func (tr *tracer) resolve(srcs []source, parts []string) (source, string, bool) {
	if len(parts) < 1 || len(parts) > 2 {
		return source{}, "", false
	}
	col := last(parts)
	var found []source
	for _, src := range srcs {
		has, known := tr.has(src, col)
		switch {
		case len(parts) == 2 && slices.Contains(src.names, parts[0]):
			found = append(found, src)
		case len(parts) == 2:
		case !known:
			return source{}, "", false // an unknown source may have it too
		case has:
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

// value traces an expression over srcs to a column of the trigger's table.
func (tr *tracer) value(srcs []source, expr *pg_query.Node) (string, bool) {
	parts, star := columnRefParts(expr.GetColumnRef())
	if expr.GetColumnRef() == nil || star || len(parts) == 0 {
		return "", false
	}
	src, col, ok := tr.resolve(srcs, parts)
	switch {
	case !ok:
		return tr.rowValue(srcs, parts)
	case src.kind == srcTransition:
		return col, true
	case src.kind == srcSelect:
		names, _ := src.columns()
		return tr.output(src.sel, slices.Index(names, col), src.ctes)
	}
	return "", false
}

// rowValue traces NEW.col and OLD.col of a row trigger, when no source is
// named so.
func (tr *tracer) rowValue(srcs []source, parts []string) (string, bool) {
	named := func(s source) bool { return slices.Contains(s.names, parts[0]) }
	if !tr.t.Row || len(parts) != 2 || !strings.EqualFold(parts[0], "new") && !strings.EqualFold(parts[0], "old") ||
		!tr.s.hasColumn(tr.t.Table, parts[1]) || slices.ContainsFunc(srcs, named) {
		return "", false
	}
	return parts[1], true
}

// output traces a SELECT's idx-th output column, through set operations
// (the left side's, the same as the right side's for a UNION: INTERSECT
// and EXCEPT return rows of the left side) and its own FROM.
func (tr *tracer) output(sel *pg_query.SelectStmt, idx int, outer map[string]source) (string, bool) {
	if sel == nil || sel.GetValuesLists() != nil {
		return "", false
	}
	ctes := tr.withCTEs(sel.GetWithClause(), outer)
	if isSetOp(sel) {
		lc, ok := tr.output(sel.GetLarg(), idx, ctes)
		if sel.GetOp() == pg_query.SetOperation_SETOP_UNION {
			rc, rok := tr.output(sel.GetRarg(), idx, ctes)
			ok = ok && rok && rc == lc
		}
		return lc, ok
	}
	targets := sel.GetTargetList()
	if idx < 0 || idx >= len(targets) {
		return "", false
	}
	return tr.value(tr.fromItems(sel.GetFromClause(), ctes), targets[idx].GetResTarget().GetVal())
}

func isSetOp(sel *pg_query.SelectStmt) bool {
	op := sel.GetOp()
	return op != pg_query.SetOperation_SETOP_NONE && op != pg_query.SetOperation_SET_OPERATION_UNDEFINED
}

// outputNames are a SELECT's output column names; false when one is not
// known (a * or an unnamed expression).
func outputNames(sel *pg_query.SelectStmt) ([]string, bool) {
	if isSetOp(sel) {
		return outputNames(sel.GetLarg())
	}
	var out []string
	for _, t := range sel.GetTargetList() {
		rt := t.GetResTarget()
		parts, star := columnRefParts(rt.GetVal().GetColumnRef())
		switch {
		case rt.GetName() != "":
			out = append(out, rt.GetName())
		case rt.GetVal().GetColumnRef() == nil:
			out = append(out, "?") // PostgreSQL names it ?column? or after a function
		case star || len(parts) == 0:
			return nil, false
		default:
			out = append(out, last(parts))
		}
	}
	return out, true
}

// matchTarget recognises a WHERE conjunct tying a column of the written
// table to a traced value: target.col = value, value = target.col, or
// target.col IN (SELECT value …).
func (tr *tracer) matchTarget(srcs []source, ctes map[string]source, c *pg_query.Node) (string, string, bool) {
	targetCol := func(expr *pg_query.Node) (string, bool) {
		parts, star := columnRefParts(expr.GetColumnRef())
		src, col, ok := tr.resolve(srcs, parts)
		return col, ok && !star && src.isTarget
	}
	if e := c.GetAExpr(); e != nil && e.GetKind() == pg_query.A_Expr_Kind_AEXPR_OP && isEquals(e) {
		for _, pair := range [][2]*pg_query.Node{{e.GetLexpr(), e.GetRexpr()}, {e.GetRexpr(), e.GetLexpr()}} {
			if col, ok := targetCol(pair[0]); ok {
				if src, ok := tr.value(srcs, pair[1]); ok {
					return col, src, true
				}
			}
		}
	}
	if sl := c.GetSubLink(); sl != nil && sl.GetSubLinkType() == pg_query.SubLinkType_ANY_SUBLINK && len(sl.GetOperName()) == 0 {
		if col, ok := targetCol(sl.GetTestexpr()); ok {
			if src, ok := tr.output(sl.GetSubselect().GetSelectStmt(), 0, ctes); ok {
				return col, src, true
			}
		}
	}
	return "", "", false
}
