package config

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the environment tables in docs/")

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Every bad value is refused with an error that names its variable.
func TestErrorsNameTheVariable(t *testing.T) {
	for name, val := range map[string]string{
		"APP_ENV": "staging", "PORT": "http", "REQUEST_TIMEOUT": "10", "SHUTDOWN_TIMEOUT": "-1s",
		"TRUSTED_PROXIES": "10.0.0.1", "PARTITIONS_AHEAD": "121", "LOG_LEVEL": "loud",
		"DB_POOL_SIZE": "-1", "DB_MAX_OVERFLOW": "x", "DB_POOL_TIMEOUT": "0", "DB_POOL_RECYCLE": "1h",
		"CACHE_L1_MAX_BYTES": "0", "CACHE_L1_DISABLED": "maybe", "CACHE_DISABLED": "2", "CACHE_REDIS_TIMEOUT": "100ms",
		"CACHE_LOAD_TIMEOUT": "-3", "MONITOR_ALLOW_ANALYZE": "yes please", "MONITOR_EXPLAIN_TIMEOUT": "0s",
		"MONITOR_SLOW_CALLS": "0", "MONITOR_RETENTION": "forever",
	} {
		_, err := Load(getenv(map[string]string{name: val}))
		if err == nil || !strings.Contains(err.Error(), name+":") {
			t.Errorf("%s=%q: got %v, want an error naming %s", name, val, err, name)
		}
	}
	_, err := Load(getenv(map[string]string{"DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "0"}))
	if err == nil || !strings.Contains(err.Error(), "DB_POOL_SIZE + DB_MAX_OVERFLOW") {
		t.Errorf("an empty pool: %v", err)
	}
}

// The library names fields, and errors are reported by variable through the
// field's name: two fields of one name would make that ambiguous.
func TestFieldNamesAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, v := range Variables() {
		if other, dup := seen[v.Field]; dup {
			t.Errorf("field %s holds both %s and %s", v.Field, other, v.Name)
		}
		seen[v.Field] = v.Name
		if v.Help == "" || v.Section == "" {
			t.Errorf("%s has no help or section tag", v.Name)
		}
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	var b strings.Builder
	env := map[string]string{
		"ADMIN_API_KEY": "rr_supersecret", "DATABASE_URL": "postgres://app:hunter2@db:5432/rr",
		"REDIS_URL": "redis://:redispw@r:6379/0", "PORT": "9001",
	}
	if err := Print(&b, getenv(env)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, secret := range []string{"rr_supersecret", "hunter2", "redispw"} {
		if strings.Contains(out, secret) {
			t.Errorf("printed a secret %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"postgres://app:xxxxx@db:5432/rr", "9001", "(default)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, v := range Variables() {
		if !strings.Contains(out, v.Name) {
			t.Errorf("output lacks %s", v.Name)
		}
	}
}

// The environment tables of docs/ are generated from the struct, each in
// the document of its topic: this fails while one is stale or missing (go
// test ./internal/config -update rewrites them).
func TestDocTablesAreCurrent(t *testing.T) {
	paths, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[p] = string(b)
	}
	want, err := UpdateDocs(docs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		if want[p] == docs[p] {
			continue
		}
		if *update {
			if err := os.WriteFile(p, []byte(want[p]), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		t.Errorf("%s: environment tables are stale: run go test ./internal/config -update", p)
	}
}

// UpdateDocs fills each section's table in the one document that holds
// its markers, and refuses a table that is nowhere or in two places.
func TestUpdateDocs(t *testing.T) {
	markers := func(s string) string {
		return "<!-- config:" + s + " begin (generated) -->\nSTALE-TEXT\n<!-- config:" + s + " end -->\n"
	}
	var all strings.Builder
	for _, s := range Sections() {
		all.WriteString(markers(s))
	}
	got, err := UpdateDocs(map[string]string{"a.md": all.String(), "b.md": "no tables"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got["a.md"], "STALE-TEXT") || !strings.Contains(got["a.md"], "`DATABASE_URL`") || got["b.md"] != "no tables" {
		t.Errorf("not filled in:\n%s", got["a.md"])
	}
	if _, err := UpdateDocs(map[string]string{"a.md": all.String(), "b.md": markers(Sections()[0])}); err == nil {
		t.Error("a table in two documents was accepted")
	}
	if _, err := UpdateDocs(map[string]string{"a.md": strings.Replace(all.String(), markers(Sections()[0]), "", 1)}); err == nil {
		t.Error("a missing table was accepted")
	}
}

// A renamed variable still set under its old name is refused, naming the
// new one.
func TestRenamedVariablesAreRefused(t *testing.T) {
	for old, now := range renamed {
		_, err := Load(getenv(map[string]string{old: "true"}))
		if err == nil || !strings.Contains(err.Error(), now) {
			t.Errorf("%s set: error %v, want one naming %s", old, err, now)
		}
		if !slices.ContainsFunc(Variables(), func(v Variable) bool { return v.Name == now }) {
			t.Errorf("%s is renamed to %s, which is not a variable", old, now)
		}
	}
}
