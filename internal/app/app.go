package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbcache"
	"github.com/replyrocket/replyrocket/handlers"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/monitor"
	"github.com/replyrocket/replyrocket/internal/partitions"
	"github.com/replyrocket/replyrocket/internal/querystats"
)

// App is a wired server. Close releases what New opened, in reverse order.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Pool    *pgxpool.Pool
	Store   db.Store
	Cache   *cache.Cache
	Router  *echo.Echo
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
	poolCfg := cfg.DB.Pool()
	pool, err := db.NewPool(ctx, poolCfg, tracer)
	if err != nil {
		return nil, err
	}
	a.Pool = pool
	a.closers = append(a.closers, pool.Close)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	c, err := dbcache.NewCache(cfg.Cache.CacheConfig(), reg, log)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("cache: %w", err)
	}
	a.Cache = c
	a.closers = append(a.closers, func() { _ = c.Close() })
	store, err := dbcache.New(db.NewStore(pool, poolCfg.Timeout), c)
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Store = store
	a.monitor = monitor.New(pool, cfg.Monitor.MonitorConfig(), monitor.Sources{Tracer: tracer, Cache: c})
	a.closers = append(a.closers, a.monitor.Close)

	a.Router = handlers.New(handlers.Deps{
		Store: a.Store, Pool: pool, Log: log, AdminKey: cfg.Server.AdminKey,
		RequestTimeout: cfg.Server.RequestTimeout, IPExtractor: IPExtractor(cfg.Server.TrustedProxies), Registry: reg,
		APIMiddleware: []echo.MiddlewareFunc{handlers.CacheHeader()},
		Monitor:       a.monitor, Cache: c,
	})
	return a, nil
}

// Close releases what New opened, newest first: the monitor, the cache
// (with its Redis clients and invalidation subscriber), then the pool.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// EnsurePartitions creates this month's email partition and the configured
// months ahead, so inserts never land in the DEFAULT partition.
func (a *App) EnsurePartitions(ctx context.Context) error {
	created, err := partitions.Ensure(ctx, a.Store, time.Now(), a.Config.Server.PartitionsAhead)
	if err != nil {
		return fmt.Errorf("ensure email partitions: %w", err)
	}
	if len(created) > 0 {
		a.Log.Info("created email partitions", "partitions", created)
	}
	return nil
}

// partitionCheckEvery is how often a running server re-ensures partitions,
// so one that runs for months never reaches a month without one.
const partitionCheckEvery = 6 * time.Hour

func (a *App) maintainPartitions(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.EnsurePartitions(ctx); err != nil && ctx.Err() == nil {
				a.Log.Error("periodic partition check", "error", err)
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
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	maintDone := make(chan struct{})
	defer func() { <-maintDone }()
	mctx, stopMaint := context.WithCancel(ctx)
	defer stopMaint() // runs first: defers unwind in reverse
	go func() {
		defer close(maintDone)
		a.maintainPartitions(mctx, partitionCheckEvery)
	}()
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
