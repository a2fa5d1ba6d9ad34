package dbgen

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// rowChange is what a write does to one table's rows, and which scope
// column values those rows are known to carry.
type rowChange struct {
	table string
	// updated are the columns an UPDATE sets; nil means rows are added or
	// removed (INSERT, DELETE, COPY, cascade).
	updated []string
	// known are the values the changed rows carry (Values, and Why where
	// from) in a column, keyed by a ScopeDef of Table and Column, or in a
	// path scope.
	known map[ScopeDef]ScopeWrite
}

// WriteScopes derives what a write bumps in every scope of every table it
// changes; kind is the sqlc command.
func WriteScopes(q *parsed, kind string, tables Tables, schema *Schema, usable usableFunc) []ScopeWrite {
	changes := map[string]*rowChange{}
	// The top-level statement's rows are attributed to it (its WHERE, its
	// VALUES, its RETURNING). A table that another statement writes too (a
	// CTE's INSERT, UPDATE or DELETE, or its foreign-key actions) has rows
	// no one statement accounts for: not attributed, so wide.
	if ops := q.ops; len(ops) > 0 && ops[0].stmt == topStatement(q.tree) {
		others := map[string]bool{}
		for _, op := range ops {
			if op.stmt != ops[0].stmt {
				schema.markWithChildren(schema.parent(relName(op.rel)), others)
			}
		}
		if c := directChange(ops[0], kind, &env{schema: schema, params: q.params, ctes: q.ctes}); c != nil && !others[c.table] {
			changes[c.table] = c
			cascade(c, schema, changes, tables)
			maps.DeleteFunc(changes, func(t string, _ *rowChange) bool { return others[t] })
		}
	}
	// Tables the statement writes itself (or through foreign-key actions);
	// the others in tables.Writes are written by triggers.
	evs := statementEvents(q, schema)
	direct := eventTables(evs)
	var out []ScopeWrite
	for _, t := range sortedKeys(direct) {
		for _, sc := range schema.Scopes(t) {
			out = append(out, scopeWrite(sc, changes[t], schema, usable))
		}
	}
	// Rows added to or removed from a parent change what its children's
	// path scopes hold; so does an UPDATE of the parent's key or of the
	// scope column.
	for _, sc := range schema.AllScopes() {
		if direct[sc.Parent] {
			out = append(out, parentWrite(sc, changes[sc.Parent], schema, usable))
		}
	}
	// What the triggers those writes fire write, traced back to the scope
	// values of the rows the statement changed (triggers.go).
	own := mergeScopeWrites(out)
	for _, ev := range evs {
		out = append(out, schema.triggerScopeWrites(ev, own, map[string]bool{})...)
	}
	// The scopes of tables only triggers write that no trace reached.
	for _, t := range tables.Writes {
		for _, sc := range schema.Scopes(t) {
			if !direct[t] && !slices.ContainsFunc(out, func(w ScopeWrite) bool { return w.Scope.Name() == sc.Name() }) {
				out = append(out, wideWrite(sc, "written by a trigger, rows not attributed"))
			}
		}
	}
	return mergeScopeWrites(out)
}

// add records that the rows carry vals in sc, unless known already.
func (c *rowChange) add(sc ScopeDef, vals []valueRef, why string) {
	if _, ok := c.known[sc]; !ok && len(vals) > 0 {
		c.known[sc] = ScopeWrite{Values: vals, Why: why}
	}
}

// col is the values of column col of the changed rows.
func (c *rowChange) col(col string) []valueRef {
	return c.known[ScopeDef{Table: c.table, Column: col}].Values
}

// directChange analyses the top-level INSERT, UPDATE or DELETE in one sel
// whose first occurrence is its target.
func directChange(op writeOp, kind string, e *env) *rowChange {
	c := &rowChange{table: e.schema.parent(relName(op.rel)), known: map[ScopeDef]ScopeWrite{}}
	s := newSel(e, nil)
	s.addRangeVar(op.rel)
	switch st := op.stmt.(type) {
	case *pg_query.InsertStmt:
		insertValues(c, s.with(st.GetWithClause()), st, kind)
	case *pg_query.UpdateStmt:
		c.updated = op.columns
		whereValues(c, s.with(st.GetWithClause()).read(st.GetFromClause(), st.GetWhereClause()))
	case *pg_query.DeleteStmt:
		whereValues(c, s.with(st.GetWithClause()).read(st.GetUsingClause(), st.GetWhereClause()))
	default:
		return nil
	}
	if kind == ":one" || kind == ":many" {
		returned(c, s, op.stmt.(interface{ GetReturningList() []*pg_query.Node }).GetReturningList())
	}
	return c
}

// whereValues takes the scope values an UPDATE's or DELETE's WHERE (and
// joins), read into s, pin its target's rows to.
func whereValues(c *rowChange, s *sel) {
	for _, sc := range s.schema.Scopes(c.table) {
		c.add(sc, s.scopePins(0, sc), "WHERE")
	}
	// A parent's scope columns, for its children's path scopes.
	for _, col := range s.schema.Columns[c.table] {
		c.add(ScopeDef{Table: c.table, Column: col}, s.pins(0, col, false), "WHERE")
	}
}

// insertValues takes the values of INSERT ... VALUES, column by column,
// or of its SELECT's output; an ON CONFLICT DO UPDATE may change an
// existing row whose values differ, so only RETURNING counts then.
func insertValues(c *rowChange, s *sel, ins *pg_query.InsertStmt, kind string) {
	q := ins.GetSelectStmt().GetSelectStmt()
	if upsertsUpdate(ins) || q == nil {
		return
	}
	cols := columnNames(ins.GetCols()) // else every column, in order
	if len(cols) == 0 {
		cols = s.schema.Columns[c.table]
	}
	for i, col := range cols {
		// Every VALUES row must give the column a parameter.
		var vals []valueRef
		ok, why := true, "VALUES"
		for _, row := range q.GetValuesLists() {
			t, tok := term{}, false
			if items := row.GetList().GetItems(); i < len(items) {
				t, tok = s.term(items[i])
			}
			ok = ok && tok && t.param != ""
			vals = append(vals, valueRef{Param: t.param, PerRow: kind == ":copyfrom"})
		}
		if q.GetValuesLists() == nil {
			t, tok := s.output(q, s.defs, i)
			vals, ok, why = []valueRef{{Param: t.param}}, tok, "SELECT"
		}
		if ok {
			c.add(ScopeDef{Table: c.table, Column: col}, vals, why)
		}
	}
}

// returned adds the values of RETURNING columns of the target table (the
// first occurrence of s), for the columns no parameter gave.
func returned(c *rowChange, s *sel, list []*pg_query.Node) {
	for _, it := range list {
		rt := it.GetResTarget()
		_, star := columnRefParts(rt.GetVal().GetColumnRef())
		t, ok := s.term(rt.GetVal())
		switch {
		case star:
			for _, col := range s.schema.Columns[c.table] {
				c.add(ScopeDef{Table: c.table, Column: col}, []valueRef{{Field: col}}, "RETURNING")
			}
		case ok && t == s.colTerm(0, t.col):
			c.add(ScopeDef{Table: c.table, Column: t.col}, []valueRef{{Field: cmp.Or(rt.GetName(), t.col)}}, "RETURNING")
		case ok:
			// A path scope's value from the parent joined on the foreign
			// key (RETURNING c.user_id with c.id = e.campaign_id): each
			// row's own parent, so no lookup after the write.
			occ, isCol := s.occOf(t)
			for _, sc := range s.schema.Scopes(c.table) {
				if isCol && sc.IsPath() && s.occs[occ].table == sc.Parent && t.col == sc.ParentColumn &&
					slices.Contains(s.members(s.colTerm(0, sc.Column)), s.colTerm(occ, sc.ParentKey)) {
					c.add(sc, []valueRef{{Field: cmp.Or(rt.GetName(), t.col)}}, "RETURNING")
				}
			}
		}
	}
}

// cascade adds the rows an ON DELETE CASCADE removes from child tables,
// with the values they are known to carry: the parent's.
func cascade(parent *rowChange, schema *Schema, changes map[string]*rowChange, tables Tables) {
	if parent.updated != nil {
		return // an UPDATE's cascades (ON UPDATE) stay wide
	}
	for _, fk := range schema.FKs {
		if fk.Parent != parent.table || fk.OnDelete != "c" || changes[fk.Child] != nil || !slices.Contains(tables.Writes, fk.Child) {
			continue
		}
		child := &rowChange{table: fk.Child, known: map[ScopeDef]ScopeWrite{}}
		child.add(ScopeDef{Table: fk.Child, Column: fk.ChildCol}, parent.col(fk.ParentCol), "cascade from "+parent.table+"."+fk.ParentCol)
		for _, sc := range schema.Scopes(fk.Child) {
			if sc.IsPath() && sc.Column == fk.ChildCol && sc.Parent == parent.table {
				child.add(sc, parent.col(sc.ParentColumn), "cascade from "+parent.table+"."+sc.ParentColumn)
			}
		}
		changes[fk.Child] = child
		cascade(child, schema, changes, tables)
	}
}

// scopeWrite is what change c does to scope sc of its own table: to the
// row slot, or to the columns an UPDATE sets.
func scopeWrite(sc ScopeDef, c *rowChange, schema *Schema, usable usableFunc) ScopeWrite {
	switch {
	case c == nil:
		return wideWrite(sc, "rows not attributed (several writes, or a statement kind not analysed)")
	case slices.Contains(c.updated, sc.Column):
		return wideWrite(sc, "updates "+sc.Column+", moving rows between values")
	}
	w := c.known[sc]
	w.Scope, w.Columns = sc, c.updated
	if c.updated == nil {
		w.Columns = []string{""}
	}
	if !allUsable(w.Values, schema.valueType(sc), usable) {
		w.Wide, w.Values, w.Why = true, nil, "its rows' "+scopeValueName(sc)+" is not known"
	}
	return w
}

// parentWrite is what change c of a parent table does to a child's path
// scope sc.
func parentWrite(sc ScopeDef, c *rowChange, schema *Schema, usable usableFunc) ScopeWrite {
	switch {
	case c == nil:
		return wideWrite(sc, "rows of "+sc.Parent+" not attributed")
	case c.updated == nil && allUsable(c.col(sc.ParentColumn), schema.valueType(sc), usable):
		return ScopeWrite{Scope: sc, Values: c.col(sc.ParentColumn), Columns: []string{""}, Why: sc.Parent + " rows added or removed"}
	case c.updated == nil:
		return wideWrite(sc, sc.Parent+" rows' "+sc.ParentColumn+" is not known")
	case slices.Contains(c.updated, sc.ParentKey) || slices.Contains(c.updated, sc.ParentColumn):
		return wideWrite(sc, "updates "+sc.Parent+"."+sc.ParentColumn+" or its key")
	}
	return ScopeWrite{} // the path is unchanged
}

func wideWrite(sc ScopeDef, why string) ScopeWrite {
	return ScopeWrite{Scope: sc, Wide: true, Columns: []string{""}, Why: why}
}

func scopeValueName(sc ScopeDef) string {
	if sc.IsPath() {
		return sc.Parent + "." + sc.ParentColumn
	}
	return sc.Column
}

// mergeScopeWrites folds the writes of one scope together: wide wins, and
// values and columns add up.
func mergeScopeWrites(ws []ScopeWrite) []ScopeWrite {
	by := map[string]ScopeWrite{}
	for _, w := range ws {
		cur, seen := by[w.Scope.Name()]
		switch {
		case w.Scope.Table == "":
			continue
		case !seen:
			cur = w
		case cur.Wide:
		case w.Wide:
			cur.Wide, cur.Values, cur.Why = true, nil, w.Why
		default:
			cur.Values = union(cur.Values, w.Values...)
			if !strings.Contains(cur.Why, w.Why) {
				cur.Why += "; " + w.Why
			}
		}
		if seen {
			cur.Columns = union(cur.Columns, w.Columns...)
		}
		by[w.Scope.Name()] = cur
	}
	for _, w := range by {
		slices.Sort(w.Columns)
	}
	return slices.SortedFunc(maps.Values(by), func(a, b ScopeWrite) int { return strings.Compare(a.Scope.Name(), b.Scope.Name()) })
}
