package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbcache"
	"github.com/replyrocket/replyrocket/db/dbroute"
	"github.com/replyrocket/replyrocket/handlers"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/ingest"
	"github.com/replyrocket/replyrocket/internal/keyset"
	"github.com/replyrocket/replyrocket/internal/monitor"
	"github.com/replyrocket/replyrocket/internal/partitions"
	"github.com/replyrocket/replyrocket/internal/pgsession"
	"github.com/replyrocket/replyrocket/internal/querystats"
	"github.com/replyrocket/replyrocket/internal/ratelimit"
	"github.com/replyrocket/replyrocket/internal/wire"
	"github.com/replyrocket/replyrocket/internal/writedeadline"
)

// App is a wired server. Close releases what New opened, in reverse order.
type App struct {
	Config config.Config
	Log    *slog.Logger
	// Pool is the primary's pool, which requests use.
	Pool *pgxpool.Pool
	// Background is the primary's small pool for long-running work: the
	// monitor, partition maintenance, seeding.
	Background *pgxpool.Pool
	// Replicas are the read replicas' pools (none without
	// DATABASE_REPLICA_URLS); Router sends reads to them.
	Replicas []*pgxpool.Pool
	DBRouter *dbroute.Router
	Store    db.Store
	Cache    *cache.Cache
	Router   *echo.Echo
	// jobs is the Store of the scheduled jobs: the background pool, through
	// the cache decorator, so what a job writes is invalidated.
	jobs    *dbcache.Store
	monitor *monitor.Monitor
	closers []func()
}

// New opens the pool and builds everything on it. The data flows one way:
// router → cache decorator → store → pgx.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if cfg.DB.URL == "" {
		return nil, errors.New("DATABASE_URL is not set")
	}
	a := &App{Config: cfg, Log: log}
	tracer := querystats.New()
	poolCfg := wire.Pool(cfg.DB)
	poolCfg.ApplicationName = pgsession.API
	pool, err := db.NewPool(ctx, poolCfg, tracer)
	if err != nil {
		return nil, err
	}
	a.Pool = pool
	a.closers = append(a.closers, pool.Close)
	if a.Background, err = db.NewPool(ctx, poolCfg.Background(), nil); err != nil {
		a.Close()
		return nil, fmt.Errorf("background pool: %w", err)
	}
	a.closers = append(a.closers, a.Background.Close)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := a.openReplicas(ctx, tracer, reg); err != nil {
		a.Close()
		return nil, err
	}

	cacheCfg := wire.Cache(cfg.Cache)
	if len(cfg.Replicas.ReplicaURLs) > 0 {
		// After a resync with Redis, loads read the primary until any
		// replica in rotation has replayed the writes whose positions this
		// instance missed.
		cacheCfg.ResyncFloor = cfg.Replicas.ReplicaMaxLag
	}
	c, err := dbcache.NewCache(cacheCfg, reg, log)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	a.Cache = c
	a.closers = append(a.closers, func() { _ = c.Close() })
	var routing []db.StoreOption
	if a.DBRouter.HasReplicas() {
		routing = []db.StoreOption{db.RouteWith(a.DBRouter), db.AfterCommit(a.DBRouter.AfterCommit)}
	}
	store, err := dbcache.New(db.NewStore(pool, poolCfg.Timeout, routing...), c)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Store = store
	// Scheduled jobs run on the background pool, through the same cache.
	a.jobs = store.On(db.NewStore(a.Background, poolCfg.Background().Timeout))
	// The monitor's catalog queries and EXPLAINs are long-running work: they
	// run on the background pool, and report the request pool's figures.
	a.monitor = monitor.New(a.Background, wire.Monitor(cfg.Monitor), monitor.Sources{Tracer: tracer, Cache: c, Pool: pool})
	a.closers = append(a.closers, a.monitor.Close)

	// One limiter: the per-key budgets (unless RATE_LIMIT_DISABLED) and
	// the per-address budget of failed authentications, which holds
	// whatever RATE_LIMIT_DISABLED says, as it always has.
	limiter, err := ratelimit.New(ratelimit.Config{
		RedisURL: cfg.Cache.RedisURL, Namespace: cfg.Cache.Namespace + ":ratelimit", Timeout: time.Duration(cfg.Cache.RedisTimeout),
	}, reg, log)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("rate limiter: %w", err)
	}
	a.closers = append(a.closers, func() { _ = limiter.Close() })
	keyLimiter := limiter
	if cfg.Limits.RateLimitDisabled {
		keyLimiter = nil
	}
	keys, err := a.startKeySet(ctx)
	if err != nil {
		a.Close()
		return nil, err
	}

	a.Router = handlers.New(handlers.Deps{
		Pprof: cfg.Server.Pprof,
		Store: a.Store, Pool: pool, Router: a.DBRouter, Log: log, AdminKey: cfg.Server.AdminKey,
		RequestTimeout: cfg.Server.RequestTimeout, IPExtractor: IPExtractor(cfg.Server.TrustedProxies), Registry: reg,
		BodyDrainBytes:        drainBytes(cfg.HTTP.BodyDrainBytes),
		UnknownKeyTTL:         cfg.Limits.UnknownKeyTTL,
		AuthFailuresPerMinute: cfg.Limits.AuthFailuresPerMinute,
		AuthLimiter:           limiter,
		Keys:                  keys,
		RateLimiter:           keyLimiter,
		KeyRateLimit:          ratelimit.Limit{PerMinute: cfg.Limits.RatePerMinute, Burst: cfg.Limits.RateBurst},
		AdminRateLimit:        ratelimit.Limit{PerMinute: cfg.Limits.AdminRatePerMinute, Burst: cfg.Limits.AdminRatePerMinute},
		APIMiddleware:         []echo.MiddlewareFunc{handlers.CacheHeader()},
		Monitor:               a.monitor,
		Cache:                 c,
		Events:                ingest.New(a.Store, wire.Ingest(cfg.Events, cfg.Server.RequestTimeout)),
	})
	return a, nil
}

// startKeySet loads the set of existing API keys from the primary (on the
// background pool: a replica's lag could drop a key just created) and keeps
// it current through Redis announcements and periodic reloads.
func (a *App) startKeySet(ctx context.Context) (*keyset.Set, error) {
	bg := db.NewStore(a.Background, time.Duration(a.Config.DB.BackgroundPoolTimeout))
	src := func(ctx context.Context, after []byte, limit int32) ([][]byte, error) {
		return bg.ListAPIKeyHashesAfter(ctx, db.ListAPIKeyHashesAfterParams{After: after, PageSize: limit})
	}
	c := a.Config.Cache
	keys, err := keyset.New(keyset.Config{RedisURL: c.RedisURL, Channel: c.Namespace + ":keyset", Timeout: time.Duration(c.RedisTimeout)}, src, a.Log)
	if err != nil {
		return nil, err
	}
	keys.Start(ctx)
	a.closers = append(a.closers, func() { _ = keys.Close() })
	return keys, nil
}

// drainBytes maps HTTP_BODY_DRAIN_BYTES=0 (drain nothing) onto the router's
// "negative: none", its zero being the default.
func drainBytes(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}

// Close releases what New opened, newest first: the rate limiter, the
// monitor, the cache (with its Redis clients and invalidation subscriber),
// the replica router and pools, then the background and request pools.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// openReplicas opens a pool per replica (sized like the primary's unless
// DB_REPLICA_POOL_SIZE says otherwise) and the router over them, and runs
// the first health check: a replica that cannot be reached is logged and
// kept out of rotation, never fatal.
func (a *App) openReplicas(ctx context.Context, tracer pgx.QueryTracer, reg prometheus.Registerer) error {
	primary := wire.Pool(a.Config.DB)
	replicas := wire.Replicas(a.Config.Replicas)
	for i, u := range replicas.ReplicaURLs {
		rc := primary
		rc.URL = u
		rc.ApplicationName = pgsession.Replica(i + 1)
		if n := replicas.ReplicaPoolSize; n > 0 {
			rc.Size = n
		}
		p, err := db.NewPool(ctx, rc, tracer)
		if err != nil {
			return fmt.Errorf("DATABASE_REPLICA_URLS entry %d: %w", i+1, err)
		}
		a.Replicas = append(a.Replicas, p)
		a.closers = append(a.closers, p.Close)
	}
	opts := dbroute.Options{
		Config: replicas, PoolTimeout: primary.Timeout, ReadOnly: dbroute.ReplicaReads(),
		Log: a.Log, Registerer: reg,
	}
	if opts.MaxLag <= 0 {
		opts.MaxLag = dbroute.DefaultMaxLag
	}
	if len(a.Replicas) > 0 {
		var rdb *redis.Client
		if u := a.Config.Cache.RedisURL; u != "" {
			ro, err := redis.ParseURL(u)
			if err != nil {
				return errors.New("REDIS_URL: not a redis:// URL")
			}
			ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout = markerRedisTimeout, markerRedisTimeout, markerRedisTimeout
			rdb = redis.NewClient(ro)
			a.closers = append(a.closers, func() { _ = rdb.Close() })
		}
		opts.Markers = dbroute.NewMarkers(dbroute.MarkerTTL(opts.MaxLag), rdb, a.Config.Cache.Namespace)
	}
	a.DBRouter = dbroute.New(a.Pool, a.Replicas, opts)
	a.DBRouter.Start(ctx)
	a.closers = append(a.closers, a.DBRouter.Close)
	return nil
}

// markerRedisTimeout bounds a read-your-writes marker's Redis round trip;
// past it the read goes to the primary.
const markerRedisTimeout = 200 * time.Millisecond

// Open is New followed by EnsurePartitions: the app every serving command
// starts (serve, dev, the load benchmark's instances), ready for inserts.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	a, err := New(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if err := a.EnsurePartitions(ctx); err != nil {
		a.Close()
		return nil, err
	}
	return a, nil
}

// EnsurePartitions creates this month's email partition and the configured
// months ahead, so inserts never land in the DEFAULT partition. It runs on
// the background pool, in a session named partition-maintenance:
// maintenance never takes a request's connection.
func (a *App) EnsurePartitions(ctx context.Context) error {
	ctx = pgsession.With(ctx, pgsession.PartitionMaintenance)
	created, err := partitions.Ensure(ctx, a.jobs, time.Now(), a.Config.Server.PartitionsAhead)
	if err != nil {
		return fmt.Errorf("ensure email partitions: %w", err)
	}
	if len(created) > 0 {
		a.Log.Info("created email partitions", "partitions", created)
	}
	return nil
}

// PurgeIdempotencyKeys deletes stored responses older than IDEMPOTENCY_TTL;
// a retry after that runs as a new request. It runs on the background pool,
// in a session named idempotency-purge.
func (a *App) PurgeIdempotencyKeys(ctx context.Context) (int64, error) {
	ctx = pgsession.With(ctx, pgsession.IdempotencyPurge)
	ttl := a.Config.Limits.IdempotencyTTL
	if ttl <= 0 {
		ttl = handlers.DefaultIdempotencyTTL
	}
	n, err := a.jobs.PurgeIdempotencyKeys(ctx, time.Now().Add(-ttl))
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys older than %s: %w", ttl, err)
	}
	return n, nil
}

// PurgeEmailEvents forgets event ids older than EVENT_DEDUP_TTL; an event
// sent again after that is applied as a new one (which changes nothing
// for opens and replies: their first time stays). It runs on the
// background pool, in a session named event-purge.
func (a *App) PurgeEmailEvents(ctx context.Context) (int64, error) {
	ctx = pgsession.With(ctx, pgsession.EventPurge)
	ttl := a.Config.Events.DedupTTL
	n, err := a.jobs.PurgeEmailEvents(ctx, time.Now().Add(-ttl))
	if err != nil {
		return 0, fmt.Errorf("purge email events older than %s: %w", ttl, err)
	}
	return n, nil
}

// job is a scheduled task of a running server: its name (also its session
// name, see pgsession), how often it runs, and what it does.
type job struct {
	name  string
	every time.Duration
	run   func(context.Context) error
}

// partitionCheckEvery is how often a running server re-ensures partitions,
// so one that runs for months never reaches a month without one.
const partitionCheckEvery = 6 * time.Hour

// purgeEvery is how often stored Idempotency-Key responses older than
// IDEMPOTENCY_TTL, and event ids older than EVENT_DEDUP_TTL, are deleted.
const purgeEvery = time.Hour

// scheduledJobs are the jobs Serve runs, each on its own ticker.
func (a *App) scheduledJobs() []job {
	return []job{
		{name: pgsession.PartitionMaintenance, every: partitionCheckEvery, run: a.EnsurePartitions},
		{name: pgsession.IdempotencyPurge, every: purgeEvery, run: func(ctx context.Context) error {
			_, err := a.PurgeIdempotencyKeys(ctx)
			return err
		}},
		{name: pgsession.EventPurge, every: purgeEvery, run: func(ctx context.Context) error {
			_, err := a.PurgeEmailEvents(ctx)
			return err
		}},
	}
}

// runJob runs j every j.every until ctx is done. A failure is logged and
// the job runs again at its next tick.
func (a *App) runJob(ctx context.Context, j job) {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := j.run(ctx); err != nil && ctx.Err() == nil {
				a.Log.Error("scheduled job failed", "job", j.name, "error", err)
			}
		}
	}
}

// Serve answers on ln until ctx is done, then shuts down gracefully: it
// stops accepting, lets in-flight requests finish within ShutdownTimeout,
// and returns. The caller closes the App (and with it the pool) after.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           a.Router,
		MaxHeaderBytes:    a.Config.HTTP.MaxHeaderBytes,
		ReadHeaderTimeout: a.Config.HTTP.ReadHeaderTimeout,
		ReadTimeout:       a.Config.HTTP.ReadTimeout,
		WriteTimeout:      a.Config.HTTP.WriteTimeout,
		IdleTimeout:       a.Config.HTTP.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	// A kept-alive connection's requests share one write-deadline timer
	// (decision 0017).
	ln = writedeadline.Listen(ln, a.Config.HTTP.WriteTimeout)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	var jobs sync.WaitGroup
	defer jobs.Wait()
	jctx, stopJobs := context.WithCancel(ctx)
	defer stopJobs() // runs first: defers unwind in reverse
	for _, j := range a.scheduledJobs() {
		jobs.Go(func() { a.runJob(jctx, j) })
	}
	a.Log.Info("serving", "addr", ln.Addr().String(), "env", a.Config.Env)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	a.Log.Info("shutting down: draining in-flight requests", "timeout", a.Config.Server.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	a.Log.Info("stopped")
	return nil
}
