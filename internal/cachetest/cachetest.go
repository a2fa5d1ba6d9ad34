// Package cachetest wires the generated caching decorator around a store
// for tests, the way internal/app does in production: one place, so a test
// of the HTTP layer and a benchmark cannot wire it differently. (The tests
// of db/dbcache itself keep their own helper: they are inside the package
// this one imports.)
package cachetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbcache"
	"github.com/replyrocket/replyrocket/internal/cache"
)

// Wrap returns store behind a cache built from cfg (its own Prometheus
// registry), ready to serve: it waits for Redis when cfg names one. The
// cache is closed when the test ends.
func Wrap(t testing.TB, store db.Store, cfg cache.Config, log *slog.Logger) (*dbcache.Store, *cache.Cache) {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := dbcache.NewCache(cfg, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatalf("cachetest: new cache: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("cachetest: cache not ready: %v", err)
	}
	s, err := dbcache.New(store, c)
	if err != nil {
		t.Fatalf("cachetest: wrap the store: %v", err)
	}
	return s, c
}
