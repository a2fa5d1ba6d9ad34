package config

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's environment tables")

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

// The README's environment tables are generated from the struct: this fails
// while they are stale (go test ./internal/config -update rewrites them).
func TestREADMETablesAreCurrent(t *testing.T) {
	const path = "../../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := UpdateREADME(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if want == string(b) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("README's environment tables are stale: run go test ./internal/config -update")
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
