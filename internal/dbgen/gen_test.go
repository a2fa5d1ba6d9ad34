package dbgen

import (
	"bytes"
	"go/types"
	"os"
	"strings"
	"testing"
	"time"
)

// TestGeneratedFileIsCurrent regenerates the decorator and the query
// metadata from this repository and compares them with the committed
// files: generation is deterministic, and nobody edited the output by hand.
func TestGeneratedFileIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the db package with the go command")
	}
	cfg := Config{Dir: "../..", QueriesDir: "queries", SchemaDir: "schema", DBPackage: "./db", OutPackage: "dbcache", MetaPackage: "dbmeta"}
	out, err := GenerateAll(cfg)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../docs/cache.md")
	if err != nil {
		t.Fatal(err)
	}
	if updated, err := ReplaceReport(string(readme), out.Report); err != nil || updated != string(readme) {
		t.Fatalf("docs/cache.md's scope report is not what dbgen generates (%v): run go run ./cmd/dbgen", err)
	}
	for path, got := range map[string][]byte{"db/dbcache/dbcache.gen.go": out.Cache, "db/dbmeta/dbmeta.gen.go": out.Meta} {
		want, err := os.ReadFile("../../" + path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s is not what dbgen generates: run go run ./cmd/dbgen", path)
		}
	}
	again, err := GenerateAll(cfg)
	if err != nil || !bytes.Equal(out.Cache, again.Cache) {
		t.Fatalf("two runs differ (%v)", err)
	}
}

func TestCheckCacheable(t *testing.T) {
	tests := []struct {
		name string
		m    method
		want string
	}{
		{"write", method{Query: Query{Name: "W", Kind: ":one"}, Tables: Tables{Reads: []string{"a"}, Writes: []string{"a"}}}, "writes"},
		{"exec", method{Query: Query{Name: "E", Kind: ":exec"}, Tables: Tables{Reads: []string{"a"}}}, ":exec"},
		{"no table", method{Query: Query{Name: "N", Kind: ":one"}}, "reads no table"},
		{"ok", method{Query: Query{Name: "R", Kind: ":many"}, Tables: Tables{Reads: []string{"a"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCacheable(tt.m)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUnsupportedTypesFailGeneration(t *testing.T) {
	str := types.Typ[types.String]
	for _, typ := range []types.Type{
		types.NewMap(str, str),
		types.NewInterfaceType(nil, nil),
		types.NewArray(str, 2),
		types.NewStruct([]*types.Var{types.NewField(0, nil, "F", types.NewChan(types.SendRecv, str), false)}, nil),
	} {
		g := newGen("x")
		if _, err := g.code("enc", "v", typ, true); err == nil {
			t.Errorf("key encoding of %s accepted", typ)
		}
		if _, err := g.code("dec", "v", typ, false); err == nil {
			t.Errorf("decoding of %s accepted", typ)
		}
	}
}

func TestSchemaHashChangesWithSQLAndShape(t *testing.T) {
	a := types.NewStruct([]*types.Var{types.NewField(0, nil, "N", types.Typ[types.Int64], false)}, nil)
	b := types.NewStruct([]*types.Var{types.NewField(0, nil, "N", types.Typ[types.Int32], false)}, nil)
	base := schemaHash("SELECT 1", a)
	if schemaHash("SELECT  1", a) != base {
		t.Error("whitespace changed the hash")
	}
	if schemaHash("SELECT 2", a) == base || schemaHash("SELECT 1", b) == base {
		t.Error("a different query or shape kept the hash")
	}
}

func TestDurationLiterals(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0", time.Hour: "1 * time.Hour", 90 * time.Second: "90 * time.Second", 10 * time.Minute: "10 * time.Minute"} {
		if got := dur(d); got != want {
			t.Errorf("dur(%v) = %s, want %s", d, got, want)
		}
	}
}
