package dbgen

import (
	"maps"
	"slices"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protopath"
	"google.golang.org/protobuf/reflect/protorange"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Helpers over pg_query's typed parse tree.

// walk calls fn for every node under m (every message a pg_query.Node
// wraps), depth first, fields in a fixed order; fn returning false skips
// the node's children. Messages held directly by a field (an INSERT's
// target RangeVar, a UNION's branches) are descended into but not passed
// to fn: a table is read only where a FROM item names it. Locking clauses
// are skipped: FOR UPDATE OF x names a FROM item (often an alias).
func walk(m proto.Message, fn func(proto.Message) bool) {
	if m == nil {
		return
	}
	_ = protorange.Options{Stable: true}.Range(m.ProtoReflect(), func(p protopath.Values) error {
		step := p.Path.Index(-1)
		msg, ok := p.Index(-1).Value.Interface().(protoreflect.Message)
		if !ok || step.Kind() != protopath.FieldAccessStep || step.FieldDescriptor().ContainingMessage().FullName() != "pg_query.Node" {
			return nil
		}
		if _, locking := msg.Interface().(*pg_query.LockingClause); locking || !fn(msg.Interface()) {
			return protorange.Break
		}
		return nil
	}, nil)
}

// nodeMessage is the message a Node wraps, nil for an empty one.
func nodeMessage(n *pg_query.Node) proto.Message {
	m := n.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().Get(0))
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// topStatement is the single statement of tree, nil when there are more.
func topStatement(tree *pg_query.ParseResult) proto.Message {
	if len(tree.GetStmts()) != 1 {
		return nil
	}
	return nodeMessage(tree.GetStmts()[0].GetStmt())
}

// strs are the String nodes of a list, as strings.
func strs(nodes []*pg_query.Node) []string {
	var out []string
	for _, n := range nodes {
		if s := n.GetString_(); s != nil {
			out = append(out, s.GetSval())
		}
	}
	return out
}

func last(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[len(names)-1]
}

// targetNames are the column names of a SET or INSERT column list, sorted
// and without duplicates.
func targetNames(list []*pg_query.Node) []string {
	out := slices.DeleteFunc(columnNames(list), func(name string) bool { return name == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// columnNames are the names of a ResTarget list in order, "" where a
// target has none.
func columnNames(list []*pg_query.Node) []string {
	out := make([]string, len(list))
	for i, n := range list {
		out[i] = n.GetResTarget().GetName()
	}
	return out
}

// columnRefParts returns the dotted names of a ColumnRef and whether it
// ends in *; nil parts for a shape it does not understand.
func columnRefParts(cr *pg_query.ColumnRef) ([]string, bool) {
	var parts []string
	for i, f := range cr.GetFields() {
		switch {
		case f.GetAStar() != nil && i == len(cr.GetFields())-1:
			return parts, true
		case f.GetString_() == nil:
			return nil, false
		}
		parts = append(parts, f.GetString_().GetSval())
	}
	return parts, false
}

// conjuncts flattens a tree of ANDs; anything else is one conjunct.
func conjuncts(expr *pg_query.Node) []*pg_query.Node {
	if expr == nil || expr.GetNode() == nil {
		return nil
	}
	if b := expr.GetBoolExpr(); b != nil && b.GetBoolop() == pg_query.BoolExprType_AND_EXPR {
		var out []*pg_query.Node
		for _, a := range b.GetArgs() {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []*pg_query.Node{expr}
}

// relName is a RangeVar's name, schema-qualified unless in public.
func relName(rel *pg_query.RangeVar) string {
	if s := rel.GetSchemaname(); s != "" && s != "public" {
		return s + "." + rel.GetRelname()
	}
	return rel.GetRelname()
}

// refKeys are the names a statement refers to a FROM item's relation by:
// its alias, else its name, plain and schema-qualified.
func refKeys(rv *pg_query.RangeVar) []string {
	if a := rv.GetAlias().GetAliasname(); a != "" {
		return []string{a}
	}
	return slices.Compact([]string{rv.GetRelname(), relName(rv)})
}

// writeOp is one relation a statement writes, as its triggers see it.
type writeOp struct {
	rel     *pg_query.RangeVar
	kind    string   // INSERT, UPDATE, DELETE, TRUNCATE
	columns []string // UPDATE: the columns set, sorted; nil when not known
	stmt    proto.Message
	cascade bool // TRUNCATE ... CASCADE
}

// scan walks tree once for what the analyses need of it.
func scan(tree *pg_query.ParseResult, params []string) *parsed {
	q := &parsed{tree: tree, params: params, ctes: map[string]bool{}}
	walk(tree, func(n proto.Message) bool {
		add := func(rel *pg_query.RangeVar, kind string, cols []string) {
			q.ops = append(q.ops, writeOp{rel: rel, kind: kind, columns: cols, stmt: n})
		}
		switch st := n.(type) {
		case *pg_query.CommonTableExpr:
			q.ctes[st.GetCtename()] = true
		case *pg_query.RangeVar:
			q.rels = append(q.rels, st)
		case *pg_query.ColumnRef:
			q.colRefs = append(q.colRefs, st)
		case *pg_query.JoinExpr:
			q.usingJoin = q.usingJoin || len(st.GetUsingClause()) > 0 || st.GetIsNatural()
		case *pg_query.InsertStmt:
			add(st.GetRelation(), "INSERT", nil)
			if upsertsUpdate(st) {
				add(st.GetRelation(), "UPDATE", targetNames(st.GetOnConflictClause().GetTargetList()))
			}
		case *pg_query.UpdateStmt:
			add(st.GetRelation(), "UPDATE", targetNames(st.GetTargetList()))
		case *pg_query.DeleteStmt:
			add(st.GetRelation(), "DELETE", nil)
		case *pg_query.MergeStmt:
			for _, k := range []string{"INSERT", "UPDATE", "DELETE"} {
				add(st.GetRelation(), k, nil)
			}
		case *pg_query.CopyStmt:
			if !st.GetIsFrom() {
				q.rels = append(q.rels, st.GetRelation())
			} else {
				add(st.GetRelation(), "INSERT", nil)
			}
		case *pg_query.TruncateStmt:
			for _, r := range st.GetRelations() {
				q.ops = append(q.ops, writeOp{rel: r.GetRangeVar(), kind: "TRUNCATE", stmt: n, cascade: st.GetBehavior() == pg_query.DropBehavior_DROP_CASCADE})
			}
			return false // its relations are written, not read
		}
		return true
	})
	return q
}

func upsertsUpdate(ins *pg_query.InsertStmt) bool {
	return ins.GetOnConflictClause().GetAction() == pg_query.OnConflictAction_ONCONFLICT_UPDATE
}

func union[T comparable](list []T, more ...T) []T {
	for _, v := range more {
		if !slices.Contains(list, v) {
			list = append(list, v)
		}
	}
	return list
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
