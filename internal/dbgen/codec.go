package dbgen

import (
	"fmt"
	"go/types"
	"strings"
)

// The result codecs and key encodings of the generated code: statements
// that encode, decode and deep-copy a value of a Go type, emitted into
// the gen's current body.

// codecData is one result type's codec, for the template.
type codecData struct {
	ID, Type        string
	Enc, Dec, Clone []string
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

// codec emits the encoder, decoder and (when t holds pointers or slices)
// cloner of t.
func (g *gen) codec(t types.Type) (codecData, error) {
	c := codecData{ID: typeIdent(t), Type: g.typ(t)}
	var err error
	if c.Enc, err = g.body(func() error { return g.enc("v", t, false) }); err != nil {
		return c, fmt.Errorf("encode %s: %w", c.Type, err)
	}
	if c.Dec, err = g.body(func() error { return g.dec("v", t) }); err != nil {
		return c, fmt.Errorf("decode %s: %w", c.Type, err)
	}
	c.Clone, _ = g.body(func() error { g.fix("v", t); return nil })
	return c, nil
}

func isTime(t types.Type) bool {
	n, ok := t.(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "time" && n.Obj().Name() == "Time"
}

func isByte(t types.Type) bool {
	b, ok := t.Underlying().(*types.Basic)
	return ok && b.Kind() == types.Byte
}

// basicCodec is the suffix of the cache package's Append and Read
// functions for a basic type, which is also the Go type (lower-cased)
// the value converts through.
func basicCodec(u *types.Basic) (string, bool) {
	switch info := u.Info(); {
	case u.Kind() == types.Bool:
		return "Bool", true
	case info&types.IsInteger != 0 && info&types.IsUnsigned != 0:
		return "Uint64", true
	case info&types.IsInteger != 0:
		return "Int64", true
	case info&types.IsFloat != 0:
		return "Float64", true
	case u.Kind() == types.String:
		return "String", true
	}
	return "", false
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
		name, ok := basicCodec(u)
		if !ok {
			return fmt.Errorf("unsupported type %s", t)
		}
		g.p("b = cache.Append%s(b, %s(%s))", name, strings.ToLower(name), x)
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
		name, ok := basicCodec(u)
		if !ok {
			return fmt.Errorf("unsupported type %s", t)
		}
		g.p("%s = %s(d.Read%s())", x, ts, name)
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
