package db

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// generatedStatements returns every SQL statement sqlc generated in this
// package, by name, read from the *.sql.go sources.
func generatedStatements(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("*.sql.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no generated files (%v)", err)
	}
	out := map[string]string{}
	fset := token.NewFileSet()
	for _, f := range files {
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err == nil && strings.HasPrefix(s, "-- name: ") {
				name, _, _ := strings.Cut(strings.TrimPrefix(s, "-- name: "), " ")
				out[name] = s
			}
			return true
		})
	}
	return out
}

// TestEveryGeneratedStatementPrepares is sqlc's db-prepare rule, run where
// there is a database: every statement sqlc generated is PREPAREd on the
// migrated schema, so a query that no longer matches the schema fails here
// even if no other test runs it.
func TestEveryGeneratedStatementPrepares(t *testing.T) {
	t.Parallel()
	stmts := generatedStatements(t)
	if len(stmts) < 20 {
		t.Fatalf("only %d statements found: the reader is broken", len(stmts))
	}
	pool := pgtest.NewPool(t)
	conn, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for name, sql := range stmts {
		if strings.Contains(sql, ":copyfrom") {
			continue // COPY has no statement text to prepare; its test inserts rows
		}
		if _, err := conn.Conn().Prepare(t.Context(), "", sql); err != nil {
			t.Errorf("%s does not prepare: %v", name, err)
		}
	}
}

var selectStar = regexp.MustCompile(`(?is)\b(select(\s+distinct)?|returning)\s+([a-z_][a-z0-9_]*\.)?\*`)

// hasSelectStar reports a SELECT * or RETURNING * outside comments.
func hasSelectStar(sql string) bool {
	var b strings.Builder
	for _, line := range strings.Split(sql, "\n") {
		code, _, _ := strings.Cut(line, "--")
		b.WriteString(code + "\n")
	}
	return selectStar.MatchString(b.String())
}

// TestQueriesNameTheirColumns: no query in queries/ selects or returns *.
// A star changes shape when a migration adds a column, and the cache keys
// entries on the result shape. sqlc expands the star before its vet rules
// see the SQL, so the check reads the files.
func TestQueriesNameTheirColumns(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT * FROM users":                  true,
		"select u.* from users u":              true,
		"INSERT INTO x VALUES (1) RETURNING *": true,
		"SELECT count(*) FROM users":           false,
		"SELECT id FROM users -- not *":        false,
		"SELECT id, 2 * 3 FROM users":          false,
	} {
		if got := hasSelectStar(sql); got != want {
			t.Errorf("hasSelectStar(%q) = %v, want %v", sql, got, want)
		}
	}
	files, err := filepath.Glob("../queries/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("no query files (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range strings.Split(string(b), "-- name: ") {
			if hasSelectStar(q) {
				name, _, _ := strings.Cut(q, " ")
				t.Errorf("%s: %s uses SELECT/RETURNING *: list the columns", f, name)
			}
		}
	}
}
