package dbgen

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Trigger writes. A query that writes a table also writes whatever the
// table's triggers write: an open of an email (an UPDATE of emails) makes
// the statement trigger on emails update campaign_email_counts, and the
// cached summary reads campaign_email_counts. The generator reads the
// migrations' CREATE TRIGGER statements and the plpgsql bodies of their
// functions (pg_query's PL/pgSQL parser, each SQL statement in it parsed
// again), and for each statement of a function that writes a table W it
// traces W's scope columns back to the trigger's table T: W.col is set (an
// INSERT's column) or matched (an UPDATE's or DELETE's WHERE equality) from
// a column of a transition table (NEW TABLE / OLD TABLE), or of NEW / OLD
// in a row trigger, through CTEs, subqueries, UNION branches and GROUP BY
// keys. The rows such a statement changes then carry the T.col values of
// the rows the query changed, which the query's own analysis knows:
//
//	emails.campaign_id                    -> campaign_email_counts.campaign_id
//	emails.campaign_id>campaigns.user_id  -> campaign_email_counts.campaign_id>campaigns.user_id
//
// (the second because both columns reference campaigns.id). A trigger's
// IF TG_OP = '…' branches are followed, so an INSERT trigger is not
// charged with its function's DELETE branch. Whatever is not traced — an
// expression, a column of another table, a data-modifying CTE, an upsert —
// bumps W's scope wide; dynamic SQL (EXECUTE) and BEFORE/INSTEAD OF row
// triggers (which may change the rows the query writes) fail generation.

// Trigger is a CREATE TRIGGER of the migrations.
type Trigger struct {
	Name, Table, Function string
	// Events are INSERT, UPDATE, DELETE, TRUNCATE; Columns the UPDATE OF
	// list.
	Events  []string
	Columns []string
	Row     bool
	Before  bool // BEFORE or INSTEAD OF
	// NewTable and OldTable name the transition tables, "" when none.
	NewTable, OldTable string
}

// TriggerWrite is one statement of a trigger function that writes a table.
type TriggerWrite struct {
	Trigger string
	// Kind is INSERT, UPDATE, DELETE or TRUNCATE; Updated the columns an
	// UPDATE sets (nil for the others: rows added or removed).
	Kind    string
	Table   string
	Updated []string
	// When are the TG_OP values under which the statement runs (nil: any).
	When []string
	// From maps a scope column of Table to the column of the trigger's
	// table whose values the changed rows carry; a scope column missing
	// from it is not traced.
	From map[string]string
}

// tableEvent is a write to a table as its triggers see it.
type tableEvent struct {
	table   string
	kind    string   // INSERT, UPDATE, DELETE, TRUNCATE
	columns []string // UPDATE: the columns set; nil when not known
}

func (e tableEvent) key() string { return e.table + ":" + e.kind + ":" + strings.Join(e.columns, ",") }

// trigger bits of pg_query's CreateTrigStmt (PostgreSQL's TRIGGER_TYPE_*).
const (
	trigBefore   = 1 << 1
	trigInsert   = 1 << 2
	trigDelete   = 1 << 3
	trigUpdate   = 1 << 4
	trigTruncate = 1 << 5
	trigInstead  = 1 << 6
)

// readTriggers records the functions and triggers of one migration, and
// forgets the triggers it drops.
func (s *Schema) readTriggers(src string, tree any) {
	m, _ := tree.(map[string]any)
	stmts, _ := m["stmts"].([]any)
	for _, st := range stmts {
		raw, _ := st.(map[string]any)
		stmt, _ := raw["stmt"].(map[string]any)
		switch {
		case stmt["CreateFunctionStmt"] != nil:
			fn := stmt["CreateFunctionStmt"].(map[string]any)
			names := stringList(fn["funcname"])
			if len(names) == 0 {
				continue
			}
			loc, _ := raw["stmt_location"].(float64)
			n, _ := raw["stmt_len"].(float64)
			text := src[int(loc):]
			if n > 0 {
				text = src[int(loc) : int(loc)+int(n)]
			}
			s.functions[names[len(names)-1]] = text
		case stmt["CreateTrigStmt"] != nil:
			s.addTrigger(stmt["CreateTrigStmt"].(map[string]any))
		case stmt["DropStmt"] != nil:
			d := stmt["DropStmt"].(map[string]any)
			if d["removeType"] != "OBJECT_TRIGGER" {
				continue
			}
			objs, _ := d["objects"].([]any)
			for _, o := range objs {
				om, _ := o.(map[string]any)
				list, _ := om["List"].(map[string]any)
				parts := stringList(list["items"])
				if len(parts) >= 2 {
					s.dropTrigger(s.parent(parts[len(parts)-2]), parts[len(parts)-1])
				}
			}
		}
	}
}

func (s *Schema) addTrigger(v map[string]any) {
	rel, _ := v["relation"].(map[string]any)
	fn := stringList(v["funcname"])
	t := Trigger{Table: s.parent(relName(rel)), Columns: stringList(v["columns"])}
	t.Name, _ = v["trigname"].(string)
	if len(fn) > 0 {
		t.Function = fn[len(fn)-1]
	}
	t.Row, _ = v["row"].(bool)
	timing, _ := v["timing"].(float64)
	t.Before = int(timing)&(trigBefore|trigInstead) != 0
	events, _ := v["events"].(float64)
	for _, e := range []struct {
		bit  int
		name string
	}{{trigInsert, "INSERT"}, {trigUpdate, "UPDATE"}, {trigDelete, "DELETE"}, {trigTruncate, "TRUNCATE"}} {
		if int(events)&e.bit != 0 {
			t.Events = append(t.Events, e.name)
		}
	}
	rels, _ := v["transitionRels"].([]any)
	for _, r := range rels {
		tt, _ := r.(map[string]any)["TriggerTransition"].(map[string]any)
		name, _ := tt["name"].(string)
		if isNew, _ := tt["isNew"].(bool); isNew {
			t.NewTable = name
		} else {
			t.OldTable = name
		}
	}
	s.dropTrigger(t.Table, t.Name)
	s.Triggers = append(s.Triggers, t)
}

func (s *Schema) dropTrigger(table, name string) {
	out := s.Triggers[:0]
	for _, t := range s.Triggers {
		if t.Table != table || t.Name != name {
			out = append(out, t)
		}
	}
	s.Triggers = out
}

// analyzeTriggers derives every trigger's writes, once the migrations
// read so far define its function.
func (s *Schema) analyzeTriggers() error {
	s.triggerWrites = map[string][]TriggerWrite{}
	for _, t := range s.Triggers {
		ws, err := s.analyzeTrigger(t)
		if err != nil {
			return fmt.Errorf("trigger %s on %s: %w", t.Name, t.Table, err)
		}
		s.triggerWrites[t.Table+"."+t.Name] = ws
	}
	return nil
}

func (s *Schema) analyzeTrigger(t Trigger) ([]TriggerWrite, error) {
	src, ok := s.functions[t.Function]
	if !ok {
		return nil, fmt.Errorf("runs %s(), which the migrations do not define", t.Function)
	}
	js, err := pg_query.ParsePlPgSqlToJSON(src)
	if err != nil {
		return nil, fmt.Errorf("parse the PL/pgSQL of %s(): %w", t.Function, err)
	}
	var body any
	if err := json.Unmarshal([]byte(js), &body); err != nil {
		return nil, fmt.Errorf("decode the PL/pgSQL of %s(): %w", t.Function, err)
	}
	var out []TriggerWrite
	var ferr error
	var visit func(node any, when []string)
	visit = func(node any, when []string) {
		switch n := node.(type) {
		case []any:
			for _, c := range n {
				visit(c, when)
			}
		case map[string]any:
			keys := sortedKeys(n)
			for _, k := range keys {
				v := n[k]
				switch k {
				case "PLpgSQL_stmt_dynexecute", "PLpgSQL_stmt_dynfors":
					ferr = fmt.Errorf("%s() runs dynamic SQL (EXECUTE): what it writes cannot be known", t.Function)
					return
				case "PLpgSQL_stmt_if":
					visitIf(v.(map[string]any), when, visit)
					continue
				case "PLpgSQL_expr":
					e := v.(map[string]any)
					if mode, _ := e["parseMode"].(float64); mode != 0 {
						continue // an expression, not a statement: it writes nothing
					}
					q, _ := e["query"].(string)
					ws, err := s.triggerStatement(t, q)
					if err != nil {
						ferr = fmt.Errorf("%s(): %w", t.Function, err)
						return
					}
					for i := range ws {
						ws[i].When = when
					}
					out = append(out, ws...)
					continue
				}
				visit(v, when)
			}
		}
	}
	visit(body, nil)
	if ferr != nil {
		return nil, ferr
	}
	if t.Before && t.Row {
		// A BEFORE row trigger may rewrite NEW: the query's own analysis
		// of the rows it writes would no longer hold.
		if assigns(body) {
			return nil, fmt.Errorf("BEFORE/INSTEAD OF row trigger running %s() assigns variables: it may change the rows a query writes, which dbgen cannot follow", t.Function)
		}
	}
	return out, nil
}

// assigns reports whether a function body has an assignment statement.
func assigns(body any) bool {
	found := false
	walk(body, func(key string, _ map[string]any) bool {
		if key == "PLpgSQL_stmt_assign" {
			found = true
		}
		return !found
	})
	return found
}

// visitIf follows IF TG_OP = '…' THEN … ELSIF TG_OP = '…' … ELSE …,
// narrowing the events each branch runs under; any other condition keeps
// them as they are.
func visitIf(v map[string]any, when []string, visit func(any, []string)) {
	all := when
	if all == nil {
		all = []string{"INSERT", "UPDATE", "DELETE", "TRUNCATE"}
	}
	rest := all
	branch := func(cond any, body any) {
		op, ok := tgOpCondition(cond)
		if !ok {
			visit(body, when)
			return
		}
		if contains(rest, op) {
			visit(body, []string{op})
		}
		var left []string
		for _, e := range rest {
			if e != op {
				left = append(left, e)
			}
		}
		rest = left
	}
	branch(v["cond"], v["then_body"])
	elsifs, _ := v["elsif_list"].([]any)
	for _, e := range elsifs {
		ei, _ := e.(map[string]any)["PLpgSQL_if_elsif"].(map[string]any)
		branch(ei["cond"], ei["stmts"])
	}
	if len(rest) > 0 {
		visit(v["else_body"], rest)
	}
}

// tgOpCondition recognises TG_OP = 'X'.
func tgOpCondition(cond any) (string, bool) {
	e, _ := cond.(map[string]any)["PLpgSQL_expr"].(map[string]any)
	q, _ := e["query"].(string)
	tree, err := parseTree("SELECT " + q)
	if err != nil {
		return "", false
	}
	sel, _ := topStatement(tree)["SelectStmt"].(map[string]any)
	targets, _ := sel["targetList"].([]any)
	if len(targets) != 1 {
		return "", false
	}
	rt, _ := targets[0].(map[string]any)["ResTarget"].(map[string]any)
	ae, _ := rt["val"].(map[string]any)["A_Expr"].(map[string]any)
	if ae == nil || ae["kind"] != "AEXPR_OP" || !isEqualsOp(ae["name"]) {
		return "", false
	}
	cr, _ := ae["lexpr"].(map[string]any)["ColumnRef"].(map[string]any)
	parts, _ := columnRefParts(cr)
	c, _ := ae["rexpr"].(map[string]any)["A_Const"].(map[string]any)
	sv, _ := c["sval"].(map[string]any)
	op, _ := sv["sval"].(string)
	if len(parts) != 1 || !strings.EqualFold(parts[0], "tg_op") || op == "" {
		return "", false
	}
	return op, true
}

// triggerStatement analyses one SQL statement of a trigger function.
func (s *Schema) triggerStatement(t Trigger, q string) ([]TriggerWrite, error) {
	tree, err := parseTree(q)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", q, err)
	}
	top := topStatement(tree)
	var out []TriggerWrite
	walk(tree, func(key string, v map[string]any) bool {
		var kind string
		switch key {
		case "InsertStmt":
			kind = "INSERT"
		case "UpdateStmt":
			kind = "UPDATE"
		case "DeleteStmt":
			kind = "DELETE"
		case "MergeStmt":
			kind = "MERGE"
		case "TruncateStmt":
			rels, _ := v["relations"].([]any)
			for _, r := range rels {
				if rv, ok := r.(map[string]any)["RangeVar"].(map[string]any); ok {
					out = append(out, TriggerWrite{Trigger: t.Name, Kind: "TRUNCATE", Table: s.parent(relName(rv))})
				}
			}
			return false
		default:
			return true
		}
		rel, _ := v["relation"].(map[string]any)
		w := TriggerWrite{Trigger: t.Name, Kind: kind, Table: s.parent(relName(rel)), From: map[string]string{}}
		if kind == "UPDATE" {
			w.Updated = targetNames(v["targetList"])
		}
		if kind == "MERGE" {
			// Rows inserted, updated and deleted: none traced.
			for _, k := range []string{"INSERT", "UPDATE", "DELETE"} {
				out = append(out, TriggerWrite{Trigger: t.Name, Kind: k, Table: w.Table, From: map[string]string{}})
			}
			return true
		}
		if topNode, _ := top[key].(map[string]any); topNode != nil && reflect.ValueOf(topNode).Pointer() == reflect.ValueOf(v).Pointer() {
			// Only the top-level statement is traced; a data-modifying
			// CTE's rows are not.
			s.traceWrite(t, key, v, &w)
		}
		out = append(out, w)
		return true
	})
	return out, nil
}

func targetNames(list any) []string {
	var out []string
	items, _ := list.([]any)
	for _, it := range items {
		rt, _ := it.(map[string]any)["ResTarget"].(map[string]any)
		if n, _ := rt["name"].(string); n != "" {
			out = appendNew(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// scopeColumns are the columns of table that scopes are made of.
func (s *Schema) scopeColumns(table string) []string {
	var out []string
	for _, sc := range s.Scopes(table) {
		out = appendNew(out, sc.Column)
	}
	return out
}

// traceWrite fills in w.From for the top-level INSERT, UPDATE or DELETE v.
func (s *Schema) traceWrite(t Trigger, key string, v map[string]any, w *TriggerWrite) {
	tr := &tracer{s: s, t: t}
	ctes := tr.withCTEs(v["withClause"], nil)
	switch key {
	case "InsertStmt":
		if oc, ok := v["onConflictClause"].(map[string]any); ok && oc["action"] == "ONCONFLICT_UPDATE" {
			return // an upsert may change existing rows: not traced
		}
		var cols []string
		if items, _ := v["cols"].([]any); len(items) > 0 {
			for _, it := range items {
				rt, _ := it.(map[string]any)["ResTarget"].(map[string]any)
				n, _ := rt["name"].(string)
				cols = append(cols, n)
			}
		} else {
			cols = s.Columns[w.Table]
		}
		sel, _ := v["selectStmt"].(map[string]any)["SelectStmt"].(map[string]any)
		for i, col := range cols {
			if !contains(s.scopeColumns(w.Table), col) {
				continue
			}
			if src, ok := tr.insertValue(sel, i, ctes); ok {
				w.From[col] = src
			}
		}
	case "UpdateStmt", "DeleteStmt":
		extra := "fromClause"
		if key == "DeleteStmt" {
			extra = "usingClause"
		}
		sc := &traceScope{ctes: ctes}
		rel, _ := v["relation"].(map[string]any)
		target := tr.rangeVar(rel, ctes)
		target.kind, target.isTarget = srcTable, true
		sc.sources = append(sc.sources, target)
		from, _ := v[extra].([]any)
		for _, f := range from {
			sc.sources = append(sc.sources, tr.fromItem(f, ctes)...)
		}
		for _, c := range conjuncts(v["whereClause"]) {
			col, src, ok := tr.matchTarget(sc, c)
			if ok && contains(s.scopeColumns(w.Table), col) {
				if _, done := w.From[col]; !done {
					w.From[col] = src
				}
			}
		}
	}
}

// insertValue traces the i-th column of an INSERT's rows: of every VALUES
// row (NEW.col of a row trigger), or of its SELECT.
func (tr *tracer) insertValue(sel map[string]any, i int, ctes map[string]cteDef) (string, bool) {
	lists, ok := sel["valuesLists"].([]any)
	if !ok {
		return tr.output(sel, "", i, ctes)
	}
	src := ""
	for _, l := range lists {
		items, _ := l.(map[string]any)["List"].(map[string]any)["items"].([]any)
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
	sel      map[string]any
	colnames []string
	ctes     map[string]cteDef
	isTarget bool
}

type cteDef struct {
	sel      map[string]any
	colnames []string
}

type traceScope struct {
	sources []source
	ctes    map[string]cteDef
}

// withCTEs adds a WITH clause's CTEs to those visible outside it.
func (tr *tracer) withCTEs(with any, outer map[string]cteDef) map[string]cteDef {
	out := map[string]cteDef{}
	for k, v := range outer {
		out[k] = v
	}
	w, _ := with.(map[string]any)
	if w == nil {
		return out
	}
	if rec, _ := w["recursive"].(bool); rec {
		// A recursive CTE's rows come from its own iterations: not traced.
		ctes, _ := w["ctes"].([]any)
		for _, c := range ctes {
			cte, _ := c.(map[string]any)["CommonTableExpr"].(map[string]any)
			name, _ := cte["ctename"].(string)
			out[name] = cteDef{}
		}
		return out
	}
	ctes, _ := w["ctes"].([]any)
	for _, c := range ctes {
		cte, _ := c.(map[string]any)["CommonTableExpr"].(map[string]any)
		name, _ := cte["ctename"].(string)
		sel, _ := cte["ctequery"].(map[string]any)["SelectStmt"].(map[string]any)
		out[name] = cteDef{sel: sel, colnames: stringList(cte["aliascolnames"])}
	}
	return out
}

func (tr *tracer) rangeVar(rv map[string]any, ctes map[string]cteDef) source {
	n, _ := rv["relname"].(string)
	ns, _ := rv["schemaname"].(string)
	src := source{names: []string{n}}
	if a, ok := rv["alias"].(map[string]any); ok {
		if an, _ := a["aliasname"].(string); an != "" {
			src.names = []string{an}
		}
	}
	switch def, isCTE := ctes[n]; {
	case ns == "" && isCTE:
		if def.sel == nil {
			src.kind = srcOpaque
		} else {
			src.kind, src.sel, src.colnames, src.ctes = srcSelect, def.sel, def.colnames, ctes
		}
	case ns == "" && n != "" && (n == tr.t.NewTable || n == tr.t.OldTable):
		src.kind, src.table = srcTransition, tr.t.Table
	default:
		src.kind, src.table = srcTable, tr.s.parent(relName(rv))
	}
	return src
}

func (tr *tracer) fromItem(item any, ctes map[string]cteDef) []source {
	m, _ := item.(map[string]any)
	if rv, ok := m["RangeVar"].(map[string]any); ok {
		return []source{tr.rangeVar(rv, ctes)}
	}
	if rs, ok := m["RangeSubselect"].(map[string]any); ok {
		a, _ := rs["alias"].(map[string]any)
		name, _ := a["aliasname"].(string)
		sel, _ := rs["subquery"].(map[string]any)["SelectStmt"].(map[string]any)
		if lat, _ := rs["lateral"].(bool); lat || sel == nil {
			return []source{{names: []string{name}, kind: srcOpaque}}
		}
		return []source{{names: []string{name}, kind: srcSelect, sel: sel, colnames: stringList(a["colnames"]), ctes: ctes}}
	}
	if j, ok := m["JoinExpr"].(map[string]any); ok {
		if _, aliased := j["alias"]; aliased {
			return []source{{kind: srcOpaque}}
		}
		return append(tr.fromItem(j["larg"], ctes), tr.fromItem(j["rarg"], ctes)...)
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
			return contains(src.colnames, col), true
		}
		names, ok := outputNames(src.sel)
		return ok && contains(names, col), ok
	}
	return false, false
}

// resolve finds the one source a column reference names.
func (tr *tracer) resolve(sc *traceScope, parts []string) (source, string, bool) {
	switch len(parts) {
	case 2:
		var found []source
		for _, src := range sc.sources {
			if contains(src.names, parts[0]) {
				found = append(found, src)
			}
		}
		if len(found) != 1 {
			return source{}, "", false
		}
		if has, known := tr.has(found[0], parts[1]); !has && known {
			return source{}, "", false
		}
		return found[0], parts[1], true
	case 1:
		var found []source
		for _, src := range sc.sources {
			has, known := tr.has(src, parts[0])
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
		return found[0], parts[0], true
	}
	return source{}, "", false
}

// value traces an expression to a column of the trigger's table.
func (tr *tracer) value(sc *traceScope, expr any) (string, bool) {
	m, _ := expr.(map[string]any)
	cr, ok := m["ColumnRef"].(map[string]any)
	if !ok {
		return "", false
	}
	parts, star := columnRefParts(cr)
	if star || len(parts) == 0 {
		return "", false
	}
	src, col, ok := tr.resolve(sc, parts)
	if !ok {
		// NEW.col and OLD.col of a row trigger, when no source is named so.
		if tr.t.Row && len(parts) == 2 && (strings.EqualFold(parts[0], "new") || strings.EqualFold(parts[0], "old")) && tr.s.hasColumn(tr.t.Table, parts[1]) {
			for _, s := range sc.sources {
				if contains(s.names, parts[0]) {
					return "", false
				}
			}
			return parts[1], true
		}
		return "", false
	}
	switch src.kind {
	case srcTransition:
		return col, true
	case srcSelect:
		idx := -1
		if len(src.colnames) > 0 {
			idx = indexOf(src.colnames, col)
			col = ""
		}
		return tr.output(src.sel, col, idx, src.ctes)
	}
	return "", false
}

// output traces a SELECT's output column (by name, or by position when
// name is ""), through set operations and its own FROM.
func (tr *tracer) output(sel map[string]any, name string, idx int, outer map[string]cteDef) (string, bool) {
	if sel == nil {
		return "", false
	}
	ctes := tr.withCTEs(sel["withClause"], outer)
	if op, _ := sel["op"].(string); op != "" && op != "SETOP_NONE" {
		l, _ := sel["larg"].(map[string]any)
		r, _ := sel["rarg"].(map[string]any)
		if name != "" {
			names, ok := outputNames(l)
			if !ok || indexOf(names, name) < 0 {
				return "", false
			}
			idx, name = indexOf(names, name), ""
		}
		lc, ok := tr.output(l, "", idx, ctes)
		if !ok {
			return "", false
		}
		if op == "SETOP_UNION" {
			rc, ok := tr.output(r, "", idx, ctes)
			if !ok || rc != lc {
				return "", false
			}
		}
		return lc, true // INTERSECT and EXCEPT return rows of the left side
	}
	if _, ok := sel["valuesLists"]; ok {
		return "", false
	}
	targets, _ := sel["targetList"].([]any)
	if name != "" {
		names, ok := outputNames(sel)
		if !ok {
			return "", false
		}
		idx = indexOf(names, name)
	}
	if idx < 0 || idx >= len(targets) {
		return "", false
	}
	sc := &traceScope{ctes: ctes}
	from, _ := sel["fromClause"].([]any)
	for _, f := range from {
		sc.sources = append(sc.sources, tr.fromItem(f, ctes)...)
	}
	rt, _ := targets[idx].(map[string]any)["ResTarget"].(map[string]any)
	return tr.value(sc, rt["val"])
}

// outputNames are a SELECT's output column names; false when one is not
// known (a * or an unnamed expression).
func outputNames(sel map[string]any) ([]string, bool) {
	if op, _ := sel["op"].(string); op != "" && op != "SETOP_NONE" {
		l, _ := sel["larg"].(map[string]any)
		return outputNames(l)
	}
	targets, _ := sel["targetList"].([]any)
	var out []string
	for _, t := range targets {
		rt, _ := t.(map[string]any)["ResTarget"].(map[string]any)
		if n, _ := rt["name"].(string); n != "" {
			out = append(out, n)
			continue
		}
		cr, ok := rt["val"].(map[string]any)["ColumnRef"].(map[string]any)
		if !ok {
			out = append(out, "?") // PostgreSQL names it ?column? or after a function
			continue
		}
		parts, star := columnRefParts(cr)
		if star || len(parts) == 0 {
			return nil, false
		}
		out = append(out, parts[len(parts)-1])
	}
	return out, true
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// matchTarget recognises a WHERE conjunct tying a column of the written
// table to a traced value: target.col = value, value = target.col, or
// target.col IN (SELECT value …).
func (tr *tracer) matchTarget(sc *traceScope, c map[string]any) (string, string, bool) {
	targetCol := func(expr any) (string, bool) {
		m, _ := expr.(map[string]any)
		cr, ok := m["ColumnRef"].(map[string]any)
		if !ok {
			return "", false
		}
		parts, star := columnRefParts(cr)
		if star {
			return "", false
		}
		src, col, ok := tr.resolve(sc, parts)
		return col, ok && src.isTarget
	}
	if e, ok := c["A_Expr"].(map[string]any); ok && e["kind"] == "AEXPR_OP" && isEqualsOp(e["name"]) {
		for _, pair := range [][2]any{{e["lexpr"], e["rexpr"]}, {e["rexpr"], e["lexpr"]}} {
			if col, ok := targetCol(pair[0]); ok {
				if src, ok := tr.value(sc, pair[1]); ok {
					return col, src, true
				}
			}
		}
	}
	if sl, ok := c["SubLink"].(map[string]any); ok && sl["subLinkType"] == "ANY_SUBLINK" && sl["operName"] == nil {
		col, ok := targetCol(sl["testexpr"])
		sub, _ := sl["subselect"].(map[string]any)["SelectStmt"].(map[string]any)
		if ok {
			if src, ok := tr.output(sub, "", 0, sc.ctes); ok {
				return col, src, true
			}
		}
	}
	return "", "", false
}

// firedWrites are the trigger writes an event runs.
func (s *Schema) firedWrites(ev tableEvent) []TriggerWrite {
	var out []TriggerWrite
	for _, t := range s.Triggers {
		if t.Table != ev.table || !t.fires(ev) {
			continue
		}
		for _, w := range s.triggerWrites[t.Table+"."+t.Name] {
			if w.When == nil || contains(w.When, ev.kind) {
				out = append(out, w)
			}
		}
	}
	return out
}

func (t Trigger) fires(ev tableEvent) bool {
	if !contains(t.Events, ev.kind) {
		return false
	}
	if ev.kind != "UPDATE" || len(t.Columns) == 0 || ev.columns == nil {
		return true
	}
	for _, c := range ev.columns {
		if contains(t.Columns, c) {
			return true
		}
	}
	return false
}

// event is what a trigger write does to its table, as that table's own
// triggers see it.
func (w TriggerWrite) event() tableEvent {
	return tableEvent{table: w.Table, kind: w.Kind, columns: w.Updated}
}

// statementEvents are the writes a statement makes, by table, with the
// rows its foreign keys' actions change.
func statementEvents(tree any, schema *Schema, ctes map[string]bool) []tableEvent {
	var out []tableEvent
	add := func(ev tableEvent) { out = append(out, schema.cascadeEvents(ev, map[string]bool{})...) }
	name := func(rel map[string]any) (string, bool) { return schema.relTable(rel, ctes) }
	walk(tree, func(key string, v map[string]any) bool {
		rel, _ := v["relation"].(map[string]any)
		switch key {
		case "InsertStmt":
			if n, ok := name(rel); ok {
				add(tableEvent{table: n, kind: "INSERT"})
				if oc, ok := v["onConflictClause"].(map[string]any); ok && oc["action"] == "ONCONFLICT_UPDATE" {
					add(tableEvent{table: n, kind: "UPDATE", columns: targetNames(oc["targetList"])})
				}
			}
		case "UpdateStmt":
			if n, ok := name(rel); ok {
				add(tableEvent{table: n, kind: "UPDATE", columns: targetNames(v["targetList"])})
			}
		case "DeleteStmt":
			if n, ok := name(rel); ok {
				add(tableEvent{table: n, kind: "DELETE"})
			}
		case "MergeStmt":
			if n, ok := name(rel); ok {
				add(tableEvent{table: n, kind: "INSERT"})
				add(tableEvent{table: n, kind: "UPDATE"})
				add(tableEvent{table: n, kind: "DELETE"})
			}
		case "CopyStmt":
			if from, _ := v["is_from"].(bool); from {
				if n, ok := name(rel); ok {
					add(tableEvent{table: n, kind: "INSERT"})
				}
			}
		case "TruncateStmt":
			rels, _ := v["relations"].([]any)
			for _, r := range rels {
				if rv, ok := r.(map[string]any)["RangeVar"].(map[string]any); ok {
					if n, ok := name(rv); ok {
						out = append(out, tableEvent{table: n, kind: "TRUNCATE"})
						if b, _ := v["behavior"].(string); b == "DROP_CASCADE" {
							for _, c := range closureList(n, schema.OnDelete) {
								out = append(out, tableEvent{table: c, kind: "TRUNCATE"})
							}
						}
					}
				}
			}
			return false
		}
		return true
	})
	return out
}

func closureList(t string, edges map[string][]string) []string {
	set := map[string]bool{}
	closure(t, edges, set)
	return sorted(set)
}

// cascadeEvents is ev and what its foreign-key actions do to the
// referencing tables: a delete cascades as deletes (or sets the column,
// an UPDATE), an update of a key as updates.
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
				if fk.Child == child && fk.Parent == ev.table {
					if fk.OnDelete == "c" {
						kinds = []tableEvent{{table: child, kind: "DELETE"}}
					} else {
						kinds = []tableEvent{{table: child, kind: "UPDATE", columns: []string{fk.ChildCol}}}
					}
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
	}
	return out
}

// triggerEvents are the writes the triggers fired by evs make, and theirs,
// with their cascades.
func (s *Schema) triggerEvents(evs []tableEvent) []tableEvent {
	if s == nil {
		return nil
	}
	seen := map[string]bool{}
	var out []tableEvent
	queue := append([]tableEvent(nil), evs...)
	for len(queue) > 0 {
		ev := queue[0]
		queue = queue[1:]
		if seen[ev.key()] {
			continue
		}
		seen[ev.key()] = true
		for _, w := range s.firedWrites(ev) {
			for _, ce := range s.cascadeEvents(w.event(), map[string]bool{}) {
				out = append(out, ce)
				queue = append(queue, ce)
			}
		}
	}
	return out
}

// triggerScopeWrites derives what the triggers fired by ev do to the
// scopes of the tables they write, from what ev's statement does to the
// scopes of ev's table (own, by scope name), and recursively through the
// triggers of those tables.
func (s *Schema) triggerScopeWrites(ev tableEvent, own map[string]ScopeWrite, seen map[string]bool) []ScopeWrite {
	if seen[ev.key()] {
		return nil
	}
	seen[ev.key()] = true
	var out []ScopeWrite
	for _, tw := range s.firedWrites(ev) {
		cols := tw.Updated
		if cols == nil {
			cols = []string{""}
		}
		mine := map[string]ScopeWrite{}
		for _, sc := range s.Scopes(tw.Table) {
			w := s.tracedScopeWrite(ev, tw, sc, own)
			w.Columns = cols
			if w.Wide && tw.Updated == nil {
				w.Columns = []string{""}
			}
			mine[sc.Name()] = w
			out = append(out, w)
		}
		// Rows of a parent change what its children's path scopes hold.
		for _, sc := range s.AllScopes() {
			if sc.Parent != tw.Table {
				continue
			}
			if tw.Updated != nil && !contains(tw.Updated, sc.ParentKey) && !contains(tw.Updated, sc.ParentColumn) {
				continue
			}
			out = append(out, ScopeWrite{Scope: sc, Wide: true, Columns: []string{""}, Why: "trigger " + tw.Trigger + " writes rows of " + tw.Table})
		}
		out = append(out, s.triggerScopeWrites(tw.event(), mine, seen)...)
	}
	return out
}

// tracedScopeWrite is what trigger write tw, fired by ev, does to scope sc
// of its table: the values ev's statement bumps in the scope of ev's table
// that tw's rows were traced to, else wide.
func (s *Schema) tracedScopeWrite(ev tableEvent, tw TriggerWrite, sc ScopeDef, own map[string]ScopeWrite) ScopeWrite {
	w := ScopeWrite{Scope: sc}
	wide := func(why string) ScopeWrite {
		w.Wide, w.Why = true, "trigger "+tw.Trigger+": "+why
		return w
	}
	if tw.Updated != nil && contains(tw.Updated, sc.Column) {
		return wide("updates " + sc.Column + ", moving rows between values")
	}
	src, ok := tw.From[sc.Column]
	if !ok {
		return wide("its rows' " + scopeValueName(sc) + " is not traced to " + ev.table)
	}
	var from ScopeDef
	switch {
	case !sc.IsPath():
		from = ScopeDef{Table: ev.table, Column: src}
	case s.fkOf(ev.table, src).Parent == sc.Parent && s.fkOf(ev.table, src).ParentCol == sc.ParentKey:
		// Both columns reference the same parent key: the same path.
		from = ScopeDef{Table: ev.table, Column: src, Parent: sc.Parent, ParentKey: sc.ParentKey, ParentColumn: sc.ParentColumn}
	case ev.table == sc.Parent && src == sc.ParentKey:
		// The trigger's table is the parent: its own scope column.
		from = ScopeDef{Table: ev.table, Column: sc.ParentColumn}
	default:
		return wide(sc.Column + " comes from " + ev.table + "." + src + ", which has no scope " + scopeValueName(sc))
	}
	ow, ok := own[from.Name()]
	if !ok {
		return wide(sc.Column + " comes from " + ev.table + "." + src + ", whose scope " + from.Name() + " the write does not name")
	}
	if ow.Wide {
		return wide(sc.Column + " from " + from.Name() + ", bumped wide (" + ow.Why + ")")
	}
	w.Values, w.Through = ow.Values, ow.Through
	w.Why = "trigger " + tw.Trigger + ": " + sc.Column + " from " + from.Name() + " (" + ow.Why + ")"
	return w
}

// fkOf is the single-column foreign key of table.col, or the zero value.
func (s *Schema) fkOf(table, col string) ForeignKey {
	for _, fk := range s.FKs {
		if fk.Child == table && fk.ChildCol == col {
			return fk
		}
	}
	return ForeignKey{}
}

// triggerTables are the tables a write of any kind to table may change
// through triggers, transitively, other than table itself.
func (s *Schema) triggerTables(table string) []string {
	var evs []tableEvent
	for _, k := range []string{"INSERT", "UPDATE", "DELETE", "TRUNCATE"} {
		evs = append(evs, tableEvent{table: table, kind: k})
	}
	set := map[string]bool{}
	for _, ev := range s.triggerEvents(evs) {
		if ev.table != table {
			set[ev.table] = true
		}
	}
	return sorted(set)
}
