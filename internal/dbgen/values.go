package dbgen

import (
	"fmt"
	"go/types"
	"slices"
	"strings"
)

// goValue is a scope value as Go code of a generated method: Expr, for
// each v of the slice Range when set; Result marks a value of the
// statement's result, known only when it succeeded. Fn is the Deps or
// Bumps method that hashes it and Arg the expression it takes (hashed).
type goValue struct {
	Range, Expr string
	typ         types.Type
	Result      bool
	Fn, Arg     string
}

// resolve finds the Go expression of v in method m, whose parameter is
// named arg and result r.
func (m *method) resolve(v valueRef) (goValue, bool) {
	switch {
	case v.Field != "" && m.Kind == ":many":
		return member(m.Result, "r", v.Field, true)
	case v.Field != "":
		return member(m.Result, "", v.Field, true)
	case v.PerRow:
		return member(m.Arg, "arg", v.Param, false)
	}
	expr, typ, ok := m.param(v.Param)
	if !ok || !v.Many {
		return goValue{Expr: expr, typ: typ}, ok
	}
	s, ok := typ.Underlying().(*types.Slice)
	if !ok {
		return goValue{}, false
	}
	return goValue{Range: expr, Expr: "v", typ: s.Elem()}, true
}

// param is the expression and type of a sqlc parameter: a field of the
// params struct, or the one argument of a query with one parameter.
func (m *method) param(name string) (string, types.Type, bool) {
	if m.Arg == nil {
		return "", nil, false
	}
	if f, ok := fieldOf(m.Arg, name); ok {
		return "arg." + f.Name(), f.Type(), true
	}
	_, isStruct := m.Arg.Underlying().(*types.Struct)
	return "arg", m.Arg, !isStruct && slices.Equal(m.stmt.params, []string{name})
}

// member is the field named after name of r or, with rangeOver, of each
// v of that slice; for a result that is not a struct, the value itself (a
// single RETURNING column).
func member(t types.Type, rangeOver, name string, result bool) (goValue, bool) {
	base := "r"
	if s, ok := t.(*types.Slice); ok && rangeOver != "" {
		t, base = s.Elem(), "v"
	} else if t == nil || rangeOver != "" {
		return goValue{}, false // no value, or no slice to range over
	}
	if _, ok := t.Underlying().(*types.Struct); result && (!ok || isTime(t)) {
		return goValue{Range: rangeOver, Expr: base, typ: t, Result: true}, true
	}
	f, ok := fieldOf(t, name)
	if !ok {
		return goValue{}, false
	}
	return goValue{Range: rangeOver, Expr: base + "." + f.Name(), typ: f.Type(), Result: result}, true
}

// fieldOf finds the struct field sqlc named after a column or parameter
// (campaign_id -> CampaignID).
func fieldOf(t types.Type, name string) (*types.Var, bool) {
	st, ok := t.Underlying().(*types.Struct)
	if !ok {
		return nil, false
	}
	for f := range st.Fields() {
		if strings.EqualFold(f.Name(), strings.ReplaceAll(name, "_", "")) {
			return f, true
		}
	}
	return nil, false
}

// hashClass is how a Go value hashes, matching scopeType's classes: the
// same value must hash alike on the read and the write side. It follows
// the value's codec: uuids are 16-byte arrays.
func hashClass(t types.Type) string {
	kind, _ := codecKind(t)
	basic, _ := basicCodec(t)
	switch {
	case kind == "array" && t.Underlying().(*types.Array).Len() == 16:
		return "bytes16"
	case kind == "bytes":
		return "bytes"
	case basic == "String":
		return "text"
	case basic == "Int64" || basic == "Uint64":
		return "int"
	}
	return ""
}

// usable reports whether v can be hashed as a value of sqlType in m.
func (m *method) usable(v valueRef, sqlType string) bool {
	gv, ok := m.resolve(v)
	return ok && hashClass(gv.typ) != "" && hashClass(gv.typ) == scopeType(sqlType)
}

// hashFns are, by hash class, the Deps and Bumps methods that add a value
// and the conversion of its expression they take.
var hashFns = map[string]struct{ deps, bump, arg string }{
	"bytes16": {"Add", "Value", "%s[:]"},
	"bytes":   {"Add", "Value", "%s"},
	"text":    {"AddString", "String", "string(%s)"},
	"int":     {"AddInt", "Int", "int64(%s)"},
}

// hashed is gv with the Deps (or, with bump, Bumps) method and argument
// that add it.
func hashed(gv goValue, bump bool) (goValue, error) {
	h, ok := hashFns[hashClass(gv.typ)]
	if !ok {
		return gv, fmt.Errorf("no hash for %s", gv.typ)
	}
	if gv.Fn = h.deps; bump {
		gv.Fn = h.bump
	}
	gv.Arg = fmt.Sprintf(h.arg, gv.Expr)
	return gv, nil
}
