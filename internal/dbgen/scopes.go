package dbgen

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

// Scope derivation. A cached read is pinned to a scope when an equality
// in its WHERE clause or its inner-join conditions ties a scope column of a
// table it reads to a parameter, directly (campaign_id = @campaign_id),
// through join equalities (e.campaign_id = c.id AND c.id = @campaign_id), or
// through a foreign key to a parent pinned by a parameter
// (e.campaign_id = c.id AND c.user_id = @user_id), or through a CTE's or
// subquery's column its select list sets to one. An outer join's ON
// condition pins only its nullable side. IN lists and = ANY(array) pin to
// several values. Anything else — OR, ranges, expressions on the column,
// NOT, a table read in a way this code does not follow — leaves the table
// unpinned, and the read depends on table-wide versions as before: never a
// guess.
//
// A write bumps, for each scope of each table it changes, the values its
// rows carry: parameters in VALUES (every COPY row's) or an INSERT's
// SELECT, WHERE equalities (and joins, for paths), RETURNING columns, and
// for ON DELETE CASCADE the parent's values. When they cannot be known it
// bumps the scope-wide version, and says so in the report.

// valueRef is where a scope value comes from at run time.
type valueRef struct {
	Param  string // a sqlc parameter (in a trigger function: a column of its rows)
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

// parsed is a query parsed once for every analysis (sqlc's @name
// parameters numbered, named in order by params), with what one walk of it
// finds (scan): its CTEs' names (an unqualified relation so named is the
// CTE, not a table), the relations it reads (FROM items, COPY TO), its
// column references and USING or NATURAL joins, and its writes, CTEs'
// included (an upsert also updates; a MERGE inserts, updates, deletes).
type parsed struct {
	tree      *pg_query.ParseResult
	params    []string
	ctes      map[string]bool
	rels      []*pg_query.RangeVar
	colRefs   []*pg_query.ColumnRef
	usingJoin bool
	ops       []writeOp
}

// sqlcParam matches sqlc's @name parameters, which PostgreSQL would parse
// as the prefix operator @ applied to a column called name.
var sqlcParam = regexp.MustCompile(`@([A-Za-z_][A-Za-z0-9_]*)`)

// parseQuery replaces sqlc's @name parameters with $1, $2… (one number per
// distinct name), which PostgreSQL's parser takes, and parses sql.
func parseQuery(sql string) (*parsed, error) {
	var params []string
	numbered := sqlcParam.ReplaceAllStringFunc(sql, func(m string) string {
		if !slices.Contains(params, m[1:]) {
			params = append(params, m[1:])
		}
		return "$" + strconv.Itoa(slices.Index(params, m[1:])+1)
	})
	tree, err := pg_query.Parse(numbered)
	if err != nil {
		return nil, err
	}
	return scan(tree, params), nil
}

// sel is one SELECT (or the FROM and WHERE of an UPDATE or DELETE): its
// FROM items' occurrences and the equalities among their columns and
// values. A subquery's sel has its enclosing one as outer: a correlated
// equality (e.campaign_id = c.id, c of the enclosing query) pins the
// subquery's rows the way an outer join's ON does, never the enclosing
// query's.
type sel struct {
	*env
	outerQ *sel
	occs   []source
	defs   map[string]source // the CTEs in scope, by name
	refs   map[string][]int
	// classes are the terms equal through strong equalities, by term.
	classes map[term][]term
	weak    map[term][]term // a column term -> terms an outer join's ON or a correlation equates it with
	lists   map[term][]valueRef
	// outer are the ON conditions of outer joins, with the occurrences on
	// their nullable side, applied once every occurrence is known.
	outer []outerQual
}

// env is what a statement is analysed in: the schema, sqlc's parameters,
// its CTEs' names, and in a trigger function the trigger (triggers.go),
// whose rows' columns (transition tables', NEW's, OLD's) are the values.
type env struct {
	schema *Schema
	params []string
	ctes   map[string]bool
	trig   *Trigger
}

// source is what an occurrence of a FROM item reads: a table, a
// transition table, a subquery or a CTE whose columns are traced through
// its select list, or, with none set, rows whose columns are unknown (a
// lateral subquery, a recursive or data-modifying CTE).
type source struct {
	table      string
	transition bool
	query      *pg_query.SelectStmt
	colnames   []string          // its column names, nil when not known
	defs       map[string]source // the CTEs the query sees
}

// querySource reads a subquery or CTE, whose columns its aliases name,
// else its select list.
func querySource(q *pg_query.SelectStmt, aliases []*pg_query.Node, defs map[string]source) source {
	names := strs(aliases)
	if len(names) == 0 {
		names = outputNames(q)
	}
	return source{query: q, colnames: names, defs: defs}
}

// outerQual is an outer join's ON condition; the occurrences from to to-1
// are on its nullable side.
type outerQual struct {
	expr     *pg_query.Node
	from, to int
}

func (q *outerQual) nullable(occ int) bool { return q.from <= occ && occ < q.to }

func newSel(e *env, outer *sel) *sel {
	s := &sel{env: e, outerQ: outer, refs: map[string][]int{}, classes: map[term][]term{}, weak: map[term][]term{}, lists: map[term][]valueRef{}}
	if outer != nil {
		s.defs = outer.defs
	}
	return s
}

// with adds a WITH clause's CTEs to those in scope. A recursive CTE's rows
// come from its own iterations, a data-modifying one's from its writes:
// their columns are not traced. The others see the CTEs before them only
// (a name of a later one, or their own, is a table).
func (s *sel) with(w *pg_query.WithClause) *sel {
	defs := map[string]source{}
	maps.Copy(defs, s.defs)
	for _, c := range w.GetCtes() {
		cte := c.GetCommonTableExpr()
		src := source{}
		if q := cte.GetCtequery().GetSelectStmt(); q != nil && !w.GetRecursive() {
			src = querySource(q, cte.GetAliascolnames(), maps.Clone(defs))
		}
		defs[cte.GetCtename()] = src
	}
	s.defs = defs
	return s
}

// term is an operand of an equality this code follows: a value from
// outside the statement (a parameter, or a column of a trigger's rows),
// or a column of an occurrence of a sel.
type term struct {
	param string
	sel   *sel
	occ   int
	col   string
}

// addFrom adds the occurrences of a FROM item (none for a function: no
// column of it is followed) and queues its join conditions.
func (s *sel) addFrom(item *pg_query.Node) {
	rs, j := item.GetRangeSubselect(), item.GetJoinExpr()
	switch q := rs.GetSubquery().GetSelectStmt(); {
	case item.GetRangeVar() != nil:
		s.addRangeVar(item.GetRangeVar())
	case rs != nil && !rs.GetLateral() && q != nil:
		s.addOcc([]string{rs.GetAlias().GetAliasname()}, querySource(q, rs.GetAlias().GetColnames(), s.defs))
	case rs != nil: // a lateral subquery is analysed on its own
		s.addOcc([]string{rs.GetAlias().GetAliasname()}, source{})
	case j != nil:
		// Each side's occurrences follow those before it.
		start := len(s.occs)
		s.addFrom(j.GetLarg())
		mid := len(s.occs)
		s.addFrom(j.GetRarg())
		switch j.GetJointype() {
		case pg_query.JoinType_JOIN_INNER:
			s.addConjuncts(j.GetQuals(), nil)
		case pg_query.JoinType_JOIN_LEFT:
			s.outer = append(s.outer, outerQual{j.GetQuals(), mid, len(s.occs)})
		case pg_query.JoinType_JOIN_RIGHT:
			s.outer = append(s.outer, outerQual{j.GetQuals(), start, mid})
		}
	}
}

// addRangeVar adds a CTE, a trigger's transition table or a table.
func (s *sel) addRangeVar(rv *pg_query.RangeVar) {
	name, unqualified := rv.GetRelname(), rv.GetSchemaname() == ""
	t, isTable := s.schema.relTable(rv, s.ctes)
	switch def, isCTE := s.defs[name]; {
	case isCTE && unqualified:
		s.addOcc(refKeys(rv), def)
	case s.trig != nil && unqualified && name != "" && (name == s.trig.NewTable || name == s.trig.OldTable):
		s.addOcc(refKeys(rv), source{transition: true, colnames: s.schema.Columns[s.trig.Table]})
	case isTable:
		s.addOcc(refKeys(rv), source{table: t, colnames: s.schema.Columns[t]})
	}
}

// addOcc adds an occurrence of src, named by names.
func (s *sel) addOcc(names []string, src source) {
	s.occs = append(s.occs, src)
	for _, k := range names {
		s.refs[k] = append(s.refs[k], len(s.occs)-1)
	}
}

// read adds FROM items and a WHERE clause, then the outer joins'
// conditions, which may pin only occurrences known by then.
func (s *sel) read(from []*pg_query.Node, where *pg_query.Node) *sel {
	for _, f := range from {
		s.addFrom(f)
	}
	s.addConjuncts(where, nil)
	for _, q := range s.outer {
		s.addConjuncts(q.expr, &q)
	}
	s.outer = nil
	return s
}

func (s *sel) addConjuncts(expr *pg_query.Node, outer *outerQual) {
	for _, c := range conjuncts(expr) {
		s.addEquality(c, outer)
	}
}

// addEquality records one conjunct when it is an equality this code
// follows. With outer set it comes from an outer join's ON and may pin
// only its nullable side's columns. x IN (SELECT v …) is x = v.
func (s *sel) addEquality(c *pg_query.Node, outer *outerQual) {
	if sl := c.GetSubLink(); sl != nil && sl.GetSubLinkType() == pg_query.SubLinkType_ANY_SUBLINK && len(sl.GetOperName()) == 0 {
		l, lok := s.term(sl.GetTestexpr())
		if r, rok := s.output(sl.GetSubselect().GetSelectStmt(), s.defs, 0); lok && rok {
			s.addPair(l, r, outer)
		}
		return
	}
	e := c.GetAExpr()
	if e == nil || !slices.Equal(strs(e.GetName()), []string{"="}) {
		return
	}
	l, lok := s.term(e.GetLexpr())
	if e.GetKind() == pg_query.A_Expr_Kind_AEXPR_OP {
		if r, rok := s.term(e.GetRexpr()); lok && rok {
			s.addPair(l, r, outer)
		}
		return
	}
	if occ, ok := s.occOf(l); !lok || !ok || outer != nil && !outer.nullable(occ) {
		return // not a column this condition may pin
	}
	var vals []valueRef
	switch e.GetKind() {
	case pg_query.A_Expr_Kind_AEXPR_IN:
		for _, it := range e.GetRexpr().GetList().GetItems() {
			p, ok := s.param(it)
			if !ok {
				return
			}
			vals = append(vals, valueRef{Param: p})
		}
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY:
		if p, ok := s.param(e.GetRexpr()); ok {
			vals = []valueRef{{Param: p, Many: true}}
		}
	}
	s.lists[l] = append(s.lists[l], vals...)
}

// addPair records l = r: a strong equality between local terms, else a
// weak one that pins only the local column (a correlation, never the
// outer one) or the nullable side of an outer join.
func (s *sel) addPair(l, r term, outer *outerQual) {
	if outer == nil && s.local(l) && s.local(r) {
		s.union(l, r)
		return
	}
	for _, pair := range [][2]term{{l, r}, {r, l}} {
		occ, ok := s.occOf(pair[0])
		if ok && (outer == nil && !s.local(pair[1]) || outer != nil && outer.nullable(occ)) {
			s.weak[pair[0]] = append(s.weak[pair[0]], pair[1])
		}
	}
}

// term is the term an expression is: a parameter, a column of an
// occurrence, or the value a source's column or a row trigger's NEW.col
// or OLD.col is traced to. Casts are looked through on parameters only: a
// cast column may compare equal to values that the column itself does not
// hold.
func (s *sel) term(expr *pg_query.Node) (term, bool) {
	if p, ok := s.param(expr); ok {
		return term{param: p}, true
	}
	parts, star := columnRefParts(expr.GetColumnRef())
	if star || len(parts) == 0 || len(parts) > 2 {
		return term{}, false
	}
	col := last(parts)
	if len(parts) == 2 {
		// A column of this query or, correlated, of an enclosing one.
		for o := s; o != nil; o = o.outerQ {
			if cands := o.refs[parts[0]]; len(cands) > 0 {
				return o.pick(cands, col)
			}
		}
		// No FROM item has the name: NEW.col or OLD.col of a row trigger.
		rowVar := strings.EqualFold(parts[0], "new") || strings.EqualFold(parts[0], "old")
		if tr := s.trig; tr != nil && tr.Row && rowVar && s.schema.hasColumn(tr.Table, col) {
			return term{param: col}, true
		}
		return term{}, false
	}
	var cands []int
	for i, src := range s.occs {
		if slices.Contains(src.colnames, col) {
			cands = append(cands, i)
		}
	}
	return s.pick(cands, col)
}

// pick is col of the one candidate occurrence; false when ambiguous or
// unknown: no pin.
func (s *sel) pick(cands []int, col string) (term, bool) {
	if len(cands) != 1 || !slices.Contains(s.occs[cands[0]].colnames, col) {
		return term{}, false
	}
	src := s.occs[cands[0]]
	switch {
	case src.table != "":
		return s.colTerm(cands[0], col), true
	case src.transition:
		return term{param: col}, true
	}
	return s.output(src.query, src.defs, slices.Index(src.colnames, col))
}

// output traces a query's idx-th output column to a value, through set
// operations (the left side's, the same as the right side's for a UNION:
// INTERSECT and EXCEPT return rows of the left side) and its own FROM.
func (e *env) output(q *pg_query.SelectStmt, defs map[string]source, idx int) (term, bool) {
	if q == nil || q.GetValuesLists() != nil {
		return term{}, false
	}
	s := newSel(e, nil)
	s.defs = defs
	s.with(q.GetWithClause())
	if q.GetLarg() != nil { // a UNION, INTERSECT or EXCEPT
		l, ok := e.output(q.GetLarg(), s.defs, idx)
		if q.GetOp() == pg_query.SetOperation_SETOP_UNION {
			r, rok := e.output(q.GetRarg(), s.defs, idx)
			ok = ok && rok && r == l
		}
		return l, ok
	}
	targets := q.GetTargetList()
	if idx < 0 || idx >= len(targets) {
		return term{}, false
	}
	t, ok := s.read(q.GetFromClause(), nil).term(targets[idx].GetResTarget().GetVal())
	return t, ok && t.param != ""
}

// outputNames are a SELECT's output column names; nil when one is not
// known (a * or an unnamed expression).
func outputNames(q *pg_query.SelectStmt) []string {
	if q.GetLarg() != nil {
		return outputNames(q.GetLarg())
	}
	var out []string
	for _, t := range q.GetTargetList() {
		rt := t.GetResTarget()
		switch parts, star := columnRefParts(rt.GetVal().GetColumnRef()); {
		case rt.GetName() != "":
			out = append(out, rt.GetName())
		case rt.GetVal().GetColumnRef() == nil:
			out = append(out, "?") // PostgreSQL names it ?column? or after a function
		case star || len(parts) == 0:
			return nil
		default:
			out = append(out, last(parts))
		}
	}
	return out
}

// colTerm is a column of an occurrence of this sel.
func (s *sel) colTerm(occ int, col string) term { return term{sel: s, occ: occ, col: col} }

// occOf is the occurrence of a column term of this sel.
func (s *sel) occOf(t term) (int, bool) { return t.occ, t.param == "" && t.sel == s }

// local reports whether t is a parameter or a column of this sel.
func (s *sel) local(t term) bool { return t.param != "" || t.sel == s }

// param is the sqlc parameter an expression is: $n, a cast of one, or
// sqlc.arg(name) / sqlc.narg(name).
func (s *sel) param(expr *pg_query.Node) (string, bool) {
	if n := int(expr.GetParamRef().GetNumber()); n > 0 && n <= len(s.params) {
		return s.params[n-1], true
	}
	if tc := expr.GetTypeCast(); tc != nil {
		return s.param(tc.GetArg())
	}
	fc := expr.GetFuncCall()
	if fn := strs(fc.GetFuncname()); len(fn) != 2 || fn[0] != "sqlc" || fn[1] != "arg" && fn[1] != "narg" || len(fc.GetArgs()) != 1 {
		return "", false
	}
	a := fc.GetArgs()[0]
	if parts, _ := columnRefParts(a.GetColumnRef()); len(parts) == 1 {
		return parts[0], true
	}
	name := a.GetAConst().GetSval().GetSval()
	return name, name != ""
}

// union records the strong equality a = b. A class is kept in order,
// columns (no param, all of s) before parameters, for pins to choose alike
// each run.
func (s *sel) union(a, b term) {
	if ca := s.members(a); !slices.Contains(ca, b) {
		merged := slices.Concat(ca, s.members(b))
		slices.SortFunc(merged, func(x, y term) int {
			return cmp.Or(cmp.Compare(x.param, y.param), cmp.Compare(x.occ, y.occ), cmp.Compare(x.col, y.col))
		})
		for _, t := range merged {
			s.classes[t] = merged
		}
	}
}

// members are the terms equal to t through strong equalities, t included,
// in order.
func (s *sel) members(t term) []term {
	if c, ok := s.classes[t]; ok {
		return c
	}
	return []term{t}
}

// related are the terms t equals through strong equalities and, with
// weak, an outer join's ON or a correlation.
func (s *sel) related(t term, weak bool) []term {
	terms := slices.Clone(s.members(t))
	if weak {
		for _, w := range s.weak[t] {
			// A column's class is its own sel's; a parameter's (no sel), s's.
			terms = append(terms, cmp.Or(w.sel, s).members(w)...)
		}
	}
	return terms
}

// pins are the values a column of an occurrence is pinned to, through
// strong equalities, lists, and (withWeak) an outer join's ON.
func (s *sel) pins(occ int, col string, withWeak bool) []valueRef {
	terms := s.related(s.colTerm(occ, col), withWeak)
	if i := slices.IndexFunc(terms, func(x term) bool { return x.param != "" }); i >= 0 {
		return []valueRef{{Param: terms[i].param}}
	}
	if i := slices.IndexFunc(terms, func(x term) bool { return len(s.lists[x]) > 0 }); i >= 0 {
		return s.lists[terms[i]]
	}
	return nil
}

// scopePins are the values occurrence occ is pinned to in scope sc; for a
// path, its column equals the parent key of a parent occurrence whose
// scope column is pinned.
func (s *sel) scopePins(occ int, sc ScopeDef) []valueRef {
	if !sc.IsPath() {
		return s.pins(occ, sc.Column, true)
	}
	for _, x := range s.related(s.colTerm(occ, sc.Column), true) {
		if x.sel == nil || x.sel == s && x.occ == occ || x.sel.occs[x.occ].table != sc.Parent || x.col != sc.ParentKey {
			continue // a parameter, occ itself, or not the parent's key
		}
		if v := x.sel.pins(x.occ, sc.ParentColumn, false); len(v) > 0 {
			return v
		}
	}
	return nil
}

func allUsable(vals []valueRef, sqlType string, usable usableFunc) bool {
	return len(vals) > 0 && !slices.ContainsFunc(vals, func(v valueRef) bool { return !usable(v, sqlType) })
}

// ReadScopes derives a cached read's dependencies.
func ReadScopes(q *parsed, tables Tables, schema *Schema, usable usableFunc) ReadDeps {
	e := &env{schema: schema, params: q.params, ctes: q.ctes}
	pins, cols := map[string][]ScopedRead{}, readColumns(q, tables, schema)
	// Each SELECT under m is analysed inside the ones enclosing it (outer),
	// outermost first, so that a subquery can follow a correlation outwards.
	var visit func(m proto.Message, outer *sel)
	visit = func(m proto.Message, outer *sel) {
		walk(m, func(n proto.Message) bool {
			v, ok := n.(*pg_query.SelectStmt)
			if !ok {
				return true
			}
			s := newSel(e, outer).with(v.GetWithClause()).read(v.GetFromClause(), v.GetWhereClause())
			visit(v, s)
			// The first scope of each occurrence's table (in the schema's
			// order of preference) that it is pinned to with usable values.
			for i, o := range s.occs {
				for _, sc := range schema.Scopes(o.table) {
					if vals := s.scopePins(i, sc); allUsable(vals, schema.valueType(sc), usable) {
						pins[o.table] = append(pins[o.table], ScopedRead{Scope: sc, Values: vals, Columns: cols[o.table]})
						break
					}
				}
			}
			return false
		})
	}
	visit(q.tree, nil)
	total := map[string]int{}
	for _, rv := range q.rels {
		if t, ok := schema.relTable(rv, q.ctes); ok {
			total[t]++
		}
	}
	var deps ReadDeps
	for _, t := range tables.Reads {
		// A table stays unpinned, table-wide, unless every occurrence of it
		// is pinned, including those read in a way this code does not
		// follow (outside every SELECT's FROM list).
		if n := len(pins[t]); n == 0 || n != total[t] {
			deps.Unpinned = append(deps.Unpinned, t)
			deps.Named = append(deps.Named, slotNames(t, cols[t])...)
			continue
		}
		for _, p := range pins[t] {
			deps.Named = append(deps.Named, slotNames(p.Scope.Name(), cols[t])...)
			if !slices.ContainsFunc(deps.Scoped, func(o ScopedRead) bool { return o.Scope == p.Scope && slices.Equal(o.Values, p.Values) }) {
				deps.Scoped = append(deps.Scoped, p)
			}
		}
	}
	slices.Sort(deps.Named)
	deps.Named = slices.Compact(deps.Named) // a scope pinned twice
	return deps
}
