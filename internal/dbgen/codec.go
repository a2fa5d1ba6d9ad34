package dbgen

import (
	"fmt"
	"go/types"
	"slices"
	"strings"
)

// The result codecs and key encodings of the generated code: statements
// that encode, decode and deep-copy a value of a Go type, printed by
// codec.go.tmpl.

// codecVar names the codec of t, queueing it for emission.
func (g *gen) codecVar(t types.Type) (string, error) {
	name := "codec" + typeIdent(t)
	switch i := slices.IndexFunc(g.codecs, func(c types.Type) bool { return typeIdent(c) == typeIdent(t) }); {
	case i < 0:
		g.codecs = append(g.codecs, t)
	case !types.Identical(g.codecs[i], t):
		return "", fmt.Errorf("two result types are both named %s", name)
	}
	return name, nil
}

// codeArg is what the codec templates print code for: the value X of
// type T (Key selects the key form of times, the instant only).
func codeArg(x string, t types.Type, key bool) map[string]any {
	return map[string]any{"X": x, "T": t, "Key": key}
}

// codecKind classifies t for the codec templates: time, basic, array (of
// bytes), pointer, bytes (a byte slice), slice, struct; an error for a
// type they cannot encode.
func codecKind(t types.Type) (string, error) {
	if isTime(t) {
		return "time", nil
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		if _, err := basicCodec(t); err == nil {
			return "basic", nil
		}
	case *types.Array:
		if isByte(u.Elem()) {
			return "array", nil
		}
		return "", fmt.Errorf("unsupported type %s (only byte arrays)", t)
	case *types.Pointer:
		return "pointer", nil
	case *types.Slice:
		if isByte(u.Elem()) {
			return "bytes", nil
		}
		return "slice", nil
	case *types.Struct:
		return "struct", nil
	}
	return "", fmt.Errorf("unsupported type %s", t)
}

func isTime(t types.Type) bool { return types.TypeString(t, nil) == "time.Time" }

func isByte(t types.Type) bool { return types.Identical(t.Underlying(), types.Typ[types.Byte]) }

// basicCodec is the suffix of the cache package's Append and Read
// functions for a basic type, which is also the Go type (lower-cased)
// the value converts through.
func basicCodec(t types.Type) (string, error) {
	if u, ok := t.Underlying().(*types.Basic); ok {
		switch info := u.Info(); {
		case u.Kind() == types.Bool:
			return "Bool", nil
		case info&types.IsInteger != 0 && info&types.IsUnsigned != 0:
			return "Uint64", nil
		case info&types.IsInteger != 0:
			return "Int64", nil
		case info&types.IsFloat != 0:
			return "Float64", nil
		case u.Kind() == types.String:
			return "String", nil
		}
	}
	return "", fmt.Errorf("unsupported type %s", t)
}

func needsClone(t types.Type) bool {
	if isTime(t) {
		return false
	}
	switch u := t.Underlying().(type) {
	case *types.Pointer, *types.Slice:
		return true
	case *types.Struct:
		return slices.ContainsFunc(slices.Collect(u.Fields()), func(f *types.Var) bool { return needsClone(f.Type()) })
	}
	return false
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
