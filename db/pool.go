package db

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/pgxtypes"
)

// PoolConfig is the connection pool's configuration, read once at start.
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
	Env          string
	Size         int
	MaxOverflow  int
	Timeout      time.Duration
	Recycle      time.Duration
	OverflowIdle time.Duration

	// Scaling out (issue 9): a pooler in front, and a separate pool for
	// long-running background work.
	//
	// PgBouncer (DB_PGBOUNCER) says the URL points at PgBouncer in
	// transaction pooling mode, which keeps no prepared statement between
	// transactions: statements then run with pgx's QueryExecModeExec (one
	// round trip, unnamed statement, no statement cache).
	PgBouncer bool
	// BackgroundSize (DB_BACKGROUND_POOL_SIZE) is the most connections the
	// background pool opens (the monitor, partition maintenance, seeding),
	// so slow admin or bulk work never holds the connections requests
	// need. BackgroundTimeout (DB_BACKGROUND_POOL_TIMEOUT) is its own, longer
	// wait for a free connection.
	BackgroundSize    int
	BackgroundTimeout time.Duration
}

// The defaults per APP_ENV: production keeps more connections warm.
var poolDefaults = map[string]PoolConfig{
	"prod": {Size: 5, MaxOverflow: 10, Timeout: 30 * time.Second, Recycle: 1800 * time.Second, OverflowIdle: time.Minute, BackgroundSize: 3, BackgroundTimeout: 120 * time.Second},
	"dev":  {Size: 2, MaxOverflow: 5, Timeout: 30 * time.Second, Recycle: 1800 * time.Second, OverflowIdle: time.Minute, BackgroundSize: 2, BackgroundTimeout: 120 * time.Second},
}

// PoolConfigFromEnv reads DATABASE_URL, APP_ENV and the DB_POOL_* variables
// through getenv (os.Getenv in production). A bad value is an error that
// names the variable; an unset one takes the APP_ENV default.
func PoolConfigFromEnv(getenv func(string) string) (PoolConfig, error) {
	env := getenv("APP_ENV")
	if env == "" {
		env = "dev"
	}
	cfg, ok := poolDefaults[env]
	if !ok {
		return PoolConfig{}, fmt.Errorf("APP_ENV: %q is neither prod nor dev", env)
	}
	cfg.Env = env
	cfg.URL = getenv("DATABASE_URL")
	ints := []struct {
		name string
		dst  *int
		min  int
	}{
		{"DB_POOL_SIZE", &cfg.Size, 0},
		{"DB_MAX_OVERFLOW", &cfg.MaxOverflow, 0},
		{"DB_BACKGROUND_POOL_SIZE", &cfg.BackgroundSize, 1},
	}
	for _, v := range ints {
		if err := parseInt(getenv, v.name, v.min, v.dst); err != nil {
			return PoolConfig{}, err
		}
	}
	secs := []struct {
		name string
		dst  *time.Duration
	}{
		{"DB_POOL_TIMEOUT", &cfg.Timeout},
		{"DB_POOL_RECYCLE", &cfg.Recycle},
		{"DB_BACKGROUND_POOL_TIMEOUT", &cfg.BackgroundTimeout},
	}
	for _, v := range secs {
		n := int(*v.dst / time.Second)
		if err := parseInt(getenv, v.name, 1, &n); err != nil {
			return PoolConfig{}, err
		}
		*v.dst = time.Duration(n) * time.Second
	}
	if v := getenv("DB_PGBOUNCER"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return PoolConfig{}, fmt.Errorf("DB_PGBOUNCER: want true or false, got %q", v)
		}
		cfg.PgBouncer = b
	}
	if cfg.Size+cfg.MaxOverflow < 1 {
		return PoolConfig{}, fmt.Errorf("DB_POOL_SIZE + DB_MAX_OVERFLOW: must allow at least one connection, got %d + %d", cfg.Size, cfg.MaxOverflow)
	}
	return cfg, nil
}

func parseInt(getenv func(string) string, name string, min int, dst *int) error {
	raw := getenv(name)
	if raw == "" {
		return nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return fmt.Errorf("%s: %q is not a whole number", name, raw)
	}
	if n < min {
		return fmt.Errorf("%s: %d is below the minimum of %d", name, n, min)
	}
	*dst = n
	return nil
}

// Background is the configuration of the background pool: the same
// database, at most BackgroundSize connections, none kept open when idle,
// and BackgroundTimeout to wait for one.
func (cfg PoolConfig) Background() PoolConfig {
	b := cfg
	b.Size, b.MaxOverflow = 0, cfg.BackgroundSize
	b.Timeout = cfg.BackgroundTimeout
	return b
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
	if cfg.PgBouncer {
		// Transaction pooling hands each transaction any server
		// connection: a statement prepared on one is unknown on the next.
		pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
		pc.ConnConfig.StatementCacheCapacity = 0
		pc.ConnConfig.DescriptionCacheCapacity = 0
	}
	if tracer != nil {
		pc.ConnConfig.Tracer = tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return pool, nil
}
