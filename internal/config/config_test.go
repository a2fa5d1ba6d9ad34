package config

import (
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the environment tables in docs/")

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

// The read-replica variables (issue 9) reach dbroute.Config; a bad
// connection string is named by its position, never quoted (it may hold a
// password).
func TestReplicas(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantURLs string
		wantSize int
		wantLag  time.Duration
		wantErr  string
	}{
		{name: "defaults", env: map[string]string{}, wantLag: 10 * time.Second},
		{name: "replicas", env: map[string]string{
			"DATABASE_REPLICA_URLS": "postgres://a@h1/x, postgres://a@h2/x", "DB_REPLICA_POOL_SIZE": "4", "DB_REPLICA_MAX_LAG": "3s",
		}, wantURLs: "postgres://a@h1/x|postgres://a@h2/x", wantSize: 4, wantLag: 3 * time.Second},
		{name: "empty entry", env: map[string]string{"DATABASE_REPLICA_URLS": "postgres://a:secret@h1/x,,"}, wantErr: "DATABASE_REPLICA_URLS: postgres://a:xxxxx@h1/x,,: entry 2 is empty"},
		{name: "bad url hides the password", env: map[string]string{"DATABASE_REPLICA_URLS": "postgres://u:secret@h:notaport/x"}, wantErr: "entry 1 is not a PostgreSQL connection string"},
		{name: "bad pool size", env: map[string]string{"DB_REPLICA_POOL_SIZE": "-1"}, wantErr: "DB_REPLICA_POOL_SIZE"},
		{name: "bad lag", env: map[string]string{"DB_REPLICA_MAX_LAG": "10"}, wantErr: "DB_REPLICA_MAX_LAG"},
		{name: "negative lag", env: map[string]string{"DB_REPLICA_MAX_LAG": "-1s"}, wantErr: "DB_REPLICA_MAX_LAG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(getenv(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "secret") {
					t.Fatalf("error %v, want one containing %q (and no password)", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := c.Replicas.Config()
			if strings.Join(got.ReplicaURLs, "|") != tc.wantURLs || got.ReplicaPoolSize != tc.wantSize ||
				got.MaxLag != tc.wantLag || got.CheckEvery <= 0 {
				t.Fatalf("got %+v", got)
			}
		})
	}
}

// The hardening variables (issue 10): defaults, and errors that name the
// variable.
func TestHardening(t *testing.T) {
	c, err := Load(getenv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP.MaxHeaderBytes != 64<<10 || c.HTTP.ReadHeaderTimeout != 10*time.Second || c.HTTP.ReadTimeout != time.Minute ||
		c.HTTP.WriteTimeout != 90*time.Second || c.HTTP.IdleTimeout != 2*time.Minute || c.HTTP.BodyDrainBytes != 32<<20 {
		t.Errorf("HTTP defaults: %+v", c.HTTP)
	}
	l := c.Limits
	if l.RatePerMinute != 600 || l.RateBurst != 100 || l.AdminRatePerMinute != 120 || l.RateLimitDisabled ||
		l.AuthFailuresPerMinute != 30 || l.UnknownKeyTTL != 30*time.Second || l.IdempotencyTTL != 24*time.Hour {
		t.Errorf("limit defaults: %+v", l)
	}
	c, err = Load(getenv(map[string]string{"RATE_LIMIT_DISABLED": "true", "HTTP_BODY_DRAIN_BYTES": "0", "RATE_LIMIT_PER_MINUTE": "60"}))
	if err != nil || !c.Limits.RateLimitDisabled || c.HTTP.BodyDrainBytes != 0 || c.Limits.RatePerMinute != 60 {
		t.Errorf("set: %+v %+v %v", c.HTTP, c.Limits, err)
	}
	for _, tc := range []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{"HTTP_MAX_HEADER_BYTES": "100"}, "HTTP_MAX_HEADER_BYTES: want 4096 to 16777216"},
		{map[string]string{"HTTP_BODY_DRAIN_BYTES": "-1"}, "HTTP_BODY_DRAIN_BYTES"},
		{map[string]string{"HTTP_READ_TIMEOUT": "soon"}, `HTTP_READ_TIMEOUT: "soon"`},
		{map[string]string{"HTTP_IDLE_TIMEOUT": "0s"}, "HTTP_IDLE_TIMEOUT: want a positive duration"},
		{map[string]string{"HTTP_WRITE_TIMEOUT": "5s"}, "HTTP_WRITE_TIMEOUT: 5s must exceed REQUEST_TIMEOUT (10s)"},
		{map[string]string{"RATE_LIMIT_BURST": "0"}, "RATE_LIMIT_BURST: want 1 to 1000000"},
		{map[string]string{"ADMIN_RATE_LIMIT_PER_MINUTE": "x"}, "ADMIN_RATE_LIMIT_PER_MINUTE"},
		{map[string]string{"RATE_LIMIT_DISABLED": "maybe"}, "RATE_LIMIT_DISABLED"},
		{map[string]string{"AUTH_UNKNOWN_KEY_TTL": "-1s"}, "AUTH_UNKNOWN_KEY_TTL"},
		{map[string]string{"IDEMPOTENCY_TTL": "1"}, "IDEMPOTENCY_TTL"},
		{map[string]string{"DB_BACKGROUND_POOL_SIZE": "0"}, "DB_BACKGROUND_POOL_SIZE: 0 is below the minimum of 1"},
		{map[string]string{"DB_BACKGROUND_POOL_TIMEOUT": "0"}, "DB_BACKGROUND_POOL_TIMEOUT"},
		{map[string]string{"DB_PGBOUNCER": "perhaps"}, "DB_PGBOUNCER"},
		{map[string]string{"CACHE_SCOPES_DISABLED": "perhaps"}, "CACHE_SCOPES_DISABLED"},
	} {
		if _, err := Load(getenv(tc.env)); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%v: error %v, want one containing %q", tc.env, err, tc.wantErr)
		}
	}
	// The pool's scaling-out fields reach db.PoolConfig, per APP_ENV.
	c, _ = Load(getenv(map[string]string{"APP_ENV": "prod", "DB_PGBOUNCER": "true"}))
	if p := c.DB.Pool(); !p.PgBouncer || p.BackgroundSize != 3 || p.BackgroundTimeout != 120*time.Second {
		t.Errorf("prod pool: %+v", p)
	}
	c, _ = Load(getenv(map[string]string{"PPROF_ENABLED": "true"}))
	if !c.Server.Pprof {
		t.Error("PPROF_ENABLED=true did not reach Server.Pprof")
	}
	if _, err := Load(getenv(map[string]string{"PPROF_ENABLED": "sometimes"})); err == nil || !strings.Contains(err.Error(), "PPROF_ENABLED") {
		t.Errorf("PPROF_ENABLED=sometimes: %v", err)
	}
	c, _ = Load(getenv(map[string]string{"CACHE_SCOPES_DISABLED": "1"}))
	if !c.Cache.CacheConfig().ScopesDisabled {
		t.Error("CACHE_SCOPES_DISABLED=1 did not reach cache.Config")
	}
}
