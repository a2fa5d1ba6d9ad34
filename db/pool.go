package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/pgxtypes"
)

// PoolConfig is the connection pool's configuration, read once at start
// (internal/config declares the variables and their defaults per APP_ENV).
//
// How the knobs map onto pgxpool:
//   - Size (DB_POOL_SIZE) is MinConns: connections kept open even when idle.
//   - MaxOverflow (DB_MAX_OVERFLOW) is how many more may open under load:
//     MaxConns = Size + MaxOverflow. Connections above Size are closed once
//     idle for OverflowIdle (pgxpool's MaxConnIdleTime never shrinks the pool
//     below MinConns).
//   - Timeout (DB_POOL_TIMEOUT) bounds how long a statement waits for a free
//     connection; past it the caller gets ErrPoolExhausted. pgxpool has no
//     such knob: the Store applies it around Acquire.
//   - Recycle (DB_POOL_RECYCLE) is MaxConnLifetime: a connection is replaced
//     after that long (with pgxpool's jitter, so they do not all reconnect at
//     once), which bounds server-side memory growth and lets a failover or
//     DNS change take effect.
type PoolConfig struct {
	URL          string
	Size         int
	MaxOverflow  int
	Timeout      time.Duration
	Recycle      time.Duration
	OverflowIdle time.Duration
}

// NewPool opens a pool for cfg. tracer (may be nil) sees every query, which
// is how the monitor measures latency per sqlc query name.
func NewPool(ctx context.Context, cfg PoolConfig, tracer pgx.QueryTracer) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	pc.MinConns = int32(cfg.Size)
	pc.MaxConns = int32(cfg.Size + cfg.MaxOverflow)
	pc.MaxConnLifetime = cfg.Recycle
	pc.MaxConnIdleTime = cfg.OverflowIdle
	pc.AfterConnect = pgxtypes.AfterConnect
	if tracer != nil {
		pc.ConnConfig.Tracer = tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
