package dbgen

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
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
	// Events are INSERT, UPDATE, DELETE, TRUNCATE; Columns the UPDATE OF list.
	Events, Columns []string
	Row             bool
	Before          bool // BEFORE or INSTEAD OF
	// NewTable and OldTable name the transition tables, "" when none.
	NewTable, OldTable string
	// writes are what its function writes, as of the migrations read so
	// far (readTriggers).
	writes []TriggerWrite
}

// TriggerWrite is one statement of a trigger function that writes a table:
// the event it makes, as that table's own triggers see it.
type TriggerWrite struct {
	tableEvent
	Trigger string
	// When are the TG_OP values under which the statement runs (nil: any).
	When []string
	// From maps a column of the table to the column of the trigger's
	// table whose values the changed rows carry; a scope column missing
	// from it is not traced.
	From map[string]string
}

// tableEvent is a write to a table as its triggers see it.
type tableEvent struct {
	table   string
	kind    string   // INSERT, UPDATE, DELETE, TRUNCATE
	columns []string // UPDATE: the columns set; nil when not known
	cascade bool     // TRUNCATE ... CASCADE
}

func (e tableEvent) key() string { return e.table + ":" + e.kind + ":" + strings.Join(e.columns, ",") }

// readTriggers records the functions and triggers of one migration,
// forgets the triggers it drops, and derives every trigger's writes anew
// (its function may be defined or replaced after it).
func (s *Schema) readTriggers(src string, tree *pg_query.ParseResult) error {
	for _, raw := range tree.GetStmts() {
		switch st := nodeMessage(raw.GetStmt()).(type) {
		case *pg_query.CreateFunctionStmt:
			if name := last(strs(st.GetFuncname())); name != "" {
				text := src[raw.GetStmtLocation():]
				if n := raw.GetStmtLen(); n > 0 {
					text = text[:n]
				}
				s.functions[name] = text
			}
		case *pg_query.CreateTrigStmt:
			s.addTrigger(st)
		case *pg_query.DropStmt:
			for _, o := range st.GetObjects() {
				// A trigger's name follows its table's.
				if parts := strs(o.GetList().GetItems()); st.GetRemoveType() == pg_query.ObjectType_OBJECT_TRIGGER && len(parts) >= 2 {
					s.dropTrigger(s.parent(parts[len(parts)-2]), parts[len(parts)-1])
				}
			}
		}
	}
	for i, t := range s.Triggers {
		var err error
		if s.Triggers[i].writes, err = s.analyzeTrigger(t); err != nil {
			return fmt.Errorf("trigger %s on %s: %w", t.Name, t.Table, err)
		}
	}
	return nil
}

func (s *Schema) addTrigger(v *pg_query.CreateTrigStmt) {
	t := Trigger{
		Name:     v.GetTrigname(),
		Table:    s.parent(relName(v.GetRelation())),
		Function: last(strs(v.GetFuncname())),
		Columns:  strs(v.GetColumns()),
		Row:      v.GetRow(),
		// The bits are PostgreSQL's TRIGGER_TYPE_*: BEFORE 1<<1, INSTEAD
		// 1<<6, and the events from 1<<2 in this order.
		Before: v.GetTiming()&(1<<1|1<<6) != 0,
	}
	for i, name := range []string{"INSERT", "DELETE", "UPDATE", "TRUNCATE"} {
		if v.GetEvents()&(1<<(i+2)) != 0 {
			t.Events = append(t.Events, name)
		}
	}
	for _, r := range v.GetTransitionRels() {
		if tt := r.GetTriggerTransition(); tt.GetIsNew() {
			t.NewTable = tt.GetName()
		} else {
			t.OldTable = tt.GetName()
		}
	}
	s.dropTrigger(t.Table, t.Name)
	s.Triggers = append(s.Triggers, t)
}

func (s *Schema) dropTrigger(table, name string) {
	s.Triggers = slices.DeleteFunc(s.Triggers, func(t Trigger) bool { return t.Table == table && t.Name == name })
}

// plVisitor collects the writes of a trigger function's SQL statements,
// with the TG_OP values each runs under.
type plVisitor struct {
	s   *Schema
	t   Trigger
	out []TriggerWrite
	err error
}

func (s *Schema) analyzeTrigger(t Trigger) ([]TriggerWrite, error) {
	src, ok := s.functions[t.Function]
	if !ok {
		return nil, fmt.Errorf("runs %s(), which the migrations do not define", t.Function)
	}
	// pg_query offers PL/pgSQL's parse tree as JSON only (there is no
	// protobuf for it): objects of one key, the node's kind.
	js, err := pg_query.ParsePlPgSqlToJSON(src)
	var tree any
	if err == nil {
		err = json.Unmarshal([]byte(js), &tree)
	}
	if err != nil {
		return nil, fmt.Errorf("parse the PL/pgSQL of %s(): %w", t.Function, err)
	}
	v := &plVisitor{s: s, t: t}
	v.visit(tree, nil)
	if v.err != nil {
		return nil, fmt.Errorf("%s(): %w", t.Function, v.err)
	}
	if t.Before && t.Row && strings.Contains(js, `"PLpgSQL_stmt_assign":`) {
		// A BEFORE row trigger may rewrite NEW: the query's own analysis
		// of the rows it writes would no longer hold.
		return nil, fmt.Errorf("BEFORE/INSTEAD OF row trigger running %s() assigns variables: it may change the rows a query writes, which dbgen cannot follow", t.Function)
	}
	return v.out, nil
}

// visit walks a PL/pgSQL JSON value (an object, or a list of them) in a
// fixed order.
func (v *plVisitor) visit(n any, when []string) {
	if list, ok := n.([]any); ok {
		for _, c := range list {
			v.visit(c, when)
		}
	}
	o := obj(n)
	for _, k := range sortedKeys(o) {
		switch {
		case v.err != nil:
			return
		case k == "PLpgSQL_stmt_dynexecute" || k == "PLpgSQL_stmt_dynfors":
			v.err = fmt.Errorf("runs dynamic SQL (EXECUTE): what it writes cannot be known")
		case k == "PLpgSQL_stmt_if":
			v.visitIf(obj(o[k]), when)
		case k == "PLpgSQL_expr":
			v.statement(obj(o[k]), when)
		default:
			v.visit(o[k], when)
		}
	}
}

func obj(n any) map[string]any {
	o, _ := n.(map[string]any)
	return o
}

// statement analyses a PL/pgSQL SQL statement (an expression, any other
// parse mode, writes nothing): the relations it writes and, traced, what
// the rows of the top-level statement carry; a data-modifying CTE's rows
// are not traced.
func (v *plVisitor) statement(e map[string]any, when []string) {
	q, _ := e["query"].(string)
	if mode, _ := e["parseMode"].(float64); mode != 0 {
		return
	}
	tree, err := pg_query.Parse(q)
	if err != nil {
		v.err = fmt.Errorf("parse %q: %w", q, err)
		return
	}
	p := scan(tree, nil)
	for _, op := range p.ops {
		if op.rel == nil {
			continue
		}
		ev := tableEvent{table: v.s.parent(relName(op.rel)), kind: op.kind, columns: op.columns}
		w := TriggerWrite{tableEvent: ev, Trigger: v.t.Name, When: when}
		if op.stmt == topStatement(tree) {
			w.From = traced(directChange(op, ":exec", &env{schema: v.s, ctes: p.ctes, trig: &v.t}))
		}
		v.out = append(v.out, w)
	}
}

// visitIf follows IF TG_OP = '…' THEN … ELSIF TG_OP = '…' … ELSE …,
// narrowing the events each branch runs under; any other condition keeps
// them as they are.
func (v *plVisitor) visitIf(n map[string]any, when []string) {
	rest := when
	if rest == nil {
		rest = []string{"INSERT", "UPDATE", "DELETE", "TRUNCATE"}
	}
	branch := func(cond, body any) {
		op, ok := tgOpCondition(cond)
		if !ok {
			v.visit(body, when)
			return
		}
		if slices.Contains(rest, op) {
			v.visit(body, []string{op})
		}
		rest = slices.DeleteFunc(slices.Clone(rest), func(e string) bool { return e == op })
	}
	branch(n["cond"], n["then_body"])
	elsifs, _ := n["elsif_list"].([]any)
	for _, e := range elsifs {
		b := obj(obj(e)["PLpgSQL_if_elsif"])
		branch(b["cond"], b["stmts"])
	}
	if len(rest) > 0 {
		v.visit(n["else_body"], rest)
	}
}

// tgOp matches the condition TG_OP = 'X', parenthesised or not.
var tgOp = regexp.MustCompile(`(?i)^[\s(]*tg_op\s*=\s*'(\w+)'[\s)]*$`)

func tgOpCondition(cond any) (string, bool) {
	q, _ := obj(obj(cond)["PLpgSQL_expr"])["query"].(string)
	m := tgOp.FindStringSubmatch(q)
	return last(m), m != nil
}

// traced is what the analysis of a write (writescopes.go) in a trigger
// function knows its rows carry, by column: there the values are columns
// of the trigger's table's rows.
func traced(c *rowChange) map[string]string {
	if c == nil {
		return nil // MERGE
	}
	from := map[string]string{}
	for sc, w := range c.known {
		if vals := slices.Compact(w.Values); !sc.IsPath() && len(vals) == 1 && !vals[0].Many {
			from[sc.Column] = vals[0].Param
		}
	}
	return from
}
