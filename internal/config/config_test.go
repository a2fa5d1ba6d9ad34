package config

import (
	"flag"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the README's environment tables")

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsPerEnv(t *testing.T) {
	for _, tc := range []struct {
		env                map[string]string
		size, overflow     int
		timeout, recycle   time.Duration
		wantEnv            string
		wantRedisTimeoutMs int64
	}{
		{env: nil, wantEnv: "dev", size: 2, overflow: 5, timeout: 30 * time.Second, recycle: 1800 * time.Second, wantRedisTimeoutMs: 100},
		{env: map[string]string{"APP_ENV": "prod"}, wantEnv: "prod", size: 5, overflow: 10, timeout: 30 * time.Second, recycle: 1800 * time.Second, wantRedisTimeoutMs: 100},
		{env: map[string]string{"APP_ENV": "prod", "DB_POOL_SIZE": "7", "DB_POOL_TIMEOUT": "3", "CACHE_REDIS_TIMEOUT": "250"},
			wantEnv: "prod", size: 7, overflow: 10, timeout: 3 * time.Second, recycle: 1800 * time.Second, wantRedisTimeoutMs: 250},
	} {
		c, err := Load(getenv(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		p := c.DB.Pool()
		if c.Env != tc.wantEnv || p.Size != tc.size || p.MaxOverflow != tc.overflow || p.Timeout != tc.timeout || p.Recycle != tc.recycle {
			t.Errorf("%v: got env %s pool %+v", tc.env, c.Env, p)
		}
		if got := c.Cache.CacheConfig().RedisTimeout; got != time.Duration(tc.wantRedisTimeoutMs)*time.Millisecond {
			t.Errorf("%v: redis timeout %s", tc.env, got)
		}
	}
}

func TestPoolErrors(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{"DB_POOL_SIZE": "five"}, `DB_POOL_SIZE: "five": not a whole number`},
		{map[string]string{"DB_MAX_OVERFLOW": "-1"}, "DB_MAX_OVERFLOW: -1 is below the minimum of 0"},
		{map[string]string{"DB_POOL_TIMEOUT": "0"}, `DB_POOL_TIMEOUT: "0": not a positive whole number`},
		{map[string]string{"DB_POOL_RECYCLE": "1.5"}, `DB_POOL_RECYCLE: "1.5": not a positive whole number`},
		{map[string]string{"DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "0"}, "DB_POOL_SIZE + DB_MAX_OVERFLOW: must allow at least one connection"},
		{map[string]string{"APP_ENV": "staging"}, `APP_ENV: "staging" is neither prod nor dev`},
	} {
		_, err := Load(getenv(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: error %v, want one containing %q", tc.env, err, tc.wantErr)
		}
	}
	// A pool of overflow connections only is allowed.
	c, err := Load(getenv(map[string]string{"DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "3"}))
	if err != nil || c.DB.Pool().Size != 0 || c.DB.Pool().MaxOverflow != 3 {
		t.Errorf("overflow-only pool: %+v %v", c.DB, err)
	}
}

func TestEveryValueReachesItsPackage(t *testing.T) {
	c, err := Load(getenv(map[string]string{
		"DATABASE_URL": "postgres://u:p@h/db", "PORT": "9000", "ADMIN_API_KEY": "k",
		"REQUEST_TIMEOUT": "3s", "SHUTDOWN_TIMEOUT": "4s", "TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16",
		"PARTITIONS_AHEAD": "6", "LOG_LEVEL": "debug",
		"REDIS_URL": "redis://r:6379/0", "CACHE_NAMESPACE": "ns", "CACHE_L1_MAX_BYTES": "1024",
		"CACHE_L1_DISABLED": "true", "CACHE_DISABLED": "1", "CACHE_LOAD_TIMEOUT": "7",
		"MONITOR_ALLOW_ANALYZE": "true", "MONITOR_EXPLAIN_TIMEOUT": "9s", "MONITOR_SLOW_CALLS": "5",
		"MONITOR_DISABLE_HYPOPG": "true", "MONITOR_RETENTION": "2h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Server
	if s.Port != 9000 || s.AdminKey != "k" || s.RequestTimeout != 3*time.Second || s.ShutdownTimeout != 4*time.Second ||
		len(s.TrustedProxies) != 2 || s.TrustedProxies[1].String() != "192.168.0.0/16" || s.PartitionsAhead != 6 || s.LogLevel != slog.LevelDebug {
		t.Errorf("server: %+v", s)
	}
	if p := c.DB.Pool(); p.URL != "postgres://u:p@h/db" {
		t.Errorf("pool: %+v", p)
	}
	cc := c.Cache.CacheConfig()
	if cc.RedisURL != "redis://r:6379/0" || cc.Namespace != "ns" || cc.L1MaxBytes != 1024 || !cc.L1Disabled || !cc.Disabled || cc.LoadTimeout != 7*time.Second {
		t.Errorf("cache: %+v", cc)
	}
	m := c.Monitor.MonitorConfig()
	if !m.AllowAnalyze || m.ExplainTimeout != 9*time.Second || m.SlowCalls != 5 || !m.DisableHypoPG || m.Retention != 2*time.Hour || m.CatalogTimeout != 2*time.Second {
		t.Errorf("monitor: %+v", m)
	}
}

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
