// Package wire hands each package its part of the one configuration
// (internal/config) as that package's own type. It is the one place that
// knows both sides, so that internal/config imports none of the packages it
// configures (loading the configuration compiles none of them), and no
// package reads another's settings.
package wire

import (
	"time"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbroute"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/config"
	"github.com/replyrocket/replyrocket/internal/ingest"
	"github.com/replyrocket/replyrocket/internal/monitor"
)

// Pool is db's part: the request pool, and the background pool's size and
// wait.
func Pool(d config.DB) db.PoolConfig {
	return db.PoolConfig{
		URL: d.URL, Size: d.PoolSize, MaxOverflow: d.MaxOverflow,
		Timeout: time.Duration(d.PoolTimeout), Recycle: time.Duration(d.PoolRecycle),
		OverflowIdle: time.Minute, PgBouncer: d.PgBouncer,
		BackgroundSize: d.BackgroundPoolSize, BackgroundTimeout: time.Duration(d.BackgroundPoolTimeout),
	}
}

// Replicas is dbroute's part.
func Replicas(r config.Replicas) dbroute.Config {
	return dbroute.Config{
		ReplicaURLs: []string(r.ReplicaURLs), ReplicaPoolSize: r.ReplicaPoolSize,
		MaxLag: r.ReplicaMaxLag, CheckEvery: dbroute.DefaultCheckEvery,
	}
}

// Cache is the cache runtime's part.
func Cache(c config.Cache) cache.Config {
	return cache.Config{
		Namespace: c.Namespace, Disabled: c.CacheDisabled, L1MaxBytes: c.L1MaxBytes, L1Disabled: c.L1Disabled,
		RedisURL: c.RedisURL, RedisTimeout: time.Duration(c.RedisTimeout), LoadTimeout: time.Duration(c.LoadTimeout),
		ScopesDisabled: c.ScopesDisabled,
	}
}

// Monitor is the monitor's part.
func Monitor(m config.Monitor) monitor.Config {
	return monitor.Config{
		CatalogTimeout: m.CatalogTimeout, ExplainTimeout: m.ExplainTimeout, LockTimeout: m.LockTimeout,
		AllowAnalyze: m.AllowAnalyze, LongQuery: m.LongQuery, IdleInTransaction: m.IdleInTransaction,
		SlowMean: m.SlowMean, SlowCalls: m.SlowCalls, SnapshotInterval: m.SnapshotInterval,
		Retention: m.Retention, HypoPGDisabled: m.HypoPGDisabled,
	}
}

// Ingest is the event batcher's part; a batch's transaction gets the
// request deadline, since requests wait for it.
func Ingest(e config.Events, requestTimeout time.Duration) ingest.Config {
	return ingest.Config{MaxEvents: e.BatchMax, MaxWait: e.BatchWait, InFlight: e.BatchInFlight, Timeout: requestTimeout}
}
