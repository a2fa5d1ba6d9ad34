// Package cache is the runtime of the generated caching Querier decorator
// (package db/dbcache): two tiers on gocache — ristretto in process (L1),
// Redis shared between instances (L2) — validated by per-table version
// stamps rather than tag sets.
//
// Every table has a version. A load captures the versions of the tables its
// query reads before it runs, and the entry carries them; an entry whose
// stamps differ from the current versions is a miss, never served. A write
// bumps the versions of the tables it wrote after it committed and before it
// returns, so a read that starts after a write was acknowledged cannot be
// served an entry loaded before it, and a load racing the write stores an
// entry that is already dead. With Redis the authoritative versions are
// Redis counters; each instance mirrors them in memory (its own bumps
// synchronously, others' through pub/sub), so validating costs no round trip.
package cache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	libcache "github.com/eko/gocache/lib/v4/cache"
	riststore "github.com/eko/gocache/store/ristretto/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownTable is returned when invalidating a table no query reads or
// writes.
var ErrUnknownTable = errors.New("cache: unknown table")

// Options are what the cache needs besides its Config.
type Options struct {
	// Versions are the version slots of the generated queries
	// (dbcache.Versions): one per table, plus "table#column" for columns
	// that UPDATEs set. Invalidating any other is an error.
	Versions []string
	// Registerer receives the cache's Prometheus metrics; nil registers
	// nowhere.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Cache holds the tiers and the table versions. It is safe for concurrent
// use; Close stops its Redis subscriber.
type Cache struct {
	cfg    Config
	log    *slog.Logger
	tables []string
	index  map[string]int
	vers   []atomic.Uint64
	// epoch names the life of the version counters: it changes when Redis
	// lost them (restart) or this instance lost track of them (Redis
	// unreachable), which invalidates every entry at once.
	epoch   atomic.Uint64
	healthy atomic.Bool

	rist *ristretto.Cache[string, any]
	l1   *libcache.Cache[any]

	rdb       *redis.Client
	l2        *libcache.Cache[any]
	keys      redisKeys
	syncMu    sync.RWMutex // bumps hold it shared, a resync exclusively
	pendingMu sync.Mutex
	pending   map[int]struct{}
	resync    chan struct{}
	resyncs   atomic.Int64
	stop      context.CancelFunc
	done      chan struct{}

	sf      singleflight.Group
	loads   sharedLoads // the contexts of sf's database loads
	m       *metrics
	queryMu sync.Mutex
	queries []*Query
}

type redisKeys struct {
	epoch   string
	vers    []string
	channel string
	entries string
}

// New builds a cache. With cfg.RedisURL set it starts a subscriber on the
// invalidation channel; until that has synchronised the versions, reads
// bypass the cache (WaitReady waits for it).
func New(cfg Config, opts Options) (*Cache, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.L1MaxBytes <= 0 {
		cfg.L1MaxBytes = DefaultL1MaxBytes
	}
	if cfg.RedisTimeout <= 0 {
		cfg.RedisTimeout = DefaultRedisTimeout
	}
	if cfg.LoadTimeout <= 0 {
		cfg.LoadTimeout = DefaultLoadTimeout
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	c := &Cache{cfg: cfg, log: log.With("component", "cache"), index: map[string]int{}, pending: map[int]struct{}{}}
	tables := append([]string(nil), opts.Versions...)
	sort.Strings(tables)
	for _, t := range tables {
		if _, dup := c.index[t]; dup {
			continue
		}
		c.index[t] = len(c.tables)
		c.tables = append(c.tables, t)
	}
	c.vers = make([]atomic.Uint64, len(c.tables))
	rist, err := ristretto.NewCache(&ristretto.Config[string, any]{
		// Ristretto wants ten counters per expected entry; entries are
		// rarely below 100 bytes.
		NumCounters: max(cfg.L1MaxBytes/10, 10_000),
		MaxCost:     cfg.L1MaxBytes,
		BufferItems: 64,
		Metrics:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("create L1 cache: %w", err)
	}
	c.rist = rist
	c.l1 = libcache.New[any](riststore.NewRistretto(rist))
	c.m = newMetrics(c)
	if opts.Registerer != nil {
		if err := c.m.register(opts.Registerer); err != nil {
			rist.Close()
			return nil, fmt.Errorf("register cache metrics: %w", err)
		}
	}
	if cfg.RedisURL == "" {
		c.epoch.Store(localEpoch())
		c.healthy.Store(true)
		return c, nil
	}
	if err := c.startRedis(); err != nil {
		rist.Close()
		return nil, err
	}
	return c, nil
}

// Close stops the Redis subscriber and releases the tiers.
func (c *Cache) Close() error {
	if c.stop != nil {
		c.stop()
		<-c.done
	}
	var err error
	if c.rdb != nil {
		err = c.rdb.Close()
	}
	c.rist.Close()
	return err
}

// Tables are the tables the cache knows, sorted.
func (c *Cache) Tables() []string {
	var out []string
	for _, t := range c.tables {
		if !strings.Contains(t, slotSep) {
			out = append(out, t)
		}
	}
	return out
}

// slotSep separates table and column in a version slot name.
const slotSep = "#"

// RedisEnabled reports whether a shared tier is configured.
func (c *Cache) RedisEnabled() bool { return c.rdb != nil }

// Ready reports whether annotated reads are currently served from the
// cache: always without Redis; with Redis once the versions are in sync and
// as long as Redis answers.
func (c *Cache) Ready() bool { return c.healthy.Load() && !c.cfg.Disabled }

// WaitReady waits until Ready or ctx ends; a disabled cache has nothing
// to wait for.
func (c *Cache) WaitReady(ctx context.Context) error {
	for !c.Ready() && !c.cfg.Disabled {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for cache: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// InvalidateTable makes every cached result that read table a miss, on this
// instance at once and on the others through Redis. For writes made outside
// the generated queries; call it after the write committed.
func (c *Cache) InvalidateTable(ctx context.Context, table string) error {
	if strings.Contains(table, slotSep) {
		return fmt.Errorf("%w: %q", ErrUnknownTable, table)
	}
	return c.Invalidate(ctx, table)
}

// Invalidate bumps version slots: tables, or "table#column" after an
// UPDATE of that column (what the generated decorator calls after writes).
func (c *Cache) Invalidate(ctx context.Context, versions ...string) error {
	idx := make([]int, 0, len(versions))
	for _, t := range versions {
		i, ok := c.index[t]
		if !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTable, t)
		}
		idx = append(idx, i)
	}
	c.bump(ctx, idx)
	return nil
}

// Clear removes this application's cached entries: L1 entirely, and in
// Redis only the keys under the namespace's entry prefix (SCAN + UNLINK in
// batches; never FLUSHDB, and never the version counters, whose reset would
// let old entries validate again).
func (c *Cache) Clear(ctx context.Context) (removed int64, err error) {
	if err := c.l1.Clear(ctx); err != nil {
		return 0, fmt.Errorf("clear L1: %w", err)
	}
	if c.rdb == nil {
		return 0, nil
	}
	// An admin action may take longer than the per-request Redis timeout.
	rdb := c.rdb.WithTimeout(max(c.cfg.RedisTimeout, 5*time.Second))
	iter := rdb.Scan(ctx, 0, c.keys.entries+"*", 500).Iterator()
	batch := make([]string, 0, 500)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n, err := rdb.Unlink(ctx, batch...).Result()
		removed += n
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return removed, fmt.Errorf("unlink cached keys: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return removed, fmt.Errorf("scan cached keys: %w", err)
	}
	if err := flush(); err != nil {
		return removed, fmt.Errorf("unlink cached keys: %w", err)
	}
	return removed, nil
}

// bump invalidates the tables at idx.
func (c *Cache) bump(ctx context.Context, idx []int) {
	if len(idx) == 0 {
		return
	}
	for _, i := range idx {
		c.m.invalidations[i].Add(1)
		c.m.promInvalidations.WithLabelValues(c.tables[i]).Inc()
	}
	if c.rdb == nil {
		for _, i := range idx {
			c.vers[i].Add(1)
		}
		return
	}
	c.bumpRedis(ctx, idx)
}

// localEpoch is an epoch no Redis epoch can equal (top bit set), used while
// this instance is out of touch with Redis.
func localEpoch() uint64 { return randomUint64() | 1<<63 }

func redisEpochCandidate() uint64 { return randomUint64()&^(1<<63) | 1 }

func randomUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// storeMax raises v to n unless it is already higher: versions only grow
// within an epoch, and messages may arrive out of order.
func storeMax(v *atomic.Uint64, n uint64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}
