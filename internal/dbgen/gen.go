package dbgen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/format"
	"go/types"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/tools/go/packages"
)

// Config says where the inputs are and what to produce.
type Config struct {
	Dir        string // module root; the other paths are relative to it
	QueriesDir string
	SchemaDir  string
	DBPackage  string // package pattern of the sqlc output, e.g. ./db
	OutPackage string // package name of the generated file
}

// method is one Querier method joined with its query.
type method struct {
	Query
	Tables
	// Deps are a cached read's version slots (see ReadScopes); WriteSlots
	// the table-wide slots a write bumps (see Slots) and ScopeWrites what it
	// does to each scope (see WriteScopes).
	Deps        ReadDeps
	WriteSlots  []string
	ScopeWrites []ScopeWrite
	arg         types.Type // nil for queries without parameters
	result      types.Type // nil for :exec
	hash        string
}

// Generate returns the formatted source of the decorator.
func Generate(cfg Config) ([]byte, error) {
	src, _, err := GenerateWithReport(cfg)
	return src, err
}

// GenerateWithReport returns the decorator's source and the scope report
// (report.go).
func GenerateWithReport(cfg Config) ([]byte, string, error) {
	schema := NewSchema()
	schemas, err := filepath.Glob(filepath.Join(cfg.Dir, cfg.SchemaDir, "*.sql"))
	if err != nil {
		return nil, "", err
	}
	sort.Strings(schemas)
	for _, f := range schemas {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, "", fmt.Errorf("read schema: %w", err)
		}
		if err := schema.Read(string(src)); err != nil {
			return nil, "", fmt.Errorf("%s: %w", f, err)
		}
	}
	queries, err := ReadQueryDir(filepath.Join(cfg.Dir, cfg.QueriesDir))
	if err != nil {
		return nil, "", err
	}
	iface, err := loadQuerier(cfg.Dir, cfg.DBPackage)
	if err != nil {
		return nil, "", err
	}
	methods, err := joinMethods(queries, iface, schema)
	if err != nil {
		return nil, "", err
	}
	g := newGen(cfg.OutPackage)
	// Every column of every table the queries touch gets a slot, read or
	// not, and so does every scope of the schema and each of its columns:
	// another deploy's queries may bump or read slots this one does not,
	// and each instance must mirror all of them.
	for _, t := range sortedKeys(schema.Columns) {
		g.slots = append(g.slots, t)
		for _, c := range schema.Columns[t] {
			g.slots = append(g.slots, t+SlotSep+c)
		}
		for _, sc := range schema.Scopes(t) {
			g.slots = append(g.slots, sc.Name())
			for _, c := range schema.Columns[t] {
				g.slots = append(g.slots, sc.Name()+SlotSep+c)
			}
		}
	}
	g.scopes = schema.AllScopes()
	g.schema = schema
	src, err := g.file(methods)
	if err != nil {
		return nil, "", err
	}
	out, err := format.Source(src)
	if err != nil {
		return nil, "", fmt.Errorf("format generated code: %w\n%s", err, src)
	}
	return out, report(methods), nil
}

func loadQuerier(dir, pattern string) (*types.Interface, error) {
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedTypes, Dir: dir}, pattern)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", pattern, err)
	}
	if len(pkgs) != 1 {
		return nil, fmt.Errorf("load %s: got %d packages", pattern, len(pkgs))
	}
	if len(pkgs[0].Errors) > 0 {
		return nil, fmt.Errorf("load %s: %v", pattern, pkgs[0].Errors[0])
	}
	obj := pkgs[0].Types.Scope().Lookup("Querier")
	if obj == nil {
		return nil, fmt.Errorf("%s has no Querier (sqlc emit_interface)", pattern)
	}
	iface, ok := obj.Type().Underlying().(*types.Interface)
	if !ok {
		return nil, fmt.Errorf("%s.Querier is not an interface", pattern)
	}
	return iface, nil
}

func joinMethods(queries []Query, iface *types.Interface, schema *Schema) ([]method, error) {
	byName := map[string]Query{}
	for _, q := range queries {
		if _, dup := byName[q.Name]; dup {
			return nil, fmt.Errorf("query %s is defined twice", q.Name)
		}
		byName[q.Name] = q
	}
	var out []method
	for i := 0; i < iface.NumMethods(); i++ {
		fn := iface.Method(i)
		q, ok := byName[fn.Name()]
		if !ok {
			return nil, fmt.Errorf("Querier.%s has no query in the SQL files: regenerate with sqlc first", fn.Name())
		}
		delete(byName, fn.Name())
		m := method{Query: q}
		sig := fn.Type().(*types.Signature)
		switch sig.Params().Len() {
		case 1:
		case 2:
			m.arg = sig.Params().At(1).Type()
		default:
			return nil, fmt.Errorf("%s: unexpected signature %s", fn.Name(), sig)
		}
		if sig.Results().Len() == 2 {
			m.result = sig.Results().At(0).Type()
		}
		tables, err := Analyze(q.SQL, schema)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): parse SQL: %w", q.Name, q.File, err)
		}
		m.Tables = tables
		if _, m.WriteSlots, err = Slots(q.SQL, tables, schema); err != nil {
			return nil, fmt.Errorf("%s: %s: parse SQL: %w", q.Pos(), q.Name, err)
		}
		if len(m.Writes) > 0 {
			if m.ScopeWrites, err = WriteScopes(q.SQL, q.Kind, tables, schema, m.usable); err != nil {
				return nil, fmt.Errorf("%s: %s: parse SQL: %w", q.Pos(), q.Name, err)
			}
		}
		if q.Cached {
			if err := checkCacheable(m); err != nil {
				return nil, fmt.Errorf("%s: %w", q.Pos(), err)
			}
			for _, t := range m.Reads {
				if schema.columns(t) == nil {
					// A view or a table created outside the migrations: its
					// writes would never bump it.
					return nil, fmt.Errorf("%s: %s: reads %s, which is not a table the migrations create", q.Pos(), m.Name, t)
				}
			}
			if m.Deps, err = ReadScopes(q.SQL, tables, schema, m.usable); err != nil {
				return nil, fmt.Errorf("%s: %s: parse SQL: %w", q.Pos(), q.Name, err)
			}
		}
		m.hash = schemaHash(q.SQL+depsSignature(m.Deps), m.result)
		out = append(out, m)
	}
	for name := range byName {
		return nil, fmt.Errorf("query %s is not in db.Querier: regenerate with sqlc first", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if err := applyResolvers(out, schema); err != nil {
		return nil, err
	}
	// Column slots no query writes are kept: another deploy's writes may
	// bump them, and an instance must know every slot to mirror it.
	return out, nil
}

func checkCacheable(m method) error {
	switch {
	case m.Kind != ":one" && m.Kind != ":many":
		return fmt.Errorf("%s: only :one and :many queries can be cached, not %s", m.Name, m.Kind)
	case len(m.Writes) > 0:
		return fmt.Errorf("%s: a query that writes (%s) cannot be cached", m.Name, strings.Join(m.Writes, ", "))
	case len(m.Reads) == 0:
		return fmt.Errorf("%s: reads no table, so nothing would ever invalidate it", m.Name)
	}
	return nil
}

// schemaHash changes when the SQL or the result's Go shape does, so new
// code never decodes entries an old deploy wrote.
func schemaHash(sql string, result types.Type) string {
	h := sha256.New()
	h.Write([]byte(strings.Join(strings.Fields(sql), " ")))
	h.Write([]byte{0})
	if result != nil {
		h.Write([]byte(shape(result, 0)))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func shape(t types.Type, depth int) string {
	if depth > 8 {
		return "…"
	}
	switch u := t.(type) {
	case *types.Named:
		return types.TypeString(u, nil) + "=" + shape(u.Underlying(), depth+1)
	case *types.Pointer:
		return "*" + shape(u.Elem(), depth+1)
	case *types.Slice:
		return "[]" + shape(u.Elem(), depth+1)
	case *types.Struct:
		var b strings.Builder
		b.WriteString("struct{")
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			fmt.Fprintf(&b, "%s %s;", f.Name(), shape(f.Type(), depth+1))
		}
		b.WriteString("}")
		return b.String()
	}
	return types.TypeString(t, nil)
}

type gen struct {
	pkg     string
	imports map[string]string
	body    bytes.Buffer
	tmp     int
	slots   []string
	scopes  []ScopeDef
	schema  *Schema
	// needResolvers are the resolvers the writes use, by query name.
	needResolvers map[string]resolver
	codecs        map[string]string // type string -> codec variable
	order         []types.Type
}

func newGen(pkg string) *gen {
	return &gen{pkg: pkg, imports: map[string]string{}, codecs: map[string]string{}, needResolvers: map[string]resolver{}}
}

func (g *gen) qual(p *types.Package) string {
	g.imports[p.Path()] = p.Name()
	return p.Name()
}

func (g *gen) typ(t types.Type) string { return types.TypeString(t, g.qual) }

func (g *gen) p(format string, args ...any) { fmt.Fprintf(&g.body, format+"\n", args...) }

func (g *gen) file(ms []method) ([]byte, error) {
	g.imports["context"] = "context"
	g.imports["time"] = "time"
	g.imports["github.com/replyrocket/replyrocket/db"] = "db"
	g.imports["github.com/replyrocket/replyrocket/internal/cache"] = "cache"
	all, slots := map[string]bool{}, map[string]bool{}
	for _, m := range ms {
		for _, t := range append(append([]string{}, m.Reads...), m.Writes...) {
			all[t], slots[t] = true, true
		}
		for _, v := range append(append([]string{}, m.Deps.Named...), m.WriteSlots...) {
			slots[v] = true
		}
	}
	for _, v := range g.slots {
		if all[tableOfSlot(v)] {
			slots[v] = true
		}
	}
	g.p("// Tables are every table the queries read or write.")
	g.p("var Tables = %s", strList(sorted(all)))
	g.p("")
	g.p("// Versions are the named version slots: one per table and table#column,")
	g.p("// and one per scope and scope#column (the scope-wide versions).")
	g.p("var Versions = %s", strList(sorted(slots)))
	g.p("")
	g.p("// TriggerWrites are, for each table whose triggers write other tables,")
	g.p("// the tables a write of any kind to it may change through them (and")
	g.p("// through their triggers in turn): InvalidateTable follows them.")
	g.p("var TriggerWrites = map[string][]string{")
	for _, t := range sorted(all) {
		if ws := g.schema.triggerTables(t); len(ws) > 0 {
			g.p("%q: %s,", t, strList(ws))
		}
	}
	g.p("}")
	g.p("")
	g.p("// Scopes are the scopes with hashed version slots, from the schema's keys")
	g.p("// and foreign keys.")
	g.p("var Scopes = []cache.Scope{")
	for _, sc := range g.scopes {
		if all[sc.Table] {
			g.p("{Name: %q, Table: %q},", sc.Name(), sc.Table)
		}
	}
	g.p("}")
	g.p("")
	g.p("// Queries describe every query: what it reads and writes, and its cache")
	g.p("// settings (zero TTL: not cached).")
	g.p("var Queries = []QueryInfo{")
	for _, m := range ms {
		g.p("{Name: %q, Kind: %q, Reads: %s, Writes: %s, TTL: %s, SWR: %s},",
			m.Name, m.Kind, strList(m.Reads), strList(m.Writes), dur(m.TTL), dur(m.SWR))
	}
	g.p("}")
	g.p("")
	g.p("// queries are the registered cached queries.")
	g.p("type queries struct {")
	for _, m := range ms {
		if m.Cached {
			g.p("%s *cache.Query", m.Name)
		}
	}
	g.p("}")
	g.p("")
	g.p("func (q *queries) register(c *cache.Cache) error {")
	g.p("var err error")
	for _, m := range ms {
		if !m.Cached {
			continue
		}
		g.p("if q.%s, err = c.Register(cache.QuerySpec{Name: %q, Hash: %q, TTL: %s, SWR: %s, Reads: %s, Scoped: %s}); err != nil { return err }",
			m.Name, m.Name, m.hash, dur(m.TTL), dur(m.SWR), strList(m.Deps.Named), scopeDeps(m.Deps.Scoped))
	}
	g.p("return nil")
	g.p("}")
	for _, m := range ms {
		if err := g.method(m); err != nil {
			return nil, err
		}
	}
	if err := g.resolverFuncs(); err != nil {
		return nil, err
	}
	for i := 0; i < len(g.order); i++ {
		if err := g.codec(g.order[i]); err != nil {
			return nil, err
		}
	}
	var head bytes.Buffer
	head.WriteString("// Code generated by dbgen from queries/*.sql and db.Querier. DO NOT EDIT.\n\n")
	fmt.Fprintf(&head, "package %s\n\nimport (\n", g.pkg)
	paths := make([]string, 0, len(g.imports))
	for p := range g.imports {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	// Standard library first, as goimports groups them.
	for _, std := range []bool{true, false} {
		for _, p := range paths {
			if !strings.Contains(strings.Split(p, "/")[0], ".") == std {
				fmt.Fprintf(&head, "%q\n", p)
			}
		}
		if std {
			head.WriteString("\n")
		}
	}
	head.WriteString(")\n\n")
	head.Write(g.body.Bytes())
	return head.Bytes(), nil
}

func (g *gen) method(m method) error {
	params := "ctx context.Context"
	call := "ctx"
	if m.arg != nil {
		params += ", arg " + g.typ(m.arg)
		call += ", arg"
	}
	res := "error"
	if m.result != nil {
		res = "(" + g.typ(m.result) + ", error)"
	}
	switch {
	case m.Cached:
		codec, err := g.codecVar(m.result)
		if err != nil {
			return fmt.Errorf("%s result: %w", m.Name, err)
		}
		keyFn := "key" + m.Name
		argType, callArg, loadCall := "struct{}", "call[struct{}]{q: s.inner}", "c.q."+m.Name+"(ctx)"
		if m.arg != nil {
			argType, callArg, loadCall = g.typ(m.arg), "call["+g.typ(m.arg)+"]{q: s.inner, arg: arg}", "c.q."+m.Name+"(ctx, c.arg)"
		}
		depsFn := "nil"
		if len(m.Deps.Scoped) > 0 {
			depsFn = "deps" + m.Name
		}
		g.p("")
		g.p("// %s is cached for %s; it depends on %s.", m.Name, m.TTL, describeDeps(m.Deps))
		g.p("func (s *Store) %s(%s) %s {", m.Name, params, res)
		g.p("var buf [128]byte")
		g.p("key := %s(append(buf[:0], s.q.%s.Prefix()...)%s)", keyFn, m.Name, argIf(m.arg))
		g.p("return cache.ReadWith(ctx, s.q.%s, key, &%s, %s, load%s, %s)", m.Name, codec, callArg, m.Name, depsFn)
		g.p("}")
		g.p("")
		g.p("func load%s(ctx context.Context, c call[%s]) %s { return %s }", m.Name, argType, res, loadCall)
		if err := g.depsFunc(m, argType); err != nil {
			return err
		}
		g.p("")
		g.p("func (t *txQuerier) %s(%s) %s {", m.Name, params, res)
		g.p("t.q.%s.Bypass(ctx)", m.Name)
		g.p("return t.inner.%s(%s)", m.Name, call)
		g.p("}")
		g.p("")
		g.p("func %s(b []byte%s) []byte {", keyFn, paramIf(m.arg, g))
		if m.arg != nil {
			if err := g.enc("arg", m.arg, true); err != nil {
				return fmt.Errorf("%s argument: %w", m.Name, err)
			}
		}
		g.p("return b")
		g.p("}")
	case len(m.Writes) > 0:
		bumpArgs := "b"
		if m.arg != nil {
			bumpArgs += ", arg"
		}
		if m.result != nil && (m.Kind == ":one" || m.Kind == ":many") {
			bumpArgs += ", r"
		}
		bumpArgs += ", err == nil"
		g.p("")
		g.p("// %s writes %s; see bump%s.", m.Name, strings.Join(m.Writes, ", "), m.Name)
		g.p("func (s *Store) %s(%s) %s {", m.Name, params, res)
		changed := "true"
		wcall := strings.Replace(call, "ctx", "wctx", 1)
		g.p("wctx, w := trackWrites(ctx)")
		switch {
		case m.result == nil:
			g.p("err := s.inner.%s(%s)", m.Name, wcall)
		default:
			g.p("r, err := s.inner.%s(%s)", m.Name, wcall)
			if m.Kind == ":execrows" || m.Kind == ":copyfrom" {
				changed = "r > 0"
			}
		}
		g.p("s.afterWrite(ctx, w, %s, err, func(b *cache.Bumps) { bump%s(ctx, s.inner, %s) })", changed, m.Name, bumpArgs)
		if m.result == nil {
			g.p("return err")
		} else {
			g.p("return r, err")
		}
		g.p("}")
		g.p("")
		g.p("func (t *txQuerier) %s(%s) %s {", m.Name, params, res)
		if m.result == nil {
			g.p("err := t.inner.%s(%s)", m.Name, call)
		} else {
			g.p("r, err := t.inner.%s(%s)", m.Name, call)
		}
		g.p("t.collect(func(b *cache.Bumps) { bump%s(ctx, t.inner, %s) })", m.Name, bumpArgs)
		if m.result == nil {
			g.p("return err")
		} else {
			g.p("return r, err")
		}
		g.p("}")
		if err := g.bumpFunc(m); err != nil {
			return err
		}
	default:
		g.p("")
		g.p("// %s reads %s and writes no table. Not cached.", m.Name, orNone(m.Reads))
		g.p("func (s *Store) %s(%s) %s { return s.inner.%s(%s) }", m.Name, params, res, m.Name, call)
		g.p("")
		g.p("func (t *txQuerier) %s(%s) %s { return t.inner.%s(%s) }", m.Name, params, res, m.Name, call)
	}
	return nil
}

// depsFunc emits the function adding a read's scope values, when it has
// any.
func (g *gen) depsFunc(m method, argType string) error {
	if len(m.Deps.Scoped) == 0 {
		return nil
	}
	g.p("")
	g.p("func deps%s(d *cache.Deps, c call[%s]) {", m.Name, argType)
	g.p("arg := c.arg")
	for i, sr := range m.Deps.Scoped {
		for _, v := range sr.Values {
			gv, ok := m.resolve(v)
			if !ok {
				return fmt.Errorf("%s: %s: value %s of scope %s has no Go expression", m.Pos(), m.Name, v, sr.Scope.Name())
			}
			fn, arg, err := hashCall(gv, "Add", "AddString", "AddInt")
			if err != nil {
				return fmt.Errorf("%s: %s: %w", m.Pos(), m.Name, err)
			}
			line := fmt.Sprintf("d.%s(%d, %s)", fn, i, arg)
			if gv.rangeOver != "" {
				line = fmt.Sprintf("for _, v := range %s { %s }", gv.rangeOver, line)
			}
			g.p("%s", line)
		}
	}
	g.p("}")
	return nil
}

// bumpFunc emits the function that collects what a write invalidates.
func (g *gen) bumpFunc(m method) error {
	// q runs the resolvers: the store after an autocommitted write, the
	// transaction inside one.
	params := "ctx context.Context, q db.Querier, b *cache.Bumps"
	if m.arg != nil {
		params += ", arg " + g.typ(m.arg)
	}
	if m.result != nil && (m.Kind == ":one" || m.Kind == ":many") {
		params += ", r " + g.typ(m.result)
	}
	params += ", ok bool"
	g.p("")
	g.p("// bump%s collects what %s invalidates; ok is false when the", m.Name, m.Name)
	g.p("// statement failed with an unknown outcome, so RETURNING values are missing.")
	for _, w := range m.ScopeWrites {
		g.p("//   - %s", describeWrite(w))
	}
	g.p("func bump%s(%s) {", m.Name, params)
	g.p("b.Table(%s)", strArgs(m.WriteSlots))
	// Path scopes looked up through the same resolver from the same keys
	// (a table's and, through a trigger, another's) share one lookup.
	lookups := map[string][]ScopeWrite{}
	for _, w := range m.ScopeWrites {
		if !w.Wide && w.Through.method != "" {
			k := lookupKey(w)
			lookups[k] = append(lookups[k], w)
		}
	}
	for _, w := range m.ScopeWrites {
		cols := strArgs(w.Columns)
		if w.Wide {
			g.p("b.Wide(%q, %s)", w.Scope.Name(), cols)
			continue
		}
		if w.Through.method != "" {
			group := lookups[lookupKey(w)]
			if group == nil {
				continue // emitted with the first of its group
			}
			delete(lookups, lookupKey(w))
			if err := g.resolveCall(m, group); err != nil {
				return err
			}
			continue
		}
		var fromResult []string
		for _, v := range w.Values {
			gv, ok := m.resolve(v)
			if !ok {
				return fmt.Errorf("%s: %s: value %s of scope %s has no Go expression", m.Pos(), m.Name, v, w.Scope.Name())
			}
			fn, arg, err := hashCall(gv, "Value", "String", "Int")
			if err != nil {
				return fmt.Errorf("%s: %s: %w", m.Pos(), m.Name, err)
			}
			line := fmt.Sprintf("b.%s(%q, %s, %s)", fn, w.Scope.Name(), arg, cols)
			if gv.rangeOver != "" {
				line = fmt.Sprintf("for _, v := range %s { %s }", gv.rangeOver, line)
			}
			if gv.result {
				fromResult = append(fromResult, line)
			} else {
				g.p("%s", line)
			}
		}
		if len(fromResult) > 0 {
			g.p("if ok {")
			for _, l := range fromResult {
				g.p("%s", l)
			}
			g.p("} else {")
			g.p("b.Wide(%q, %s)", w.Scope.Name(), cols)
			g.p("}")
		}
	}
	g.p("}")
	return nil
}

// codecVar names the codec of t, queueing it for emission.
func (g *gen) codecVar(t types.Type) (string, error) {
	key := types.TypeString(t, nil)
	if v, ok := g.codecs[key]; ok {
		return v, nil
	}
	name := "codec" + typeIdent(t)
	for _, v := range g.codecs {
		if v == name {
			return "", fmt.Errorf("two result types are both named %s", name)
		}
	}
	g.codecs[key] = name
	g.order = append(g.order, t)
	return name, nil
}

func (g *gen) codec(t types.Type) error {
	id := typeIdent(t)
	ts := g.typ(t)
	clone := "nil"
	if needsClone(t) {
		clone = "clone" + id
	}
	g.p("")
	g.p("var codec%s = cache.Codec[%s]{Encode: enc%s, Decode: dec%s, Clone: %s}", id, ts, id, id, clone)
	g.p("")
	g.p("func enc%s(b []byte, v %s) []byte {", id, ts)
	if err := g.enc("v", t, false); err != nil {
		return fmt.Errorf("encode %s: %w", ts, err)
	}
	g.p("return b")
	g.p("}")
	g.p("")
	g.p("func dec%s(d *cache.Decoder) (v %s) {", id, ts)
	if err := g.dec("v", t); err != nil {
		return fmt.Errorf("decode %s: %w", ts, err)
	}
	g.p("return v")
	g.p("}")
	if clone != "nil" {
		g.p("")
		g.p("func clone%s(v %s) %s {", id, ts, ts)
		g.fix("v", t)
		g.p("return v")
		g.p("}")
	}
	return nil
}

func (g *gen) next(prefix string) string {
	g.tmp++
	return fmt.Sprintf("%s%d", prefix, g.tmp)
}

func isTime(t types.Type) bool {
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "time" && n.Obj().Name() == "Time"
}

func isByte(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Kind() == types.Byte
}

// enc emits statements appending the canonical encoding of x (of type t)
// to b. key selects the key form of times (the instant only).
func (g *gen) enc(x string, t types.Type, key bool) error {
	if isTime(t) {
		if key {
			g.p("b = cache.AppendTimeKey(b, %s)", x)
		} else {
			g.p("b = cache.AppendTime(b, %s)", x)
		}
		return nil
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Kind() == types.Bool:
			g.p("b = cache.AppendBool(b, bool(%s))", x)
		case u.Info()&types.IsInteger != 0 && u.Info()&types.IsUnsigned != 0:
			g.p("b = cache.AppendUint64(b, uint64(%s))", x)
		case u.Info()&types.IsInteger != 0:
			g.p("b = cache.AppendInt64(b, int64(%s))", x)
		case u.Info()&types.IsFloat != 0:
			g.p("b = cache.AppendFloat64(b, float64(%s))", x)
		case u.Kind() == types.String:
			g.p("b = cache.AppendString(b, string(%s))", x)
		default:
			return fmt.Errorf("unsupported type %s", t)
		}
	case *types.Array:
		if !isByte(u.Elem()) {
			return fmt.Errorf("unsupported type %s (only byte arrays)", t)
		}
		g.p("b = append(b, %s[:]...)", x)
	case *types.Pointer:
		g.p("if %s == nil { b = append(b, 0) } else {", x)
		g.p("b = append(b, 1)")
		if err := g.enc("(*"+x+")", u.Elem(), key); err != nil {
			return err
		}
		g.p("}")
	case *types.Slice:
		if isByte(u.Elem()) {
			g.p("b = cache.AppendBytes(b, []byte(%s))", x)
			return nil
		}
		e := g.next("e")
		g.p("b = cache.AppendLen(b, len(%s), %s == nil)", x, x)
		g.p("for _, %s := range %s {", e, x)
		if err := g.enc(e, u.Elem(), key); err != nil {
			return err
		}
		g.p("}")
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if err := g.enc(x+"."+f.Name(), f.Type(), key); err != nil {
				return fmt.Errorf("field %s: %w", f.Name(), err)
			}
		}
	default:
		return fmt.Errorf("unsupported type %s", t)
	}
	return nil
}

// dec emits statements decoding into the addressable x.
func (g *gen) dec(x string, t types.Type) error {
	if isTime(t) {
		g.p("%s = d.ReadTime()", x)
		return nil
	}
	ts := g.typ(t)
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Kind() == types.Bool:
			g.p("%s = %s(d.ReadBool())", x, ts)
		case u.Info()&types.IsInteger != 0 && u.Info()&types.IsUnsigned != 0:
			g.p("%s = %s(d.ReadUint64())", x, ts)
		case u.Info()&types.IsInteger != 0:
			g.p("%s = %s(d.ReadInt64())", x, ts)
		case u.Info()&types.IsFloat != 0:
			g.p("%s = %s(d.ReadFloat64())", x, ts)
		case u.Kind() == types.String:
			g.p("%s = %s(d.ReadString())", x, ts)
		default:
			return fmt.Errorf("unsupported type %s", t)
		}
	case *types.Array:
		if !isByte(u.Elem()) {
			return fmt.Errorf("unsupported type %s (only byte arrays)", t)
		}
		g.p("d.ReadFixed(%s[:])", x)
	case *types.Pointer:
		v := g.next("p")
		g.p("if d.ReadBool() {")
		g.p("%s := new(%s)", v, g.typ(u.Elem()))
		if err := g.dec("(*"+v+")", u.Elem()); err != nil {
			return err
		}
		g.p("%s = %s", x, v)
		g.p("}")
	case *types.Slice:
		if isByte(u.Elem()) {
			g.p("%s = %s(d.ReadBytes())", x, ts)
			return nil
		}
		n, i := g.next("n"), g.next("i")
		g.p("if %s := d.ReadLen(); %s >= 0 {", n, n)
		g.p("%s = make(%s, %s)", x, ts, n)
		g.p("for %s := range %s {", i, x)
		if err := g.dec(x+"["+i+"]", u.Elem()); err != nil {
			return err
		}
		g.p("}")
		g.p("}")
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if err := g.dec(x+"."+f.Name(), f.Type()); err != nil {
				return fmt.Errorf("field %s: %w", f.Name(), err)
			}
		}
	default:
		return fmt.Errorf("unsupported type %s", t)
	}
	return nil
}

func needsClone(t types.Type) bool {
	if isTime(t) {
		return false
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer, *types.Slice:
		return true
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			if needsClone(u.Field(i).Type()) {
				return true
			}
		}
	}
	return false
}

// fix emits statements replacing, in the addressable copy x, every
// pointer and slice with a copy, so the caller shares nothing with the
// cache.
func (g *gen) fix(x string, t types.Type) {
	if !needsClone(t) {
		return
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer:
		v := g.next("p")
		g.p("if %s != nil {", x)
		g.p("%s := *%s", v, x)
		g.fix(v, u.Elem())
		g.p("%s = &%s", x, v)
		g.p("}")
	case *types.Slice:
		s, i := g.next("s"), g.next("i")
		g.p("if %s != nil {", x)
		g.p("%s := make(%s, len(%s))", s, g.typ(t), x)
		g.p("copy(%s, %s)", s, x)
		if needsClone(u.Elem()) {
			g.p("for %s := range %s {", i, s)
			g.fix(s+"["+i+"]", u.Elem())
			g.p("}")
		}
		g.p("%s = %s", x, s)
		g.p("}")
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			g.fix(x+"."+f.Name(), f.Type())
		}
	}
}

// typeIdent turns a type into an identifier fragment: db.Campaign ->
// Campaign, []db.Campaign -> CampaignSlice, *int64 -> Int64Ptr.
func typeIdent(t types.Type) string {
	switch u := t.(type) {
	case *types.Named:
		return u.Obj().Name()
	case *types.Slice:
		return typeIdent(u.Elem()) + "Slice"
	case *types.Pointer:
		return typeIdent(u.Elem()) + "Ptr"
	case *types.Basic:
		return strings.ToUpper(u.Name()[:1]) + u.Name()[1:]
	}
	return "T"
}

func strList(s []string) string {
	if len(s) == 0 {
		return "nil"
	}
	return "[]string{" + strArgs(s) + "}"
}

func strArgs(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d * time.Hour", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d * time.Minute", d/time.Minute)
	case d%time.Second == 0:
		return fmt.Sprintf("%d * time.Second", d/time.Second)
	}
	return fmt.Sprintf("%d * time.Nanosecond", int64(d))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no table"
	}
	return strings.Join(s, ", ")
}

func argIf(arg types.Type) string {
	if arg == nil {
		return ""
	}
	return ", arg"
}

func paramIf(arg types.Type, g *gen) string {
	if arg == nil {
		return ""
	}
	return ", arg " + g.typ(arg)
}

// lookupKey groups path writes that look up the same keys through the
// same resolver.
func lookupKey(w ScopeWrite) string { return w.Through.method + fmt.Sprint(w.Values) }

// resolveCall emits the collection of a group of writes' keys (the same
// for each) and one lookup of their path values through a resolver, which
// bumps every scope of the group.
func (g *gen) resolveCall(m method, group []ScopeWrite) error {
	w := group[0]
	r := w.Through
	g.needResolvers[r.method] = r
	keys := g.next("keys")
	g.p("var %s []%s", keys, g.typ(r.keyType))
	var fromResult bool
	for _, v := range w.Values {
		gv, ok := m.resolve(v)
		if !ok {
			return fmt.Errorf("%s: %s: key %s of scope %s has no Go expression", m.Pos(), m.Name, v, w.Scope.Name())
		}
		line := fmt.Sprintf("%s = append(%s, %s)", keys, keys, gv.expr)
		if gv.rangeOver != "" {
			line = fmt.Sprintf("for _, v := range %s { %s }", gv.rangeOver, line)
		}
		fromResult = fromResult || gv.result
		g.p("%s", line)
	}
	fn, arg, err := hashCall(goValue{expr: "v", typ: r.columnType}, "Value", "String", "Int")
	if err != nil {
		return fmt.Errorf("resolver %s: %w", r.method, err)
	}
	vals, found := g.next("vals"), g.next("found")
	cond := found
	if fromResult {
		cond = "ok && " + found
	}
	g.p("if %s, %s := resolve%s(ctx, q, %s); %s {", vals, found, r.method, keys, cond)
	g.p("for _, v := range %s {", vals)
	for _, gw := range group {
		g.p("b.%s(%q, %s, %s)", fn, gw.Scope.Name(), arg, strArgs(gw.Columns))
	}
	g.p("}")
	g.p("} else {")
	for _, gw := range group {
		g.p("b.Wide(%q, %s)", gw.Scope.Name(), strArgs(gw.Columns))
	}
	g.p("}")
	return nil
}

// resolverFuncs emits one lookup function per resolver used.
func (g *gen) resolverFuncs() error {
	for _, name := range sortedKeys(g.needResolvers) {
		r := g.needResolvers[name]
		kt := g.typ(r.keyType)
		g.p("")
		g.p("// resolve%s returns the %s of the %s rows whose %s are keys, looked", name, r.column, r.parent, r.key)
		g.p("// up through %s; false when the lookup fails or misses a key, or there", name)
		g.p("// are too many keys: the caller bumps wide then.")
		g.p("func resolve%s(ctx context.Context, q db.Querier, keys []%s) ([]%s, bool) {", name, kt, g.typ(r.columnType))
		g.p("seen := make(map[%s]struct{}, len(keys))", kt)
		g.p("uniq := make([]%s, 0, len(keys))", kt)
		g.p("for _, k := range keys { if _, dup := seen[k]; !dup { seen[k] = struct{}{}; uniq = append(uniq, k) } }")
		g.p("if len(uniq) == 0 { return nil, true }")
		g.p("if len(uniq) > cache.MaxScopeValues { return nil, false }")
		g.p("rows, err := q.%s(ctx, uniq)", name)
		g.p("if err != nil || len(rows) != len(uniq) { return nil, false }")
		g.p("out := make([]%s, len(rows))", g.typ(r.columnType))
		g.p("for i, row := range rows { out[i] = row.%s }", r.columnField)
		g.p("return out, true")
		g.p("}")
	}
	return nil
}

// scopeDeps is the Go literal of a read's scope dependencies.
func scopeDeps(srs []ScopedRead) string {
	if len(srs) == 0 {
		return "nil"
	}
	parts := make([]string, len(srs))
	for i, sr := range srs {
		parts[i] = fmt.Sprintf("{Scope: %q, Columns: %s}", sr.Scope.Name(), strList(sr.Columns))
	}
	return "[]cache.ScopeDep{" + strings.Join(parts, ", ") + "}"
}

// depsSignature describes a read's dependencies for its hash: entries
// stamped under another set of dependencies must never validate.
func depsSignature(d ReadDeps) string {
	var b strings.Builder
	b.WriteString(strings.Join(d.Named, ","))
	for _, sr := range d.Scoped {
		fmt.Fprintf(&b, ";%s=%v%v", sr.Scope.Name(), sr.Values, sr.Columns)
	}
	return b.String()
}

// describeDeps says in words what a read depends on.
func describeDeps(d ReadDeps) string {
	var parts []string
	for _, sr := range d.Scoped {
		vals := make([]string, len(sr.Values))
		for i, v := range sr.Values {
			vals[i] = v.String()
		}
		parts = append(parts, fmt.Sprintf("%s = %s", sr.Scope.Name(), strings.Join(vals, ", ")))
	}
	for _, t := range d.Unpinned {
		parts = append(parts, t+" table-wide")
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, "; ")
}

// describeWrite says in words what a write does to one scope.
func describeWrite(w ScopeWrite) string {
	if w.Wide {
		return fmt.Sprintf("%s: table-wide (%s)", w.Scope.Name(), w.Why)
	}
	vals := make([]string, len(w.Values))
	for i, v := range w.Values {
		vals[i] = v.String()
	}
	return fmt.Sprintf("%s: %s (%s)", w.Scope.Name(), strings.Join(vals, ", "), w.Why)
}

// tableOfSlot is the table of a named slot: "emails", "emails#is_opened",
// "emails.campaign_id#is_opened" all belong to emails.
func tableOfSlot(slot string) string {
	t, _, _ := strings.Cut(slot, SlotSep)
	t, _, _ = strings.Cut(t, ".")
	return t
}
