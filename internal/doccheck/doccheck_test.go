package doccheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replyrocket/replyrocket/internal/config"
)

const repoRoot = "../.."

func TestSlug(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Query cache", "query-cache"},
		{"Database monitor (/db-monitor)", "database-monitor-db-monitor"},
		{"Deployment: several instances, replicas, PgBouncer", "deployment-several-instances-replicas-pgbouncer"},
		{"A million-email campaign: per-campaign counters", "a-million-email-campaign-per-campaign-counters"},
		{"What a request cost, and what changed", "what-a-request-cost-and-what-changed"},
		{"snake_case stays", "snake_case-stays"},
		{"Ünïcode letters", "ünïcode-letters"},
		{"  1. Steps  ", "1-steps"},
	}
	for _, tt := range tests {
		if got := Slug(tt.heading); got != tt.want {
			t.Errorf("Slug(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

// The link check fails on each kind of broken link and passes the rest:
// a fixture tree, one document per case.
func TestCheckLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n\n## Two words\n\n## Two words\n\nSee [self](#two-words-1), [doc](docs/a.md#the-a-section), [dir](internal), [web](https://example.com/x#y).\n\n```\n[in a block](missing.md)\n```\n")
	write("CONTRIBUTING.md", "# C\n")
	write("docs/a.md", "# A\n\n## The `A` section\n\nBack to [the top](../README.md#top).\n")
	write("internal/x.go", "package internal\n")
	tests := []struct {
		name, body string
		wantErr    string // "" = no error
	}{
		{"fine", "[ok](../README.md#two-words)", ""},
		{"missing file", "[gone](nope.md)", "no such file or directory docs/nope.md"},
		{"missing anchor", "[bad](a.md#no-such)", "docs/a.md has no heading with anchor #no-such"},
		{"missing own anchor", "# H\n[bad](#h2)", "has no heading with anchor #h2"},
		{"anchor of an unlisted md", "[bad](../internal/y.md#x)", "no such file"},
		{"outside", "[up](../../etc/passwd)", "outside the repository"},
		{"root-relative", "[abs](/README.md)", "root-relative"},
		{"duplicate heading numbered", "[ok](../README.md#two-words-1)", ""},
		{"a third duplicate is not there", "[bad](../README.md#two-words-2)", "has no heading with anchor #two-words-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			write("docs/case.md", tt.body+"\n")
			files, err := Files(root)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := Load(root, files)
			if err != nil {
				t.Fatal(err)
			}
			errs := CheckLinks(root, docs)
			if tt.wantErr == "" {
				for _, e := range errs {
					t.Error(e)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.wantErr) {
				t.Fatalf("errors %v, want one containing %q", errs, tt.wantErr)
			}
			if !strings.HasPrefix(errs[0].Error(), "docs/case.md:") {
				t.Errorf("error %q does not say where", errs[0])
			}
		})
	}
}

func TestMentions(t *testing.T) {
	d := Parse("x.md", []byte("Call `GET /api/v1/campaigns?limit=5`, `/health/db`, not `/usr/bin`; `POST /db-monitor/cache/invalidate\n{\"table\":\"x\"}`, `/db-monitor/#key=k`.\n"+
		"Set `CACHE_DISABLED=true` or `PORT`; `APP_ENV` too. See `internal/cache`, `./cmd/dbgen`, `db.ErrNotFound`, `db.Store.InTx`, `errors.Is(err, x)`, `TestChecker`.\n\n"+
		"```\n`/api/v1/in-a-block` `IN_BLOCK`\n```\n"))
	docs := map[string]*Doc{"x.md": d}
	names := func(ms []Mention) string {
		var s []string
		for _, m := range ms {
			s = append(s, m.Name)
		}
		return strings.Join(s, " ")
	}
	checks := []struct{ what, got, want string }{
		{"routes", names(Routes(docs)), "/api/v1/campaigns /health/db /db-monitor/cache/invalidate /db-monitor/"},
		{"env", names(EnvVars(docs)), "CACHE_DISABLED APP_ENV"},
		{"paths", names(Paths(docs)), "internal/cache cmd/dbgen"},
		{"identifiers", names(Identifiers(docs)), "db.ErrNotFound db.Store.InTx errors.Is"},
		{"tests", names(Tests(docs)), "TestChecker"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %q, want %q", c.what, c.got, c.want)
		}
	}
	if Routes(docs)[0].Line != 1 || EnvVars(docs)[0].Line != 3 {
		t.Errorf("lines: %v %v", Routes(docs)[0], EnvVars(docs)[0])
	}
}

func loadRepoDocs(t *testing.T) map[string]*Doc {
	t.Helper()
	files, err := Files(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("only %d documents found: %v", len(files), files)
	}
	docs, err := Load(repoRoot, files)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// The README is the front door: at most 200 lines, the rest in docs/.
func TestReadmeIsShort(t *testing.T) {
	src := loadRepoDocs(t)["README.md"].Source
	if n := strings.Count(string(src), "\n"); n > 200 {
		t.Errorf("README.md has %d lines, at most 200: move the detail to docs/", n)
	}
}

// Every relative link and anchor in README.md, CONTRIBUTING.md and docs/
// resolves.
func TestRepositoryLinks(t *testing.T) {
	for _, err := range CheckLinks(repoRoot, loadRepoDocs(t)) {
		t.Error(err)
	}
}

// toolchainVars are variables of Go itself that the documents may name.
var toolchainVars = map[string]bool{"GOGC": true, "GOMEMLIMIT": true, "GOMODCACHE": true, "GOCACHE": true, "GOFLAGS": true}

// Every environment variable the documents name is a variable of
// internal/config, of the Go toolchain, or one that the repository's own
// scripts or tests read (it appears in a Go, shell or YAML file).
func TestDocumentedVariablesExist(t *testing.T) {
	vars := map[string]bool{}
	for _, v := range config.Variables() {
		vars[v.Name] = true
	}
	sources := sourceText(t)
	mentions := EnvVars(loadRepoDocs(t))
	if len(mentions) < 40 {
		t.Fatalf("only %d variables named: the scan is broken", len(mentions))
	}
	for _, m := range mentions {
		if vars[m.Name] || toolchainVars[m.Name] {
			continue
		}
		if !strings.Contains(sources, m.Name) {
			t.Errorf("%s: no such variable in internal/config, and nothing in the repository reads it", m)
		}
	}
}

// sourceText is every Go, shell and YAML file of the repository, which
// is where a variable outside internal/config would be read.
func sourceText(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(repoRoot, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if n := e.Name(); p != repoRoot && (n == ".git" || n == "node_modules" || n == ".data" || n == "docs") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(p) {
		case ".go", ".sh", ".yml", ".yaml":
		default:
			if filepath.Base(p) != "run" {
				return nil
			}
		}
		src, err := os.ReadFile(p)
		b.Write(src)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// Every repository path the documents name in code exists.
func TestDocumentedPathsExist(t *testing.T) {
	mentions := Paths(loadRepoDocs(t))
	if len(mentions) < 20 {
		t.Fatalf("only %d paths named: the scan is broken", len(mentions))
	}
	for _, m := range mentions {
		if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(m.Name))); err != nil {
			t.Errorf("%s: no such file or directory", m)
		}
	}
}

// Every Go identifier of this module (`db.ErrNotFound`, `db.Store.InTx`)
// and every test, benchmark and fuzz target the documents name is
// declared.
func TestDocumentedIdentifiersExist(t *testing.T) {
	decls, err := ReadDeclarations(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	docs := loadRepoDocs(t)
	if n := len(Identifiers(docs)); n < 10 {
		t.Fatalf("only %d identifiers named: the scan is broken", n)
	}
	if n := len(Tests(docs)); n < 10 {
		t.Fatalf("only %d tests named: the scan is broken", n)
	}
	for _, m := range Identifiers(docs) {
		if found, known := decls.Has(m.Name); known && !found {
			t.Errorf("%s: not declared", m)
		}
	}
	for _, m := range Tests(docs) {
		if !decls.Tests[m.Name] {
			t.Errorf("%s: no such test, benchmark or fuzz target", m)
		}
	}
}

// The README's layout names every package of the module, and the
// documents name no package that is not one.
func TestReadmeNamesEveryPackage(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.Dir}}", "./...")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	abs, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(loadRepoDocs(t)["README.md"].Source)
	n := 0
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(abs, dir)
		if err != nil {
			t.Fatal(err)
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			continue
		}
		n++
		// In the layout a nested package is written under its parent
		// (internal/ then "  cache/"), so the last element is what must
		// appear, as a directory name.
		if !strings.Contains(readme, rel+"/") && !strings.Contains(readme, " "+filepath.Base(rel)+"/") {
			t.Errorf("README.md does not name the package %s", rel)
		}
	}
	if n < 20 {
		t.Fatalf("go list found only %d packages", n)
	}
}
