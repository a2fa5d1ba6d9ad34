package dbgen

import "slices"

// Events: what a statement's writes do to each table, as that table's
// triggers see them, and what the triggers they fire write in turn.

// firedWrites are the trigger writes an event runs.
func (s *Schema) firedWrites(ev tableEvent) []TriggerWrite {
	var out []TriggerWrite
	for _, t := range s.Triggers {
		if t.Table == ev.table && t.fires(ev) {
			// Its statements that run under ev's TG_OP.
			out = append(out, slices.DeleteFunc(slices.Clone(t.writes), func(w TriggerWrite) bool {
				return w.When != nil && !slices.Contains(w.When, ev.kind)
			})...)
		}
	}
	return out
}

// fires reports whether t fires on ev: an UPDATE OF fires when ev sets
// one of its columns, or columns not known.
func (t Trigger) fires(ev tableEvent) bool {
	return slices.Contains(t.Events, ev.kind) && (ev.kind != "UPDATE" || len(t.Columns) == 0 || ev.columns == nil ||
		slices.ContainsFunc(ev.columns, func(c string) bool { return slices.Contains(t.Columns, c) }))
}

// statementEvents are the writes a statement makes, by table, with the
// rows its foreign keys' actions change.
func statementEvents(q *parsed, schema *Schema) []tableEvent {
	var out []tableEvent
	for _, op := range q.ops {
		if t, ok := schema.relTable(op.rel, q.ctes); ok {
			ev := tableEvent{table: t, kind: op.kind, columns: op.columns, cascade: op.cascade}
			out = append(out, schema.cascadeEvents(ev, map[string]bool{})...)
		}
	}
	return out
}

func eventTables(evs []tableEvent) map[string]bool {
	out := map[string]bool{}
	for _, ev := range evs {
		out[ev.table] = true
	}
	return out
}

// cascadeEvents is ev and what its foreign-key actions do to the
// referencing tables: a delete cascades as deletes (or sets the column,
// an UPDATE), an update of a key as updates, and TRUNCATE ... CASCADE
// empties them.
func (s *Schema) cascadeEvents(ev tableEvent, seen map[string]bool) []tableEvent {
	if seen[ev.key()] {
		return nil
	}
	seen[ev.key()] = true
	out := []tableEvent{ev}
	switch ev.kind {
	case "DELETE":
		for _, child := range s.OnDelete[ev.table] {
			kinds := []tableEvent{{table: child, kind: "DELETE"}, {table: child, kind: "UPDATE"}}
			for _, fk := range s.FKs {
				switch {
				case fk.Child != child || fk.Parent != ev.table:
				case fk.OnDelete == "c":
					kinds = []tableEvent{{table: child, kind: "DELETE"}}
				default:
					kinds = []tableEvent{{table: child, kind: "UPDATE", columns: []string{fk.ChildCol}}}
				}
			}
			for _, k := range kinds {
				out = append(out, s.cascadeEvents(k, seen)...)
			}
		}
	case "UPDATE":
		for _, child := range s.OnUpdate[ev.table] {
			out = append(out, s.cascadeEvents(tableEvent{table: child, kind: "UPDATE"}, seen)...)
		}
	case "TRUNCATE":
		if ev.cascade {
			for _, child := range s.OnDelete[ev.table] {
				out = append(out, s.cascadeEvents(tableEvent{table: child, kind: "TRUNCATE", cascade: true}, seen)...)
			}
		}
	}
	return out
}

// triggerEvents are the writes the triggers fired by evs make, and theirs,
// with their cascades.
func (s *Schema) triggerEvents(evs []tableEvent, seen map[string]bool) []tableEvent {
	var out []tableEvent
	for _, ev := range evs {
		if !seen[ev.key()] {
			seen[ev.key()] = true
			for _, w := range s.firedWrites(ev) {
				ces := s.cascadeEvents(w.tableEvent, map[string]bool{})
				out = append(append(out, ces...), s.triggerEvents(ces, seen)...)
			}
		}
	}
	return out
}

// triggerScopeWrites derives what the triggers fired by ev do to the
// scopes of the tables they write, from what ev's statement does to the
// scopes of ev's table (own), and recursively through the triggers of
// those tables.
func (s *Schema) triggerScopeWrites(ev tableEvent, own []ScopeWrite, seen map[string]bool) []ScopeWrite {
	if seen[ev.key()] {
		return nil
	}
	seen[ev.key()] = true
	var out []ScopeWrite
	for _, tw := range s.firedWrites(ev) {
		var mine []ScopeWrite
		for _, sc := range s.Scopes(tw.table) {
			mine = append(mine, s.tracedScopeWrite(ev, tw, sc, own))
		}
		out = append(out, mine...)
		// Rows of a parent change what its children's path scopes hold.
		for _, sc := range s.AllScopes() {
			if sc.Parent == tw.table && (tw.columns == nil || slices.Contains(tw.columns, sc.ParentKey) || slices.Contains(tw.columns, sc.ParentColumn)) {
				out = append(out, wideWrite(sc, "trigger "+tw.Trigger+" writes rows of "+tw.table))
			}
		}
		out = append(out, s.triggerScopeWrites(tw.tableEvent, mine, seen)...)
	}
	return out
}

// tracedScopeWrite is what trigger write tw, fired by ev, does to scope sc
// of its table: the values ev's statement bumps in the scope of ev's table
// that tw's rows were traced to, else wide.
func (s *Schema) tracedScopeWrite(ev tableEvent, tw TriggerWrite, sc ScopeDef, own []ScopeWrite) ScopeWrite {
	w := ScopeWrite{Scope: sc, Columns: tw.columns}
	if w.Columns == nil {
		w.Columns = []string{""}
	}
	wide := func(why string) ScopeWrite {
		w.Wide, w.Why = true, "trigger "+tw.Trigger+": "+why
		return w
	}
	src, traced := tw.From[sc.Column]
	from := ScopeDef{Table: ev.table, Column: src}
	switch {
	case slices.Contains(tw.columns, sc.Column):
		return wide("updates " + sc.Column + ", moving rows between values")
	case !traced:
		return wide("its rows' " + scopeValueName(sc) + " is not traced to " + ev.table)
	case !sc.IsPath():
	case slices.ContainsFunc(s.FKs, func(fk ForeignKey) bool {
		return fk.Child == ev.table && fk.ChildCol == src && fk.Parent == sc.Parent && fk.ParentCol == sc.ParentKey
	}):
		// Both columns reference the same parent key: the same path.
		from.Parent, from.ParentKey, from.ParentColumn = sc.Parent, sc.ParentKey, sc.ParentColumn
	case ev.table == sc.Parent && src == sc.ParentKey:
		// The trigger's table is the parent: its own scope column.
		from.Column = sc.ParentColumn
	default:
		return wide(sc.Column + " comes from " + ev.table + "." + src + ", which has no scope " + scopeValueName(sc))
	}
	i := slices.IndexFunc(own, func(o ScopeWrite) bool { return o.Scope.Name() == from.Name() })
	switch {
	case i < 0:
		return wide(sc.Column + " comes from " + ev.table + "." + src + ", whose scope " + from.Name() + " the write does not name")
	case own[i].Wide:
		return wide(sc.Column + " from " + from.Name() + ", bumped wide (" + own[i].Why + ")")
	}
	w.Values, w.Through = own[i].Values, own[i].Through
	w.Why = "trigger " + tw.Trigger + ": " + sc.Column + " from " + from.Name() + " (" + own[i].Why + ")"
	return w
}

// TriggerTables are the tables a write of any kind to table may change
// through triggers, transitively, other than table itself.
func (s *Schema) TriggerTables(table string) []string {
	var evs []tableEvent
	for _, k := range []string{"INSERT", "UPDATE", "DELETE", "TRUNCATE"} {
		evs = append(evs, tableEvent{table: table, kind: k})
	}
	set := eventTables(s.triggerEvents(evs, map[string]bool{}))
	delete(set, table)
	return sortedKeys(set)
}
