package db

import (
	"testing"
	"time"
)

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
}
