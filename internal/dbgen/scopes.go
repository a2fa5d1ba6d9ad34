package dbgen

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Scope derivation. A cached read is pinned to a scope when an equality
// in its WHERE clause or its inner-join conditions ties a scope column of a
// table it reads to a parameter, directly (campaign_id = @campaign_id),
// through join equalities (e.campaign_id = c.id AND c.id = @campaign_id), or
// through a foreign key to a parent pinned by a parameter
// (e.campaign_id = c.id AND c.user_id = @user_id). An outer join's ON
// condition pins only its nullable side. IN lists and = ANY(array) pin to
// several values. Anything else — OR, ranges, expressions on the column,
// NOT, a table read in a way this code does not follow — leaves the table
// unpinned, and the read depends on table-wide versions as before: never a
// guess.
//
// A write bumps, for each scope of each table it changes, the values its
// rows carry: parameters in VALUES (every COPY row's), WHERE equalities
// (and joins, for paths), RETURNING columns, and for ON DELETE CASCADE the
// parent's values. When they cannot be known it bumps the scope-wide
// version, and says so in the report.

// valueRef is where a scope value comes from at run time.
type valueRef struct {
	Param  string // a sqlc parameter
	Many   bool   // the parameter is an array compared with = ANY
	PerRow bool   // :copyfrom: the parameter of every row
	Field  string // a RETURNING column, when Param is empty
}

func (v valueRef) String() string {
	switch {
	case v.Field != "":
		return "RETURNING " + v.Field
	case v.PerRow:
		return "each row's @" + v.Param
	case v.Many:
		return "each of @" + v.Param
	}
	return "@" + v.Param
}

// usableFunc reports whether the generated code can hash v as a value of
// the SQL type (its Go type must match: uuid.UUID for uuid, string for
// text...).
type usableFunc func(v valueRef, sqlType string) bool

// ScopedRead is a read's dependency on one scope: pinned to Values, reading
// Columns of the scope's table.
type ScopedRead struct {
	Scope   ScopeDef
	Values  []valueRef
	Columns []string
}

// ReadDeps are a cached read's version slots: Named whatever its
// arguments, Scoped per argument value.
type ReadDeps struct {
	Named    []string
	Scoped   []ScopedRead
	Unpinned []string // tables read without a pinning equality
}

// ScopeWrite is what a write does to one scope: bump the slots of Values
// for Columns ("" is the row slot), or, when Wide, the scope-wide versions.
type ScopeWrite struct {
	Scope   ScopeDef
	Values  []valueRef
	Wide    bool
	Columns []string
	Why     string
	// Through, when set, looks the path's values up from Values, the rows'
	// keys (resolve.go).
	Through resolver
}

var sqlcParamName = regexp.MustCompile(`@([A-Za-z_][A-Za-z0-9_]*)`)

// numberParams replaces sqlc's @name parameters with $1, $2… (one number
// per distinct name), which PostgreSQL's parser takes, and returns the
// names by number.
func numberParams(sql string) (string, map[int]string) {
	names := map[int]string{}
	nums := map[string]int{}
	out := sqlcParamName.ReplaceAllStringFunc(sql, func(m string) string {
		name := m[1:]
		n, ok := nums[name]
		if !ok {
			n = len(nums) + 1
			nums[name] = n
			names[n] = name
		}
		return "$" + strconv.Itoa(n)
	})
	return out, names
}

// sel is one SELECT (or the FROM and WHERE of an UPDATE or DELETE): its
// table occurrences and the equalities among their columns and parameters.
// A subquery's sel has its enclosing one as outer: a correlated equality
// (e.campaign_id = c.id, c of the enclosing query) pins the subquery's
// rows the way an outer join's ON does, never the enclosing query's.
type sel struct {
	schema *Schema
	params map[int]string
	id     int
	all    *[]*sel // every sel of the statement, by id
	outerQ *sel
	occs   []occurrence
	refs   map[string][]int
	parent map[string]string   // union-find over terms, from strong equalities
	weak   map[string][]string // a column term -> terms an outer join's ON or a correlation equates it with
	lists  map[string][]valueRef
	// outer are the ON conditions of outer joins, with the occurrences on
	// their nullable side, applied once every occurrence is known.
	outer []outerQual
}

type occurrence struct {
	table string
}

type outerQual struct {
	expr     any
	nullable map[int]bool
}

func newSel(schema *Schema, params map[int]string, outer *sel) *sel {
	s := &sel{schema: schema, params: params, outerQ: outer, refs: map[string][]int{}, parent: map[string]string{}, weak: map[string][]string{}, lists: map[string][]valueRef{}}
	if outer != nil {
		s.all = outer.all
	} else {
		s.all = &[]*sel{}
	}
	s.id = len(*s.all)
	*s.all = append(*s.all, s)
	return s
}

// owner is the sel a term belongs to: parameters belong to every sel.
func (s *sel) owner(t string) *sel {
	if sid, _, ok := splitTerm(t); ok {
		return (*s.all)[sid]
	}
	return s
}

// addFrom adds the occurrences of a FROM item and queues its join
// conditions; it returns the occurrences it added. ctes are names that
// are CTEs, not tables.
func (s *sel) addFrom(item any, ctes map[string]bool) []int {
	m, ok := item.(map[string]any)
	if !ok {
		return nil
	}
	if rv, ok := m["RangeVar"].(map[string]any); ok {
		return s.addRangeVar(rv, ctes)
	}
	j, ok := m["JoinExpr"].(map[string]any)
	if !ok {
		return nil // subqueries and functions are analysed on their own
	}
	left := s.addFrom(j["larg"], ctes)
	right := s.addFrom(j["rarg"], ctes)
	quals := j["quals"]
	switch j["jointype"] {
	case "JOIN_INNER":
		s.addConjuncts(quals)
	case "JOIN_LEFT":
		s.outer = append(s.outer, outerQual{quals, setOf(right)})
	case "JOIN_RIGHT":
		s.outer = append(s.outer, outerQual{quals, setOf(left)})
	}
	return append(left, right...)
}

func (s *sel) addRangeVar(rv map[string]any, ctes map[string]bool) []int {
	ns, _ := rv["schemaname"].(string)
	n, _ := rv["relname"].(string)
	if ns == "" && ctes[n] {
		return nil
	}
	t := s.schema.parent(relName(rv))
	i := len(s.occs)
	s.occs = append(s.occs, occurrence{table: t})
	if alias, ok := rv["alias"].(map[string]any); ok {
		if a, _ := alias["aliasname"].(string); a != "" {
			s.refs[a] = append(s.refs[a], i)
			return []int{i}
		}
	}
	s.refs[n] = append(s.refs[n], i)
	if rn := relName(rv); rn != n {
		s.refs[rn] = append(s.refs[rn], i)
	}
	return []int{i}
}

func setOf(xs []int) map[int]bool {
	out := map[int]bool{}
	for _, x := range xs {
		out[x] = true
	}
	return out
}

// finish applies the outer joins' conditions.
func (s *sel) finish() {
	for _, q := range s.outer {
		for _, c := range conjuncts(q.expr) {
			s.addEquality(c, q.nullable)
		}
	}
	s.outer = nil
}

func (s *sel) addConjuncts(expr any) {
	for _, c := range conjuncts(expr) {
		s.addEquality(c, nil)
	}
}

// conjuncts flattens a tree of ANDs; anything else is one conjunct.
func conjuncts(expr any) []map[string]any {
	m, ok := expr.(map[string]any)
	if !ok {
		return nil
	}
	if b, ok := m["BoolExpr"].(map[string]any); ok && b["boolop"] == "AND_EXPR" {
		var out []map[string]any
		args, _ := b["args"].([]any)
		for _, a := range args {
			out = append(out, conjuncts(a)...)
		}
		return out
	}
	return []map[string]any{m}
}

// addEquality records one conjunct when it is an equality this code
// follows. With nullable set it comes from an outer join's ON and may
// pin only those occurrences' columns.
func (s *sel) addEquality(c map[string]any, nullable map[int]bool) {
	e, ok := c["A_Expr"].(map[string]any)
	if !ok || !isEqualsOp(e["name"]) {
		return
	}
	l, lok := s.term(e["lexpr"])
	switch e["kind"] {
	case "AEXPR_OP":
		r, rok := s.term(e["rexpr"])
		if !lok || !rok {
			return
		}
		lLocal, rLocal := s.local(l), s.local(r)
		if nullable == nil && lLocal && rLocal {
			s.union(l, r)
			return
		}
		if nullable == nil {
			// A correlation: pins the local column, never the outer one.
			for _, pair := range [][2]string{{l, r}, {r, l}} {
				if _, ok := s.occOf(pair[0]); ok && !s.local(pair[1]) {
					s.weak[pair[0]] = append(s.weak[pair[0]], pair[1])
				}
			}
			return
		}
		for _, pair := range [][2]string{{l, r}, {r, l}} {
			if occ, ok := s.occOf(pair[0]); ok && nullable[occ] {
				s.weak[pair[0]] = append(s.weak[pair[0]], pair[1])
			}
		}
	case "AEXPR_IN":
		if !lok || !s.pinnable(l, nullable) {
			return
		}
		list, _ := e["rexpr"].(map[string]any)["List"].(map[string]any)
		items, _ := list["items"].([]any)
		var vals []valueRef
		for _, it := range items {
			p, ok := s.param(it)
			if !ok {
				return
			}
			vals = append(vals, valueRef{Param: p})
		}
		s.lists[l] = append(s.lists[l], vals...)
	case "AEXPR_OP_ANY":
		if !lok || !s.pinnable(l, nullable) {
			return
		}
		if p, ok := s.param(e["rexpr"]); ok {
			s.lists[l] = append(s.lists[l], valueRef{Param: p, Many: true})
		}
	}
}

// pinnable: a column term that a condition may pin.
func (s *sel) pinnable(t string, nullable map[int]bool) bool {
	occ, ok := s.occOf(t)
	return ok && (nullable == nil || nullable[occ])
}

func isEqualsOp(name any) bool {
	ns := stringList(name)
	return len(ns) == 1 && ns[0] == "="
}

// term names an expression as a union-find term: "c<occ>.<column>" for a
// column of an occurrence, "p:<name>" for a parameter. Casts are looked
// through on parameters only: a cast column may compare equal to values
// that the column itself does not hold.
func (s *sel) term(expr any) (string, bool) {
	if p, ok := s.param(expr); ok {
		return "p:" + p, true
	}
	m, _ := expr.(map[string]any)
	cr, ok := m["ColumnRef"].(map[string]any)
	if !ok {
		return "", false
	}
	parts, star := columnRefParts(cr)
	if star || len(parts) == 0 || len(parts) > 2 {
		return "", false
	}
	col := parts[len(parts)-1]
	var cands []int
	if len(parts) == 2 {
		cands = s.refs[parts[0]]
		if len(cands) == 0 {
			return s.outerTerm(parts[0], col)
		}
	} else {
		for i, o := range s.occs {
			if s.schema.hasColumn(o.table, col) {
				cands = append(cands, i)
			}
		}
	}
	if len(cands) != 1 || !s.schema.hasColumn(s.occs[cands[0]].table, col) {
		return "", false // ambiguous or unknown: no pin
	}
	return s.colTerm(cands[0], col), true
}

// outerTerm resolves a qualified column of an enclosing query.
func (s *sel) outerTerm(ref, col string) (string, bool) {
	for o := s.outerQ; o != nil; o = o.outerQ {
		if cands := o.refs[ref]; len(cands) > 0 {
			if len(cands) != 1 || !o.schema.hasColumn(o.occs[cands[0]].table, col) {
				return "", false
			}
			return o.colTerm(cands[0], col), true
		}
	}
	return "", false
}

// colTerm names a column of an occurrence of this sel.
func (s *sel) colTerm(occ int, col string) string {
	return "c" + strconv.Itoa(s.id) + "_" + strconv.Itoa(occ) + "." + col
}

// splitTerm parses a column term into its sel and occurrence.
func splitTerm(t string) (sid, occ int, ok bool) {
	if !strings.HasPrefix(t, "c") {
		return 0, 0, false
	}
	head, _, ok := strings.Cut(t[1:], ".")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(head, "_")
	if !ok {
		return 0, 0, false
	}
	sid, err1 := strconv.Atoi(a)
	occ, err2 := strconv.Atoi(b)
	return sid, occ, err1 == nil && err2 == nil
}

// occOf is the occurrence of a column term of this sel.
func (s *sel) occOf(t string) (int, bool) {
	sid, occ, ok := splitTerm(t)
	return occ, ok && sid == s.id
}

// local reports whether t is a parameter or a column of this sel.
func (s *sel) local(t string) bool {
	sid, _, ok := splitTerm(t)
	return !ok || sid == s.id
}

// param is the sqlc parameter an expression is: $n, a cast of one, or
// sqlc.arg(name) / sqlc.narg(name).
func (s *sel) param(expr any) (string, bool) {
	m, _ := expr.(map[string]any)
	if pr, ok := m["ParamRef"].(map[string]any); ok {
		n, _ := pr["number"].(float64)
		name, ok := s.params[int(n)]
		return name, ok
	}
	if tc, ok := m["TypeCast"].(map[string]any); ok {
		return s.param(tc["arg"])
	}
	if fc, ok := m["FuncCall"].(map[string]any); ok {
		fn := stringList(fc["funcname"])
		if len(fn) == 2 && fn[0] == "sqlc" && (fn[1] == "arg" || fn[1] == "narg") {
			args, _ := fc["args"].([]any)
			if len(args) != 1 {
				return "", false
			}
			a, _ := args[0].(map[string]any)
			if cr, ok := a["ColumnRef"].(map[string]any); ok {
				if parts, _ := columnRefParts(cr); len(parts) == 1 {
					return parts[0], true
				}
			}
			if c, ok := a["A_Const"].(map[string]any); ok {
				if sv, ok := c["sval"].(map[string]any); ok {
					name, _ := sv["sval"].(string)
					return name, name != ""
				}
			}
		}
	}
	return "", false
}

func (s *sel) find(t string) string {
	p, ok := s.parent[t]
	if !ok || p == t {
		return t
	}
	r := s.find(p)
	s.parent[t] = r
	return r
}

func (s *sel) union(a, b string) {
	ra, rb := s.find(a), s.find(b)
	if ra != rb {
		s.parent[ra] = rb
	}
	if _, ok := s.parent[rb]; !ok {
		s.parent[rb] = rb
	}
}

// class lists the terms equal to t through strong equalities.
func (s *sel) class(t string) []string {
	root := s.find(t)
	out := []string{t}
	for k := range s.parent {
		if k != t && s.find(k) == root {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// pins are the values a column of an occurrence is pinned to, through
// strong equalities, lists, and (withWeak) an outer join's ON.
func (s *sel) pins(occ int, col string, withWeak bool) []valueRef {
	t := s.colTerm(occ, col)
	terms := s.class(t)
	if withWeak {
		for _, w := range s.weak[t] {
			terms = append(terms, s.owner(w).class(w)...)
		}
	}
	for _, x := range terms {
		if p, ok := strings.CutPrefix(x, "p:"); ok {
			return []valueRef{{Param: p}}
		}
	}
	for _, x := range terms {
		if l := s.lists[x]; len(l) > 0 {
			return l
		}
	}
	return nil
}

// pathPins are the values a path scope of an occurrence is pinned to: its
// column equals the parent key of a parent occurrence whose scope column
// is pinned.
func (s *sel) pathPins(occ int, sc ScopeDef) []valueRef {
	t := s.colTerm(occ, sc.Column)
	terms := s.class(t)
	for _, w := range s.weak[t] {
		terms = append(terms, s.owner(w).class(w)...)
	}
	for _, x := range terms {
		o := s.owner(x)
		o2, ok := o.occOf(x)
		if !ok || (o == s && o2 == occ) || o.occs[o2].table != sc.Parent || x != o.colTerm(o2, sc.ParentKey) {
			continue
		}
		if v := o.pins(o2, sc.ParentColumn, false); len(v) > 0 {
			return v
		}
	}
	return nil
}

// scopePins are the values occurrence occ is pinned to in scope sc.
func (s *sel) scopePins(occ int, sc ScopeDef) []valueRef {
	if sc.IsPath() {
		return s.pathPins(occ, sc)
	}
	return s.pins(occ, sc.Column, true)
}

func allUsable(vals []valueRef, sqlType string, usable usableFunc) bool {
	if len(vals) == 0 {
		return false
	}
	for _, v := range vals {
		if !usable(v, sqlType) {
			return false
		}
	}
	return true
}

// cteNames are the names the statement's CTEs define: a relation of that
// name (unqualified) is the CTE, not a table.
func cteNames(tree any) map[string]bool {
	ctes := map[string]bool{}
	walk(tree, func(key string, v map[string]any) bool {
		if key == "CommonTableExpr" {
			if n, ok := v["ctename"].(string); ok {
				ctes[n] = true
			}
		}
		return true
	})
	return ctes
}

// rangeVarCounts counts each table's occurrences anywhere in the tree.
func rangeVarCounts(tree any, schema *Schema, ctes map[string]bool) map[string]int {
	out := map[string]int{}
	walk(tree, func(key string, v map[string]any) bool {
		if key != "RangeVar" {
			return true
		}
		if t, ok := schema.relTable(v, ctes); ok {
			out[t]++
		}
		return true
	})
	return out
}

// ReadScopes derives a cached read's dependencies.
func ReadScopes(sql string, tables Tables, schema *Schema, usable usableFunc) (ReadDeps, error) {
	numbered, params := numberParams(sql)
	tree, err := parseTree(numbered)
	if err != nil {
		return ReadDeps{}, err
	}
	ctes := cteNames(tree)
	cols := referencedColumns(tree, tables, schema)
	total := rangeVarCounts(tree, schema, ctes)
	type pinned struct {
		scope ScopeDef
		vals  []valueRef
	}
	seen := map[string]int{}
	pins := map[string][]pinned{}
	unpinned := map[string]bool{}
	// Each SELECT is analysed inside the ones enclosing it, outermost
	// first, so that a subquery can follow a correlation outwards.
	var visit func(v map[string]any, outer *sel)
	visit = func(v map[string]any, outer *sel) {
		s := newSel(schema, params, outer)
		from, _ := v["fromClause"].([]any)
		for _, f := range from {
			s.addFrom(f, ctes)
		}
		s.addConjuncts(v["whereClause"])
		s.finish()
		walk(v, func(key string, c map[string]any) bool {
			if key == "SelectStmt" {
				visit(c, s)
				return false
			}
			return true
		})
		for i, o := range s.occs {
			seen[o.table]++
			p, ok := choosePin(s, i, o.table, usable)
			if !ok {
				unpinned[o.table] = true
				continue
			}
			pins[o.table] = append(pins[o.table], p)
		}
	}
	walk(tree, func(key string, v map[string]any) bool {
		if key == "SelectStmt" {
			visit(v, nil)
			return false
		}
		return true
	})
	var deps ReadDeps
	for _, t := range tables.Reads {
		if unpinned[t] || seen[t] != total[t] || len(pins[t]) == 0 {
			deps.Unpinned = append(deps.Unpinned, t)
			deps.Named = append(deps.Named, t)
			for _, c := range cols[t] {
				deps.Named = append(deps.Named, t+SlotSep+c)
			}
			continue
		}
		done := map[string]bool{}
		for _, p := range pins[t] {
			name := p.scope.Name()
			if !done[name] {
				done[name] = true
				deps.Named = append(deps.Named, name)
				for _, c := range cols[t] {
					deps.Named = append(deps.Named, name+SlotSep+c)
				}
			}
			key := name + fmt.Sprint(p.vals)
			if done[key] {
				continue
			}
			done[key] = true
			deps.Scoped = append(deps.Scoped, ScopedRead{Scope: p.scope, Values: p.vals, Columns: cols[t]})
		}
	}
	sort.Strings(deps.Named)
	return deps, nil
}

// choosePin picks the first scope of the table (in the schema's order of
// preference) that the occurrence is pinned to with usable values.
func choosePin(s *sel, occ int, table string, usable usableFunc) (struct {
	scope ScopeDef
	vals  []valueRef
}, bool) {
	var out struct {
		scope ScopeDef
		vals  []valueRef
	}
	for _, sc := range s.schema.Scopes(table) {
		vals := s.scopePins(occ, sc)
		if allUsable(vals, s.schema.valueType(sc), usable) {
			out.scope, out.vals = sc, vals
			return out, true
		}
	}
	return out, false
}

// referencedColumns are, per table read, the columns the statement
// references anywhere; every column when it cannot tell (SELECT *, a
// whole-row reference, JOIN USING, NATURAL JOIN).
func referencedColumns(tree any, tables Tables, schema *Schema) map[string][]string {
	out := map[string][]string{}
	for _, slot := range readSlots(tree, tables, schema) {
		if t, c, ok := strings.Cut(slot, SlotSep); ok {
			out[t] = append(out[t], c)
		}
	}
	return out
}
