package db

import (
	"strings"

	"github.com/jackc/pgx/v5"
	"testing"
	"time"
)

func TestPoolConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    PoolConfig
		wantErr string // a substring; the variable must be named
	}{
		{name: "dev defaults", env: map[string]string{},
			want: PoolConfig{Env: "dev", Size: 2, MaxOverflow: 5, Timeout: 30 * time.Second, Recycle: 1800 * time.Second, OverflowIdle: time.Minute, BackgroundSize: 2, BackgroundTimeout: 120 * time.Second}},
		{name: "prod defaults", env: map[string]string{"APP_ENV": "prod", "DATABASE_URL": "postgres://x"},
			want: PoolConfig{URL: "postgres://x", Env: "prod", Size: 5, MaxOverflow: 10, Timeout: 30 * time.Second, Recycle: 1800 * time.Second, OverflowIdle: time.Minute, BackgroundSize: 3, BackgroundTimeout: 120 * time.Second}},
		{name: "overrides", env: map[string]string{"APP_ENV": "prod", "DB_POOL_SIZE": "8", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "3", "DB_POOL_RECYCLE": "60"},
			want: PoolConfig{Env: "prod", Size: 8, MaxOverflow: 0, Timeout: 3 * time.Second, Recycle: time.Minute, OverflowIdle: time.Minute, BackgroundSize: 3, BackgroundTimeout: 120 * time.Second}},
		{name: "size zero with overflow", env: map[string]string{"DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "3"},
			want: PoolConfig{Env: "dev", Size: 0, MaxOverflow: 3, Timeout: 30 * time.Second, Recycle: 1800 * time.Second, OverflowIdle: time.Minute, BackgroundSize: 2, BackgroundTimeout: 120 * time.Second}},
		{name: "pgbouncer and background pool", env: map[string]string{"DB_PGBOUNCER": "true", "DB_BACKGROUND_POOL_SIZE": "1", "DB_BACKGROUND_POOL_TIMEOUT": "5"},
			want: PoolConfig{Env: "dev", Size: 2, MaxOverflow: 5, Timeout: 30 * time.Second, Recycle: 1800 * time.Second, OverflowIdle: time.Minute, PgBouncer: true, BackgroundSize: 1, BackgroundTimeout: 5 * time.Second}},
		{name: "bad pgbouncer flag", env: map[string]string{"DB_PGBOUNCER": "maybe"}, wantErr: `DB_PGBOUNCER: want true or false, got "maybe"`},
		{name: "no background connections", env: map[string]string{"DB_BACKGROUND_POOL_SIZE": "0"}, wantErr: "DB_BACKGROUND_POOL_SIZE: 0 is below the minimum of 1"},
		{name: "not a number", env: map[string]string{"DB_POOL_SIZE": "five"}, wantErr: `DB_POOL_SIZE: "five" is not a whole number`},
		{name: "negative overflow", env: map[string]string{"DB_MAX_OVERFLOW": "-1"}, wantErr: "DB_MAX_OVERFLOW: -1 is below the minimum of 0"},
		{name: "zero timeout", env: map[string]string{"DB_POOL_TIMEOUT": "0"}, wantErr: "DB_POOL_TIMEOUT: 0 is below the minimum of 1"},
		{name: "fractional recycle", env: map[string]string{"DB_POOL_RECYCLE": "1.5"}, wantErr: `DB_POOL_RECYCLE: "1.5" is not a whole number`},
		{name: "no connections at all", env: map[string]string{"DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "0"}, wantErr: "DB_POOL_SIZE + DB_MAX_OVERFLOW"},
		{name: "unknown env", env: map[string]string{"APP_ENV": "staging"}, wantErr: "APP_ENV"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PoolConfigFromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// The configuration reaches pgxpool as documented in the README.
func TestNewPoolMapsTheKnobs(t *testing.T) {
	cfg := PoolConfig{URL: "postgres://u@127.0.0.1:1/x", Size: 3, MaxOverflow: 4, Timeout: time.Second, Recycle: time.Hour, OverflowIdle: 2 * time.Minute}
	pool, err := NewPool(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	pc := pool.Config()
	if pc.MinConns != 3 || pc.MaxConns != 7 || pc.MaxConnLifetime != time.Hour || pc.MaxConnIdleTime != 2*time.Minute {
		t.Fatalf("pgxpool config min %d max %d lifetime %v idle %v", pc.MinConns, pc.MaxConns, pc.MaxConnLifetime, pc.MaxConnIdleTime)
	}
	if pc.ConnConfig.DefaultQueryExecMode != pgx.QueryExecModeCacheStatement {
		t.Fatalf("exec mode without PgBouncer: %v", pc.ConnConfig.DefaultQueryExecMode)
	}
}

// Behind PgBouncer's transaction pooling no statement is prepared by name;
// the background pool keeps no idle connection and has its own wait.
func TestPgBouncerAndBackgroundPool(t *testing.T) {
	cfg := PoolConfig{URL: "postgres://u@127.0.0.1:1/x", Size: 3, MaxOverflow: 4, Timeout: time.Second, Recycle: time.Hour,
		OverflowIdle: time.Minute, PgBouncer: true, BackgroundSize: 2, BackgroundTimeout: time.Minute}
	pool, err := NewPool(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if cc := pool.Config().ConnConfig; cc.DefaultQueryExecMode != pgx.QueryExecModeExec || cc.StatementCacheCapacity != 0 {
		t.Fatalf("exec mode %v, statement cache %d", cc.DefaultQueryExecMode, cc.StatementCacheCapacity)
	}
	bg := cfg.Background()
	if bg.Size != 0 || bg.MaxOverflow != 2 || bg.Timeout != time.Minute || bg.URL != cfg.URL {
		t.Fatalf("background config %+v", bg)
	}
}
