package monitor

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// tableRef is a table named in a query's FROM clause.
type tableRef struct {
	schema, name, alias string
}

// colUse is a column the query filters, joins or sorts on.
type colUse struct {
	qualifier string // table name or alias as written; "" when unqualified
	column    string
	equality  bool // compared with = or IN: a leading index column serves it best
	order     bool // from ORDER BY
}

// queryShape is what index advice needs from a SELECT.
type queryShape struct {
	tables []tableRef
	uses   []colUse
}

// shapeOf reads the tables and the WHERE, JOIN and ORDER BY columns of the
// top-level SELECT. Subqueries are left out: their columns belong to plans
// of their own.
func shapeOf(sel *pg_query.SelectStmt) queryShape {
	var s queryShape
	for _, f := range sel.GetFromClause() {
		s.from(f)
	}
	s.predicate(sel.GetWhereClause())
	for _, n := range sel.GetSortClause() {
		if c := columnRef(n.GetSortBy().GetNode()); c != nil {
			c.order = true
			s.uses = append(s.uses, *c)
		}
	}
	return s
}

func (s *queryShape) from(n *pg_query.Node) {
	switch {
	case n.GetRangeVar() != nil:
		rv := n.GetRangeVar()
		s.tables = append(s.tables, tableRef{schema: rv.GetSchemaname(), name: rv.GetRelname(), alias: rv.GetAlias().GetAliasname()})
	case n.GetJoinExpr() != nil:
		j := n.GetJoinExpr()
		s.from(j.GetLarg())
		s.from(j.GetRarg())
		s.predicate(j.GetQuals())
	}
}

// predicate collects the columns compared in a boolean expression.
func (s *queryShape) predicate(n *pg_query.Node) {
	if n == nil {
		return
	}
	switch {
	case n.GetBoolExpr() != nil:
		for _, a := range n.GetBoolExpr().GetArgs() {
			s.predicate(a)
		}
	case n.GetNullTest() != nil:
		if c := columnRef(n.GetNullTest().GetArg()); c != nil {
			c.equality = true
			s.uses = append(s.uses, *c)
		}
	case n.GetAExpr() != nil:
		e := n.GetAExpr()
		eq := false
		switch e.GetKind() {
		case pg_query.A_Expr_Kind_AEXPR_OP:
			op := operator(e)
			if op != "=" && op != "<" && op != ">" && op != "<=" && op != ">=" && op != "~~" {
				return
			}
			eq = op == "="
		case pg_query.A_Expr_Kind_AEXPR_IN, pg_query.A_Expr_Kind_AEXPR_OP_ANY:
			eq = true
		case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		default:
			return
		}
		for _, side := range []*pg_query.Node{e.GetLexpr(), e.GetRexpr()} {
			if c := columnRef(side); c != nil {
				c.equality = eq
				s.uses = append(s.uses, *c)
			}
		}
	}
}

func operator(e *pg_query.A_Expr) string {
	names := e.GetName()
	if len(names) == 0 {
		return ""
	}
	return names[len(names)-1].GetString_().GetSval()
}

// columnRef returns the column a node names, or nil when it is anything
// else (an expression over a column cannot use a plain index on it).
func columnRef(n *pg_query.Node) *colUse {
	ref := n.GetColumnRef()
	if ref == nil {
		return nil
	}
	var parts []string
	for _, f := range ref.GetFields() {
		if f.GetString_() == nil {
			return nil // a.* or similar
		}
		parts = append(parts, f.GetString_().GetSval())
	}
	switch len(parts) {
	case 1:
		return &colUse{column: parts[0]}
	case 2:
		return &colUse{qualifier: parts[0], column: parts[1]}
	case 3:
		return &colUse{qualifier: parts[1], column: parts[2]}
	}
	return nil
}

// resolve assigns each used column to a table of the query: by alias or
// name when qualified, else to the one table that has such a column.
// columns maps each table (by index into tables) to its column names.
func (s queryShape) resolve(columns map[int]map[string]bool) map[int][]colUse {
	out := map[int][]colUse{}
	for _, u := range s.uses {
		idx := -1
		for i, t := range s.tables {
			if !columns[i][u.column] {
				continue
			}
			if u.qualifier != "" && u.qualifier != t.alias && (t.alias != "" || u.qualifier != t.name) {
				continue
			}
			if idx >= 0 {
				idx = -2 // ambiguous
				break
			}
			idx = i
		}
		if idx >= 0 {
			out[idx] = append(out[idx], u)
		}
	}
	return out
}

// candidateColumns lists the column lists worth testing on one table, as
// Dexter does: each column alone, and two-column indexes that lead with an
// equality column followed by another filtered or sorted column.
func candidateColumns(uses []colUse) [][]string {
	var out [][]string
	seen := map[string]bool{}
	add := func(cols ...string) {
		key := ""
		for _, c := range cols {
			key += c + "\x00"
		}
		if !seen[key] && len(out) < maxCandidates {
			seen[key] = true
			out = append(out, cols)
		}
	}
	for _, u := range uses {
		add(u.column)
	}
	for _, a := range uses {
		if !a.equality {
			continue
		}
		for _, b := range uses {
			if b.column != a.column {
				add(a.column, b.column)
			}
		}
	}
	return out
}

// maxCandidates bounds the hypothetical indexes tried per table, so one
// request stays a bounded number of EXPLAINs.
const maxCandidates = 12
