package dbgen

import (
	"bytes"
	"embed"
	"fmt"
	"go/doc/comment"
	"go/format"
	"go/types"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Emitting: dbcache.go.tmpl prints db/dbcache through functions of gen (Go
// types as the file names them, with its imports; the codecs; a write's
// bumps grouped by lookup), codec.go.tmpl the key encodings and codecs;
// dbmeta.go.tmpl prints db/dbmeta (the queries' tables and the schema's
// trigger writes, for packages that need them without the cache: replica
// routing), and report.md.tmpl the scope report.

//go:embed *.tmpl
var templates embed.FS

// gen is the state of one generated file: its imports, temporaries and
// codecs; and the first error of the templates it ran.
type gen struct {
	imports map[string]bool
	tmp     int
	codecs  []types.Type // in the order named
	tmpl    *template.Template
	err     error
}

// newGen parses the templates, their functions bound to the new gen.
func newGen() *gen {
	g := &gen{imports: map[string]bool{}}
	g.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"list":          goList,
		"dur":           dur,
		"join":          strings.Join,
		"values":        values,
		"std":           func(path string) bool { return !strings.Contains(strings.Split(path, "/")[0], ".") },
		"has":           func(list []string, s string) bool { return slices.Contains(list, s) },
		"describeDeps":  describeDeps,
		"describeWrite": describeWrite,
		"wrap":          wrap,
		"inLoop":        inLoop,
		"bumpCall":      bumpCall,
		"hash":          hashValue,
		"bumps":         g.bumpBody,
		"codec":         g.codecVar,
		"codecs":        func() []types.Type { return g.codecs },
		"call":          func(fn string, args []string) string { return bracketed(fn+"(", ")", quoted(args...), 90) },
		"kind":          codecKind, "basic": basicCodec, "lower": strings.ToLower, "needsClone": needsClone,
		"typ": g.typ, "next": g.next,
		"ident": typeIdent,
		"at":    codeArg,
	}).ParseFS(templates, "*.tmpl"))
	return g
}

func (g *gen) typ(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string {
		g.imports[p.Path()] = true
		return p.Name()
	})
}

func (g *gen) next(prefix string) string {
	g.tmp++
	return fmt.Sprintf("%s%d", prefix, g.tmp)
}

// fileData is what the templates print.
type fileData struct {
	Package  string
	Imports  []string
	Versions []string
	Tables   []string
	Methods  []method
	Schema   *Schema
}

// execute prints template name into out, Go source formatted, unless an
// earlier template failed.
func (g *gen) execute(out *[]byte, name string, d fileData) {
	if g.err != nil {
		return
	}
	var src bytes.Buffer
	err := g.tmpl.ExecuteTemplate(&src, name, d)
	switch {
	case err != nil:
		g.err = fmt.Errorf("generate %s: %w", name, err)
	case !strings.HasSuffix(name, ".go.tmpl"):
		*out = src.Bytes()
	default:
		if *out, err = format.Source(src.Bytes()); err != nil {
			g.err = fmt.Errorf("format generated %s: %w\n%s", name, err, src.Bytes())
		}
	}
}

// usedSlots are the tables the queries touch and their named slots. Every
// column of such a table gets a slot, read or not, and so does every scope
// of the schema and each of its columns: another deploy's queries may bump
// or read slots this one does not, and each instance must mirror all of
// them.
func usedSlots(ms []method, schema *Schema) (tables, slots []string) {
	all := map[string]bool{}
	for _, m := range ms {
		for _, t := range slices.Concat(m.Reads, m.Writes) {
			all[t] = true
		}
	}
	for t := range all {
		slots = append(slots, slotNames(t, schema.Columns[t])...)
		for _, sc := range schema.Scopes(t) {
			slots = append(slots, slotNames(sc.Name(), schema.Columns[t])...)
		}
	}
	slices.Sort(slots)
	return sortedKeys(all), slots
}

// Returns tells whether a write's result holds its RETURNING rows.
func (m method) Returns() bool { return m.Result != nil && (m.Kind == ":one" || m.Kind == ":many") }

// bumpData is one scope write of a write's bumps or, with Group set, one
// lookup of the writes' keys (their Values) through their resolver, whose
// rows' values (hashed as Fn) bump every write of Group.
type bumpData struct {
	ScopeWrite
	Group             []ScopeWrite
	Resolver, KeyType string
	Row               goValue // a resolved row's value
}

// hashValue resolves value v of scope sc in m to the Deps (or, with bump,
// Bumps) method and argument that hash it.
func hashValue(m method, v valueRef, sc ScopeDef, bump bool) (goValue, error) {
	gv, ok := m.resolve(v)
	if !ok {
		return gv, fmt.Errorf("%s: %s: value %s of scope %s has no Go expression", m.Pos(), m.Name, v, sc.Name())
	}
	gv, err := hashed(gv, bump)
	if err != nil {
		return gv, fmt.Errorf("%s: %s: %w", m.Pos(), m.Name, err)
	}
	return gv, nil
}

// bumpBody groups a write's scope writes for the template. Path scopes
// looked up through the same resolver from the same keys (a table's and,
// through a trigger, another's) share one lookup, made with the first of
// its group.
func (g *gen) bumpBody(m method) ([]bumpData, error) {
	var out []bumpData
	looked := map[string]bool{}
	for _, w := range m.ScopeWrites {
		r, k := w.Through, w.Through.method+fmt.Sprint(w.Values)
		switch {
		case w.Wide || r.method == "":
			out = append(out, bumpData{ScopeWrite: w})
		case !looked[k]:
			looked[k] = true
			group := slices.DeleteFunc(slices.Clone(m.ScopeWrites), func(o ScopeWrite) bool {
				return o.Wide || o.Through.method+fmt.Sprint(o.Values) != k
			})
			row, err := hashed(goValue{Expr: "row." + r.columnField, typ: r.columnType}, true)
			if err != nil {
				return nil, fmt.Errorf("resolver %s: %w", r.method, err)
			}
			out = append(out, bumpData{w, group, r.method, g.typ(r.keyType), row})
		}
	}
	return out, nil
}

// inLoop wraps stmt in the loop over the values of rangeOver, if any.
func inLoop(rangeOver, stmt string) string {
	if rangeOver == "" {
		return stmt
	}
	return fmt.Sprintf("for _, v := range %s {\n%s\n}", rangeOver, stmt)
}

// goList is the Go literal of a []string: nil when empty, on one line
// when short, else one element per line.
func goList(s []string) string {
	if len(s) == 0 {
		return "nil"
	}
	return bracketed("[]string{", "}", quoted(s...), 68)
}

// bumpCall is the call of Bumps method fn for w's scope: b.Wide, or a
// method that bumps value arg.
func bumpCall(fn string, w ScopeWrite, arg ...string) string {
	return bracketed("b."+fn+"(", ")", slices.Concat(quoted(w.Scope.Name()), arg, quoted(w.Columns...)), 90)
}

// bracketed is items between start and end: on one line when it fits in
// width columns (a call's 90, a list's 68), else one item a line.
func bracketed(start, end string, items []string, width int) string {
	if line := start + strings.Join(items, ", ") + end; len(line) <= width {
		return line
	}
	return start + "\n" + strings.Join(items, ",\n") + ",\n" + end
}

func quoted(s ...string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// wrap fills text into comment lines of at most 76 columns: the first
// starts with first, the others with next (of the same width).
func wrap(first, next, text string) string {
	p := comment.Printer{TextPrefix: next, TextWidth: 76 - len(next)}
	out := string(p.Text(new(comment.Parser).Parse(text)))
	return first + strings.TrimPrefix(strings.TrimSuffix(out, "\n"), next)
}

// dur is d as a Go expression: 0, else a count of its largest whole unit.
func dur(d time.Duration) string {
	units := []time.Duration{time.Hour, time.Minute, time.Second, time.Nanosecond}
	for i, name := range []string{"Hour", "Minute", "Second", "Nanosecond"} {
		if d != 0 && d%units[i] == 0 {
			return fmt.Sprintf("%d * time.%s", d/units[i], name)
		}
	}
	return "0"
}
