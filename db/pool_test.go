package db

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The configuration reaches pgxpool as documented in docs/data-access.md.
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
