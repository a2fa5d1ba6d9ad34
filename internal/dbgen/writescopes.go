package dbgen

import (
	"sort"
	"strings"
)

// rowChange is what a write does to one table's rows, and which scope
// column values those rows are known to carry.
type rowChange struct {
	table string
	// updated are the columns an UPDATE sets; nil means rows are added or
	// removed (INSERT, DELETE, COPY, cascade).
	updated []string
	// known are the values of columns the changed rows carry, and paths
	// those of path scopes by name; why says where they come from.
	known map[string][]valueRef
	paths map[string][]valueRef
	why   map[string]string
}

// WriteScopes derives what a write bumps in every scope of every table it
// changes. kind is the sqlc command; results tells whether RETURNING
// values reach the Go result.
func WriteScopes(sql, kind string, tables Tables, schema *Schema, usable usableFunc) ([]ScopeWrite, error) {
	numbered, params := numberParams(sql)
	tree, err := parseTree(numbered)
	if err != nil {
		return nil, err
	}
	top := topStatement(tree)
	changes := map[string]*rowChange{}
	if top != nil && writeNodes(tree) == 1 {
		if c := directChange(top, kind, schema, params, cteNames(tree)); c != nil {
			changes[c.table] = c
			cascade(c, schema, changes, tables)
		}
	}
	// Tables the statement writes itself (or through foreign-key actions);
	// the others in tables.Writes are written by triggers.
	evs := statementEvents(tree, schema, cteNames(tree))
	direct := map[string]bool{}
	for _, ev := range evs {
		direct[ev.table] = true
	}
	var out []ScopeWrite
	for _, t := range tables.Writes {
		if !direct[t] {
			continue
		}
		c := changes[t]
		for _, sc := range schema.Scopes(t) {
			out = append(out, scopeWrite(sc, c, schema, usable))
		}
	}
	// Rows added to or removed from a parent change what its children's
	// path scopes hold; so does an UPDATE of the parent's key or of the
	// scope column.
	for _, t := range tables.Writes {
		if !direct[t] {
			continue
		}
		c := changes[t]
		for _, sc := range schema.AllScopes() {
			if sc.Parent != t {
				continue
			}
			out = append(out, parentWrite(sc, c, schema, usable))
		}
	}
	// What the triggers those writes fire write, traced back to the scope
	// values of the rows the statement changed (triggers.go).
	own := map[string]ScopeWrite{}
	for _, w := range mergeScopeWrites(out) {
		own[w.Scope.Name()] = w
	}
	for _, ev := range evs {
		out = append(out, schema.triggerScopeWrites(ev, own, map[string]bool{})...)
	}
	named := map[string]bool{}
	for _, w := range out {
		named[w.Scope.Name()] = true
	}
	for _, t := range tables.Writes {
		for _, sc := range schema.Scopes(t) {
			if !direct[t] && !named[sc.Name()] {
				out = append(out, ScopeWrite{Scope: sc, Wide: true, Columns: []string{""}, Why: "written by a trigger, rows not attributed"})
			}
		}
	}
	return mergeScopeWrites(out), nil
}

func topStatement(tree any) map[string]any {
	m, _ := tree.(map[string]any)
	stmts, _ := m["stmts"].([]any)
	if len(stmts) != 1 {
		return nil
	}
	st, _ := stmts[0].(map[string]any)["stmt"].(map[string]any)
	return st
}

// writeNodes counts the statements that write, CTEs included: with more
// than one, rows are not attributed to statements and every scope is
// bumped wide.
func writeNodes(tree any) int {
	n := 0
	walk(tree, func(key string, _ map[string]any) bool {
		switch key {
		case "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt", "TruncateStmt":
			n++
		}
		return true
	})
	return n
}

// directChange analyses the top-level INSERT, UPDATE or DELETE.
func directChange(top map[string]any, kind string, schema *Schema, params map[int]string, ctes map[string]bool) *rowChange {
	for key, v := range top {
		node, _ := v.(map[string]any)
		rel, ok := node["relation"].(map[string]any)
		if !ok {
			return nil
		}
		c := &rowChange{table: schema.parent(relName(rel)), known: map[string][]valueRef{}, paths: map[string][]valueRef{}, why: map[string]string{}}
		var s *sel
		switch key {
		case "InsertStmt":
			insertValues(c, node, kind, schema, params)
		case "UpdateStmt", "DeleteStmt":
			s = newSel(schema, params, nil)
			s.addRangeVar(rel, ctes)
			extra := "fromClause"
			if key == "DeleteStmt" {
				extra = "usingClause"
			} else {
				targets, _ := node["targetList"].([]any)
				for _, tg := range targets {
					rt, _ := tg.(map[string]any)["ResTarget"].(map[string]any)
					name, _ := rt["name"].(string)
					c.updated = append(c.updated, name)
				}
				sort.Strings(c.updated)
			}
			from, _ := node[extra].([]any)
			for _, f := range from {
				s.addFrom(f, ctes)
			}
			s.addConjuncts(node["whereClause"])
			s.finish()
			for _, sc := range schema.Scopes(c.table) {
				vals := s.scopePins(0, sc)
				if len(vals) == 0 {
					continue
				}
				if sc.IsPath() {
					c.paths[sc.Name()] = vals
				} else {
					c.known[sc.Column] = vals
				}
				c.why[sc.Name()] = "WHERE"
			}
			// A parent's scope columns, for its children's path scopes.
			for _, col := range schema.Columns[c.table] {
				if _, ok := c.known[col]; !ok {
					if vals := s.pins(0, col, false); len(vals) > 0 {
						c.known[col] = vals
					}
				}
			}
		default:
			return nil
		}
		if kind == ":one" || kind == ":many" {
			returning(c, node, schema)
		}
		return c
	}
	return nil
}

// insertValues takes the parameters of INSERT ... VALUES, column by
// column; an ON CONFLICT DO UPDATE may change an existing row whose
// values differ, so only RETURNING counts then.
func insertValues(c *rowChange, node map[string]any, kind string, schema *Schema, params map[int]string) {
	if oc, ok := node["onConflictClause"].(map[string]any); ok && oc["action"] == "ONCONFLICT_UPDATE" {
		return
	}
	sel, _ := node["selectStmt"].(map[string]any)["SelectStmt"].(map[string]any)
	lists, _ := sel["valuesLists"].([]any)
	if len(lists) == 0 {
		return
	}
	var cols []string
	targets, _ := node["cols"].([]any)
	for _, tg := range targets {
		rt, _ := tg.(map[string]any)["ResTarget"].(map[string]any)
		name, _ := rt["name"].(string)
		cols = append(cols, name)
	}
	if len(cols) == 0 {
		cols = schema.Columns[c.table]
	}
	s := newSel(schema, params, nil)
	for i, col := range cols {
		var vals []valueRef
		for _, l := range lists {
			items, _ := l.(map[string]any)["List"].(map[string]any)["items"].([]any)
			if i >= len(items) {
				vals = nil
				break
			}
			p, ok := s.param(items[i])
			if !ok {
				vals = nil
				break
			}
			vals = append(vals, valueRef{Param: p, PerRow: kind == ":copyfrom"})
		}
		if len(vals) > 0 {
			c.known[col] = vals
			c.why[c.table+"."+col] = "VALUES"
		}
	}
}

// returning adds the values of RETURNING columns of the target table, for
// the columns no parameter gave.
func returning(c *rowChange, node map[string]any, schema *Schema) {
	alias := ""
	if rel, ok := node["relation"].(map[string]any); ok {
		if a, ok := rel["alias"].(map[string]any); ok {
			alias, _ = a["aliasname"].(string)
		}
	}
	list, _ := node["returningList"].([]any)
	for _, it := range list {
		rt, _ := it.(map[string]any)["ResTarget"].(map[string]any)
		cr, ok := rt["val"].(map[string]any)["ColumnRef"].(map[string]any)
		if !ok {
			continue
		}
		parts, star := columnRefParts(cr)
		if star {
			for _, col := range schema.Columns[c.table] {
				addReturned(c, col, col)
			}
			continue
		}
		if len(parts) == 2 && parts[0] != alias && parts[0] != c.table {
			continue
		}
		if len(parts) == 0 || len(parts) > 2 {
			continue
		}
		col := parts[len(parts)-1]
		if !schema.hasColumn(c.table, col) {
			continue
		}
		out, _ := rt["name"].(string)
		if out == "" {
			out = col
		}
		addReturned(c, col, out)
	}
}

func addReturned(c *rowChange, col, field string) {
	if _, ok := c.known[col]; ok {
		return
	}
	c.known[col] = []valueRef{{Field: field}}
	c.why[c.table+"."+col] = "RETURNING"
}

// cascade adds the rows an ON DELETE CASCADE removes from child tables,
// with the values they are known to carry: the parent's.
func cascade(parent *rowChange, schema *Schema, changes map[string]*rowChange, tables Tables) {
	if parent.updated != nil {
		return // an UPDATE's cascades (ON UPDATE) stay wide
	}
	for _, fk := range schema.FKs {
		if fk.Parent != parent.table || fk.OnDelete != "c" || changes[fk.Child] != nil || !contains(tables.Writes, fk.Child) {
			continue
		}
		child := &rowChange{table: fk.Child, known: map[string][]valueRef{}, paths: map[string][]valueRef{}, why: map[string]string{}}
		if v := parent.known[fk.ParentCol]; len(v) > 0 {
			child.known[fk.ChildCol] = v
			child.why[fk.Child+"."+fk.ChildCol] = "cascade from " + parent.table + "." + fk.ParentCol
		}
		for _, sc := range schema.Scopes(fk.Child) {
			if sc.IsPath() && sc.Column == fk.ChildCol && sc.Parent == parent.table {
				if v := parent.known[sc.ParentColumn]; len(v) > 0 {
					child.paths[sc.Name()] = v
					child.why[sc.Name()] = "cascade from " + parent.table + "." + sc.ParentColumn
				}
			}
		}
		changes[fk.Child] = child
		cascade(child, schema, changes, tables)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// columnsOf are the slots a change bumps: the row slot, or the updated
// columns.
func (c *rowChange) columnsOf() []string {
	if c == nil || c.updated == nil {
		return []string{""}
	}
	return c.updated
}

// scopeWrite is what change c does to scope sc of its own table.
func scopeWrite(sc ScopeDef, c *rowChange, schema *Schema, usable usableFunc) ScopeWrite {
	w := ScopeWrite{Scope: sc, Columns: c.columnsOf()}
	switch {
	case c == nil:
		w.Wide, w.Why = true, "rows not attributed (several writes, or a statement kind not analysed)"
		w.Columns = []string{""}
	case c.updated != nil && contains(c.updated, sc.Column):
		w.Wide, w.Why, w.Columns = true, "updates "+sc.Column+", moving rows between values", []string{""}
	default:
		vals := c.known[sc.Column]
		why := c.why[sc.Table+"."+sc.Column]
		if sc.IsPath() {
			vals, why = c.paths[sc.Name()], c.why[sc.Name()]
		}
		if c.why[sc.Name()] != "" && !sc.IsPath() {
			why = c.why[sc.Name()]
		}
		if !allUsable(vals, schema.valueType(sc), usable) {
			w.Wide, w.Why = true, "its rows' "+scopeValueName(sc)+" is not known"
			return w
		}
		w.Values, w.Why = vals, why
	}
	return w
}

// parentWrite is what change c of a parent table does to a child's path
// scope sc.
func parentWrite(sc ScopeDef, c *rowChange, schema *Schema, usable usableFunc) ScopeWrite {
	w := ScopeWrite{Scope: sc, Columns: []string{""}}
	switch {
	case c == nil:
		w.Wide, w.Why = true, "rows of "+sc.Parent+" not attributed"
	case c.updated != nil:
		if !contains(c.updated, sc.ParentKey) && !contains(c.updated, sc.ParentColumn) {
			return ScopeWrite{} // the path is unchanged
		}
		w.Wide, w.Why = true, "updates "+sc.Parent+"."+sc.ParentColumn+" or its key"
	default:
		vals := c.known[sc.ParentColumn]
		if !allUsable(vals, schema.valueType(sc), usable) {
			w.Wide, w.Why = true, sc.Parent+" rows' "+sc.ParentColumn+" is not known"
			return w
		}
		w.Values, w.Why = vals, sc.Parent+" rows added or removed"
	}
	return w
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
	by := map[string]*ScopeWrite{}
	var order []string
	for _, w := range ws {
		if w.Scope.Table == "" {
			continue
		}
		n := w.Scope.Name()
		cur, ok := by[n]
		if !ok {
			cp := w
			by[n] = &cp
			order = append(order, n)
			continue
		}
		for _, c := range w.Columns {
			if !contains(cur.Columns, c) {
				cur.Columns = append(cur.Columns, c)
			}
		}
		switch {
		case cur.Wide:
		case w.Wide:
			cur.Wide, cur.Values, cur.Why = true, nil, w.Why
		default:
			for _, v := range w.Values {
				if !containsValue(cur.Values, v) {
					cur.Values = append(cur.Values, v)
				}
			}
			if !strings.Contains(cur.Why, w.Why) {
				cur.Why = strings.Join([]string{cur.Why, w.Why}, "; ")
			}
		}
	}
	sort.Strings(order)
	out := make([]ScopeWrite, 0, len(order))
	for _, n := range order {
		w := by[n]
		sort.Strings(w.Columns)
		out = append(out, *w)
	}
	return out
}

func containsValue(list []valueRef, v valueRef) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
