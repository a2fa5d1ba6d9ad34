package dbgen

import (
	"slices"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Version slots make invalidation column-aware. Every table has a slot
// named after it, which every read of the table captures and which every
// write that adds or removes rows (INSERT, DELETE, COPY, TRUNCATE, MERGE,
// cascades) bumps. An UPDATE bumps only "table#column" for each column it
// sets, and a read captures the slots of the columns it references: an
// UPDATE cannot change which rows exist, so a read that references none of
// the updated columns — not in its select list, not in WHERE, JOIN, GROUP
// BY or anywhere else — returns the same result before and after it.
// Whenever the references cannot be pinned down (SELECT *, a whole-row
// reference, JOIN ... USING, NATURAL JOIN, a table whose columns the
// schema does not list) the read captures every column slot of the table.

// SlotSep separates a table from a column in a slot name.
const SlotSep = "#"

// slotNames are the slot of prefix (a table or a scope) and those of its
// columns cols.
func slotNames(prefix string, cols []string) []string {
	out := []string{prefix}
	for _, c := range cols {
		out = append(out, prefix+SlotSep+c)
	}
	return out
}

// Slots derives the version slots q reads and writes; tables are its
// Analyze result. Unpinned, a read depends on the slots of its tables and
// columns: those of ReadScopes with no usable value.
//
// Tables written only through UPDATE targets of known columns (by the
// statement or by triggers) get column slots, every other written table
// (inserted, deleted, cascaded to) the whole-table slot. A table the
// statement writes through another kind of statement than an UPDATE (an
// upsert, a MERGE, a DELETE's foreign-key actions) gets the whole-table
// slot; a CTE's INSERT into an unrelated table leaves an UPDATE's columns
// as they are.
func Slots(q *parsed, tables Tables, schema *Schema) (reads, writes []string) {
	if len(tables.Writes) == 0 {
		return ReadScopes(q, tables, schema, func(valueRef, string) bool { return false }).Named, nil
	}
	// A table any write of which is not an UPDATE of known columns is
	// written whole; the others by the columns they set.
	whole, updated := map[string]bool{}, map[string][]string{}
	for _, op := range q.ops {
		if _, ok := op.stmt.(*pg_query.UpdateStmt); !ok {
			schema.markWithChildren(schema.parent(relName(op.rel)), whole)
		}
	}
	// What the statement writes, and what triggers write to other tables.
	evs := statementEvents(q, schema)
	direct := eventTables(evs)
	evs = append(evs, slices.DeleteFunc(schema.triggerEvents(evs, map[string]bool{}), func(ev tableEvent) bool { return direct[ev.table] })...)
	for _, ev := range evs {
		if ev.kind != "UPDATE" || ev.columns == nil || slices.ContainsFunc(ev.columns, func(c string) bool { return !schema.hasColumn(ev.table, c) }) {
			whole[ev.table] = true
		}
		updated[ev.table] = union(updated[ev.table], ev.columns...)
	}
	for _, t := range tables.Writes {
		if whole[t] || len(updated[t]) == 0 {
			writes = append(writes, t)
		} else {
			writes = append(writes, slotNames(t, updated[t])[1:]...) // the column slots
		}
	}
	sort.Strings(writes)
	return nil, writes
}

// readColumns are, per table read, the columns the statement references
// anywhere, sorted; every column when it cannot tell (SELECT *, a
// whole-row reference, JOIN USING, NATURAL JOIN).
func readColumns(q *parsed, tables Tables, schema *Schema) map[string][]string {
	// How the statement refers to each table it reads — its alias, or its
	// name (plain and schema-qualified) — to the tables.
	refs := map[string][]string{}
	for _, rv := range q.rels {
		if t, ok := schema.relTable(rv, q.ctes); ok {
			for _, k := range refKeys(rv) {
				refs[k] = union(refs[k], t)
			}
		}
	}
	starAll := q.usingJoin
	star, slots := map[string]bool{}, map[string]bool{}
	for _, cr := range q.colRefs {
		parts, isStar := columnRefParts(cr)
		switch {
		case parts == nil || len(parts) > 3 || len(parts) == 3 && isStar:
			starAll = true // SELECT *, or a shape this code does not know
		case len(parts) == 1 && !isStar:
			// A bare name is a column of any table that has one, or a
			// whole-row reference to a table or alias.
			for _, t := range tables.Reads {
				slots[t+SlotSep+parts[0]] = true
			}
			fallthrough
		case isStar:
			for _, t := range refs[strings.Join(parts, ".")] {
				star[t] = true
			}
		default: // table.column or schema.table.column
			for _, t := range refs[strings.Join(parts[:len(parts)-1], ".")] {
				slots[t+SlotSep+last(parts)] = true
			}
		}
	}
	out := map[string][]string{}
	for _, t := range tables.Reads {
		out[t] = slices.DeleteFunc(slices.Clone(schema.Columns[t]), func(c string) bool { return !starAll && !star[t] && !slots[t+SlotSep+c] })
		slices.Sort(out[t])
	}
	return out
}

func (s *Schema) hasColumn(t, c string) bool { return slices.Contains(s.Columns[t], c) }

// markWithChildren marks table and, through foreign keys, every table
// whose rows a write of it may change by a foreign-key action.
func (s *Schema) markWithChildren(table string, marked map[string]bool) {
	if marked[table] {
		return
	}
	marked[table] = true
	for _, fk := range s.FKs {
		if fk.Parent == table {
			s.markWithChildren(fk.Child, marked)
		}
	}
}
