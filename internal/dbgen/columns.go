package dbgen

import (
	"regexp"
	"sort"
	"strings"
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

// sqlcParam matches sqlc's @name parameters, which PostgreSQL would parse
// as the prefix operator @ applied to a column called name.
var sqlcParam = regexp.MustCompile(`@([A-Za-z_][A-Za-z0-9_]*)`)

// Slots derives the version slots sql reads and writes; tables are its
// Analyze result.
func Slots(sql string, tables Tables, schema *Schema) (reads, writes []string, err error) {
	tree, err := parseTree(sqlcParam.ReplaceAllString(sql, "$$1"))
	if err != nil {
		return nil, nil, err
	}
	if len(tables.Writes) > 0 {
		return nil, writeSlots(tree, tables, schema), nil
	}
	return readSlots(tree, tables, schema), nil, nil
}

func writeSlots(tree any, tables Tables, schema *Schema) []string {
	// Tables written only through UPDATE targets get column slots;
	// every other written table (inserted, deleted, cascaded to) the
	// whole-table slot.
	updated := map[string]map[string]bool{}
	whole := map[string]bool{}
	for _, t := range tables.Writes {
		whole[t] = true
	}
	onlyUpdated := map[string]bool{}
	walk(tree, func(key string, v map[string]any) bool {
		if key != "UpdateStmt" {
			return true
		}
		rel, ok := v["relation"].(map[string]any)
		if !ok {
			return true
		}
		t := schema.parent(relName(rel))
		if updated[t] == nil {
			updated[t] = map[string]bool{}
		}
		targets, _ := v["targetList"].([]any)
		for _, tgt := range targets {
			rt, _ := tgt.(map[string]any)["ResTarget"].(map[string]any)
			name, _ := rt["name"].(string)
			if name == "" || !schema.hasColumn(t, name) {
				updated[t] = nil // unknown column: whole table
				break
			}
			updated[t][name] = true
		}
		return true
	})
	// A table is only-updated when the UPDATE targets name it and no other
	// kind of write (or cascade) does.
	other := map[string]bool{}
	walk(tree, func(key string, v map[string]any) bool {
		switch key {
		case "InsertStmt", "DeleteStmt", "MergeStmt", "CopyStmt", "TruncateStmt":
			other["any"] = true
		}
		return true
	})
	for t, cols := range updated {
		if cols != nil && !other["any"] && !cascadesTo(t, tables.Writes, schema) {
			onlyUpdated[t] = true
		}
	}
	// Tables only triggers write: column slots when every write of them is
	// an UPDATE of known columns.
	var evs []tableEvent
	if schema != nil {
		evs = statementEvents(tree, schema, cteNames(tree))
	}
	direct := map[string]bool{}
	for _, ev := range evs {
		direct[ev.table] = true
	}
	byTrigger := map[string]map[string]bool{}
	for _, ev := range schema.triggerEvents(evs) { // nil schema: no events
		if direct[ev.table] {
			continue
		}
		cols, seen := byTrigger[ev.table]
		switch {
		case seen && cols == nil:
		case ev.kind != "UPDATE" || ev.columns == nil:
			byTrigger[ev.table] = nil
		default:
			if cols == nil {
				cols = map[string]bool{}
				byTrigger[ev.table] = cols
			}
			for _, c := range ev.columns {
				cols[c] = true
			}
		}
	}
	for t, cols := range byTrigger {
		if cols != nil {
			updated[t], onlyUpdated[t] = cols, true
		}
	}
	var out []string
	for _, t := range tables.Writes {
		if onlyUpdated[t] {
			for c := range updated[t] {
				out = append(out, t+SlotSep+c)
			}
			continue
		}
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// cascadesTo reports whether t is written only because another written
// table's foreign keys cascade to it.
func cascadesTo(t string, written []string, schema *Schema) bool {
	if schema == nil {
		return false
	}
	for _, w := range written {
		for _, child := range append(append([]string{}, schema.OnUpdate[w]...), schema.OnDelete[w]...) {
			if child == t && w != t {
				return true
			}
		}
	}
	return false
}

func readSlots(tree any, tables Tables, schema *Schema) []string {
	ctes := cteNames(tree)
	// How queries refer to each read table: its alias, or its name.
	refs := map[string]map[string]bool{}
	addRef := func(ref, t string) {
		if refs[ref] == nil {
			refs[ref] = map[string]bool{}
		}
		refs[ref][t] = true
	}
	walk(tree, func(key string, v map[string]any) bool {
		if key != "RangeVar" {
			return true
		}
		t, ok := schema.relTable(v, ctes)
		if !ok {
			return true
		}
		if alias, ok := v["alias"].(map[string]any); ok {
			if a, _ := alias["aliasname"].(string); a != "" {
				addRef(a, t)
				return true
			}
		}
		n, _ := v["relname"].(string)
		addRef(n, t)
		addRef(relName(v), t)
		return true
	})
	starAll := false
	star := map[string]bool{}
	cols := map[string]map[string]bool{}
	addCol := func(t, c string) {
		if cols[t] == nil {
			cols[t] = map[string]bool{}
		}
		cols[t][c] = true
	}
	walk(tree, func(key string, v map[string]any) bool {
		switch key {
		case "JoinExpr":
			if using, _ := v["usingClause"].([]any); len(using) > 0 {
				starAll = true
			}
			if natural, _ := v["isNatural"].(bool); natural {
				starAll = true
			}
		case "ColumnRef":
			parts, isStar := columnRefParts(v)
			switch {
			case parts == nil && isStar:
				starAll = true
			case parts == nil:
				starAll = true // a shape this code does not know
			case len(parts) == 1 && isStar:
				for t := range refs[parts[0]] {
					star[t] = true
				}
			case len(parts) == 1:
				// A bare name is a column of any table that has one, or a
				// whole-row reference to a table or alias.
				for t := range refs[parts[0]] {
					star[t] = true
				}
				for _, t := range tables.Reads {
					if schema.hasColumn(t, parts[0]) {
						addCol(t, parts[0])
					}
				}
			case len(parts) == 2 && !isStar:
				for t := range refs[parts[0]] {
					addCol(t, parts[1])
				}
			case len(parts) == 2 && isStar:
				for t := range refs[parts[0]+"."+parts[1]] {
					star[t] = true
				}
			case len(parts) == 3 && !isStar:
				for t := range refs[parts[0]+"."+parts[1]] {
					addCol(t, parts[2])
				}
			default:
				starAll = true
			}
		}
		return true
	})
	var out []string
	for _, t := range tables.Reads {
		out = append(out, t)
		known := schema.columns(t)
		if starAll || star[t] || known == nil {
			for _, c := range known {
				out = append(out, t+SlotSep+c)
			}
			continue
		}
		for c := range cols[t] {
			if schema.hasColumn(t, c) {
				out = append(out, t+SlotSep+c)
			}
		}
	}
	sort.Strings(out)
	return out
}

// columnRefParts returns the dotted names of a ColumnRef and whether it
// ends in *; nil parts for a shape it does not understand.
func columnRefParts(v map[string]any) ([]string, bool) {
	fields, _ := v["fields"].([]any)
	var parts []string
	for i, f := range fields {
		m, _ := f.(map[string]any)
		if _, ok := m["A_Star"]; ok {
			if i != len(fields)-1 {
				return nil, false
			}
			return parts, true
		}
		s, _ := m["String"].(map[string]any)
		name, ok := s["sval"].(string)
		if !ok {
			return nil, false
		}
		parts = append(parts, name)
	}
	if len(parts) == 0 {
		return nil, false
	}
	return parts, false
}

func (s *Schema) columns(t string) []string {
	if s == nil {
		return nil
	}
	return s.Columns[t]
}

func (s *Schema) hasColumn(t, c string) bool {
	for _, x := range s.columns(t) {
		if x == c {
			return true
		}
	}
	return false
}

// TableOf is the table of a slot name.
func TableOf(slot string) string {
	t, _, _ := strings.Cut(slot, SlotSep)
	return t
}
