package dbgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"go/types"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/tools/go/packages"
)

// Config says where the inputs are and what to produce.
type Config struct {
	Dir        string // module root; the other paths are relative to it
	QueriesDir string
	SchemaDir  string
	DBPackage  string // package pattern of the sqlc output, e.g. ./db
	OutPackage string // package name of the decorator
	// MetaPackage is the package name of the query metadata (Output.Meta).
	MetaPackage string
}

// Output is what one run generates.
type Output struct {
	Cache  []byte // the caching decorator, package OutPackage
	Meta   []byte // the query metadata, package MetaPackage
	Report string // the scope report (report.go)
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
	stmt        *parsed
	// Arg and Result are the Go types of its parameters (a struct, or the
	// one parameter) and result, nil when it has none.
	Arg, Result types.Type
	Hash        string
}

// GenerateAll analyses the queries once and returns every generated file
// and the scope report.
func GenerateAll(cfg Config) (Output, error) {
	schema := NewSchema()
	err := readFiles(filepath.Join(cfg.Dir, cfg.SchemaDir, "*.sql"), func(path, src string) error {
		if err := schema.Read(src); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		return Output{}, err
	}
	queries, err := ReadQueryDir(filepath.Join(cfg.Dir, cfg.QueriesDir))
	if err != nil {
		return Output{}, err
	}
	iface, err := loadQuerier(cfg.Dir, cfg.DBPackage)
	if err != nil {
		return Output{}, err
	}
	methods, err := joinMethods(queries, iface, schema)
	if err != nil {
		return Output{}, err
	}
	g, d := newGen(), fileData{Package: cfg.OutPackage, Methods: methods, Schema: schema}
	d.Tables, d.Versions = usedSlots(methods, schema)
	var out Output
	var report []byte
	g.execute(&report, "report.md.tmpl", d)
	for _, p := range []string{"context", "time", "github.com/replyrocket/replyrocket/db", "github.com/replyrocket/replyrocket/internal/cache"} {
		g.imports[p] = true
	}
	// The template names types and codecs as it prints them: a first run
	// records the imports and codecs that the second one prints, with the
	// same temporaries.
	g.execute(&out.Cache, "dbcache.go.tmpl", d)
	d.Imports, g.tmp = sortedKeys(g.imports), 0
	g.execute(&out.Cache, "dbcache.go.tmpl", d)
	d.Package = cfg.MetaPackage
	g.execute(&out.Meta, "dbmeta.go.tmpl", d)
	out.Report = string(report)
	return out, g.err
}

func loadQuerier(dir, pattern string) (*types.Interface, error) {
	pkgs, err := packages.Load(&packages.Config{Mode: packages.NeedName | packages.NeedTypes, Dir: dir}, pattern)
	switch {
	case err != nil:
		return nil, fmt.Errorf("load %s: %w", pattern, err)
	case len(pkgs) != 1:
		return nil, fmt.Errorf("load %s: got %d packages", pattern, len(pkgs))
	case len(pkgs[0].Errors) > 0:
		return nil, fmt.Errorf("load %s: %v", pattern, pkgs[0].Errors[0])
	}
	if obj := pkgs[0].Types.Scope().Lookup("Querier"); obj != nil {
		if iface, ok := obj.Type().Underlying().(*types.Interface); ok {
			return iface, nil
		}
	}
	return nil, fmt.Errorf("%s has no Querier interface (sqlc emit_interface)", pattern)
}

func joinMethods(queries []Query, iface *types.Interface, schema *Schema) ([]method, error) {
	byName := map[string]Query{}
	for _, q := range queries {
		if _, dup := byName[q.Name]; dup {
			return nil, fmt.Errorf("query %s is defined twice", q.Name)
		}
		byName[q.Name] = q
	}
	var out []method // in name order, as types orders an interface's methods
	for fn := range iface.Methods() {
		q, ok := byName[fn.Name()]
		if !ok {
			return nil, fmt.Errorf("Querier.%s has no query in the SQL files: regenerate with sqlc first", fn.Name())
		}
		delete(byName, fn.Name())
		m, err := newMethod(q, fn.Signature(), schema)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for name := range byName {
		return nil, fmt.Errorf("query %s is not in db.Querier: regenerate with sqlc first", name)
	}
	return out, applyResolvers(out, schema)
}

// newMethod analyses query q of the Querier method with signature sig.
func newMethod(q Query, sig *types.Signature, schema *Schema) (method, error) {
	m := method{Query: q}
	switch sig.Params().Len() {
	case 1:
	case 2:
		m.Arg = sig.Params().At(1).Type()
	default:
		return m, fmt.Errorf("%s: unexpected signature %s", q.Name, sig)
	}
	if sig.Results().Len() == 2 {
		m.Result = sig.Results().At(0).Type()
	}
	var err error
	if m.stmt, err = parseQuery(q.SQL); err != nil {
		return m, fmt.Errorf("%s: %s: parse SQL: %w", q.Pos(), q.Name, err)
	}
	m.Tables = Analyze(m.stmt, schema)
	_, m.WriteSlots = Slots(m.stmt, m.Tables, schema)
	if len(m.Writes) > 0 {
		m.ScopeWrites = WriteScopes(m.stmt, q.Kind, m.Tables, schema, m.usable)
	}
	if q.Cached {
		if err := checkCacheable(m); err != nil {
			return m, fmt.Errorf("%s: %w", q.Pos(), err)
		}
		// A view or a table created outside the migrations: its writes
		// would never bump it.
		if i := slices.IndexFunc(m.Reads, func(t string) bool { return schema.Columns[t] == nil }); i >= 0 {
			return m, fmt.Errorf("%s: %s: reads %s, which is not a table the migrations create", q.Pos(), m.Name, m.Reads[i])
		}
		m.Deps = ReadScopes(m.stmt, m.Tables, schema, m.usable)
	}
	m.Hash = schemaHash(q.SQL+depsSignature(m.Deps), m.Result)
	return m, nil
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
	sum := sha256.Sum256([]byte(strings.Join(strings.Fields(sql), " ") + "\x00" + shape(result, 0)))
	return hex.EncodeToString(sum[:8])
}

func shape(t types.Type, depth int) string {
	if depth > 8 {
		return "…"
	}
	switch u := t.(type) {
	case nil:
		return "" // no result
	case *types.Named:
		return types.TypeString(u, nil) + "=" + shape(u.Underlying(), depth+1)
	case *types.Pointer:
		return "*" + shape(u.Elem(), depth+1)
	case *types.Slice:
		return "[]" + shape(u.Elem(), depth+1)
	case *types.Struct:
		s := "struct{"
		for i := range u.NumFields() {
			s += u.Field(i).Name() + " " + shape(u.Field(i).Type(), depth+1) + ";"
		}
		return s + "}"
	}
	return types.TypeString(t, nil)
}

// depsSignature describes a read's dependencies for its hash: entries
// stamped under another set of dependencies must never validate.
func depsSignature(d ReadDeps) string {
	sig := strings.Join(d.Named, ",")
	for _, sr := range d.Scoped {
		sig += fmt.Sprintf(";%s=%v%v", sr.Scope.Name(), sr.Values, sr.Columns)
	}
	return sig
}
