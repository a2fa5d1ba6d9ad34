package db

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/pgsession"
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

	// ApplicationName is the pool's application_name in pg_stat_activity
	// (pgsession's pool names: api, background, replica-N); empty leaves
	// the URL's. NamedSessions lets work name the session it holds through
	// its context (pgsession.With): the background pool's monitor and
	// scheduled jobs. It is off for the request and replica pools, since it
	// makes every release of a connection a goroutine of pgxpool's.
	ApplicationName string
	NamedSessions   bool
}

// Background is the configuration of the background pool: the same
// database, at most BackgroundSize connections, none kept open when idle,
// BackgroundTimeout to wait for one, named "background" and open to the
// session names of the work it runs.
func (cfg PoolConfig) Background() PoolConfig {
	b := cfg
	b.Size, b.MaxOverflow = 0, cfg.BackgroundSize
	b.Timeout = cfg.BackgroundTimeout
	b.ApplicationName, b.NamedSessions = pgsession.Background, true
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
	if cfg.ApplicationName != "" {
		pc.ConnConfig.RuntimeParams["application_name"] = cfg.ApplicationName
		if cfg.NamedSessions {
			pc.PrepareConn, pc.AfterRelease = pgsession.Hooks(cfg.ApplicationName)
		}
	}
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
