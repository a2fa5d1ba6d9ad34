// Package cache is the runtime of the generated caching Querier decorator
// (package db/dbcache): two tiers — otter in process (L1, l1.go), Redis
// through gocache shared between instances (L2) — validated by version
// stamps rather than tag sets.
//
// Versions live in slots: one per table and per table column (bumped by
// writes whose rows no scope names), and a fixed array of hashed slots per
// scope (see scope.go), so that a write invalidates only the reads that
// could contain the rows it changed. A load captures the versions of the
// slots its query depends on before it runs, and the entry carries them; an
// entry whose stamps differ from the current versions is a miss, never
// served. A write bumps its slots after it committed and before it returns,
// so a read that starts after a write was acknowledged cannot be served an
// entry loaded before it, and a load racing the write stores an entry that
// is already dead. With Redis the authoritative versions are Redis counters;
// each instance mirrors them in memory (its own bumps synchronously,
// others' through pub/sub), so validating costs no round trip.
package cache

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eko/gocache/lib/v4/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// ErrUnknownTable is returned when invalidating a table no query reads or
// writes.
var ErrUnknownTable = errors.New("cache: unknown table")

// Options are what the cache needs besides its Config.
type Options struct {
	// Tables are the tables the queries read or write (dbmeta.Tables).
	Tables []string
	// Versions are the named version slots of the generated queries
	// (dbcache.Versions): one per table and table column, and one per scope
	// and scope column ("emails.campaign_id#is_opened").
	Versions []string
	// Scopes are the scopes with hashed slots (dbcache.Scopes).
	Scopes []Scope
	// TriggerWrites are, per table, the tables its triggers write
	// (dbmeta.TriggerWrites): InvalidateTable invalidates them with it.
	TriggerWrites map[string][]string
	// LoadFloor, when set, returns the context a load runs with so that it
	// reads a database that has replayed WAL position lsn (read replicas:
	// dbroute.WithMinLSN); the maximum uint64 means the primary.
	LoadFloor func(ctx context.Context, lsn uint64) context.Context
	// Actor, when set, names the user a read acts for and memoises per
	// request the sequence number of that user's last invalidation, which
	// it gets by calling load once: with several instances, a user's read
	// that reaches an instance before that user's own invalidation did
	// bypasses the tiers instead of being served the old entry.
	Actor func(ctx context.Context, load func(ctx context.Context, user string) uint64) (uint64, bool)
	// AlwaysCached names the queries read through the cache even under
	// Config.Disabled: the API-key lookup, which every request makes before
	// its own read. Their invalidation is the same as under the enabled
	// cache (a revocation bumps what the lookup depends on before it
	// returns), so CACHE_DISABLED keeps what it is for — every data read
	// from the database — without a second round trip per request for a
	// key that did not change.
	AlwaysCached []string
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
	// triggerWrites are Options.TriggerWrites.
	triggerWrites map[string][]string
	// named are the named slots' names, index maps them to their slots;
	// the scopes' slots follow them in vers.
	named       []string
	index       map[string]int
	scopes      map[string]*scopeInfo
	scopeList   []*scopeInfo
	tableScopes map[string][]*scopeInfo
	vers        []atomic.Uint64
	// slotLSN is, per slot, the highest WAL position of the writes that
	// bumped it: a load of a read depending on the slot runs on a database
	// that has replayed it (Options.LoadFloor), so an entry stored after an
	// invalidation is never older than the write that caused it, whatever
	// replica served the load. floorUntil (unix nanos) sends every load to
	// the primary for a while after a resync, when positions were missed.
	slotLSN    []atomic.Uint64
	floorUntil atomic.Int64
	loadFloor  func(ctx context.Context, lsn uint64) context.Context
	// appliedSeq is the sequence number of the last invalidation this
	// instance applied from Redis; actor finds the acting user's last one
	// (Options.Actor).
	appliedSeq atomic.Uint64
	actor      func(ctx context.Context, load func(ctx context.Context, user string) uint64) (uint64, bool)
	// alwaysCached are Options.AlwaysCached.
	alwaysCached []string
	// epoch names the life of the version counters: it changes when Redis
	// lost them (restart) or this instance lost track of them (Redis
	// unreachable), which invalidates every entry at once.
	epoch   atomic.Uint64
	healthy atomic.Bool

	// l1 is nil with L1Disabled. It is not behind gocache: gocache's
	// wrapper takes a mutex on every Get to count hits, and its store
	// interface takes keys as interfaces (an allocation per hit).
	l1 *l1

	rdb *redis.Client
	// l2 is gocache's Redis store, through its store interface: its
	// generic Cache[T] turns a value of another type into T's zero value
	// with no error, where getL2 reports it (docs/decisions/0014-cache-l2-gocache-store.md).
	l2        store.StoreInterface
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
	vers    string // a hash: slot name -> version
	seq     string // the invalidation sequence
	writer  string // prefix of the per-user last-invalidation markers
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
	c := &Cache{
		cfg: cfg, log: log.With("component", "cache"), index: map[string]int{}, pending: map[int]struct{}{},
		scopes: map[string]*scopeInfo{}, tableScopes: map[string][]*scopeInfo{},
	}
	if err := c.layout(opts); err != nil {
		return nil, err
	}
	c.loadFloor = opts.LoadFloor
	c.actor = opts.Actor
	c.alwaysCached = opts.AlwaysCached
	if !cfg.L1Disabled {
		c.l1 = newL1(cfg.L1MaxBytes)
	}
	c.m = newMetrics(c)
	if opts.Registerer != nil {
		if err := c.m.register(opts.Registerer); err != nil {
			c.closeL1()
			return nil, fmt.Errorf("register cache metrics: %w", err)
		}
	}
	if cfg.RedisURL == "" {
		c.epoch.Store(localEpoch())
		c.healthy.Store(true)
		return c, nil
	}
	if err := c.startRedis(); err != nil {
		c.closeL1()
		return nil, err
	}
	return c, nil
}

// Close stops the Redis subscriber and releases the tiers. A read after
// Close bypasses the cache: no invalidation reaches this instance any more.
func (c *Cache) Close() error {
	c.healthy.Store(false)
	if c.stop != nil {
		c.stop()
		<-c.done
		// Again: a resync may have finished meanwhile.
		c.healthy.Store(false)
	}
	var err error
	if c.rdb != nil {
		err = c.rdb.Close()
	}
	c.closeL1()
	return err
}

// closeL1 stops the L1 clock and drops the entries.
func (c *Cache) closeL1() {
	if c.l1 != nil {
		c.l1.close()
		c.l1.clear()
	}
}

// clearL1 empties the in-process tier.
func (c *Cache) clearL1() {
	if c.l1 != nil {
		c.l1.clear()
	}
}

// layout numbers the slots: the named ones in name order, then each
// scope's ScopeSlots.
func (c *Cache) layout(opts Options) error {
	c.tables = append([]string(nil), opts.Tables...)
	sort.Strings(c.tables)
	c.triggerWrites = opts.TriggerWrites
	named := append([]string(nil), opts.Versions...)
	named = append(named, c.tables...)
	sort.Strings(named)
	for _, n := range named {
		if _, dup := c.index[n]; dup {
			continue
		}
		c.index[n] = len(c.named)
		c.named = append(c.named, n)
	}
	next := len(c.named)
	for _, s := range opts.Scopes {
		if _, dup := c.scopes[s.Name]; dup {
			return fmt.Errorf("cache: scope %q declared twice", s.Name)
		}
		if _, ok := c.index[s.Name]; !ok {
			return fmt.Errorf("cache: scope %q has no scope-wide version slot", s.Name)
		}
		si := &scopeInfo{Scope: s, base: next, label: scopeLabel(s)}
		next += ScopeSlots
		c.scopes[s.Name] = si
		c.scopeList = append(c.scopeList, si)
		c.tableScopes[s.Table] = append(c.tableScopes[s.Table], si)
	}
	c.vers = make([]atomic.Uint64, next)
	c.slotLSN = make([]atomic.Uint64, next)
	return nil
}

// mustIndex is the slot of a named version; the generator emits only
// names it declared, so another is a bug.
func (c *Cache) mustIndex(name string) int {
	i, ok := c.index[name]
	if !ok {
		panic(fmt.Sprintf("cache: unknown version slot %q", name))
	}
	return i
}

// slotName names slot i in Redis and in invalidation messages: a named
// slot by its name, a scope's slot as "scope:n".
func (c *Cache) slotName(i int) string {
	if i < len(c.named) {
		return c.named[i]
	}
	si := c.scopeList[(i-len(c.named))/ScopeSlots]
	return si.Name + ":" + strconv.Itoa(i-si.base)
}

// slotIndex is the inverse of slotName; false for a name this deploy does
// not know.
func (c *Cache) slotIndex(name string) (int, bool) {
	if i, ok := c.index[name]; ok {
		return i, true
	}
	scope, n, ok := strings.Cut(name, ":")
	if !ok {
		return 0, false
	}
	si, ok := c.scopes[scope]
	if !ok {
		return 0, false
	}
	k, err := strconv.Atoi(n)
	if err != nil || k < 0 || k >= ScopeSlots {
		return 0, false
	}
	return si.base + k, true
}

// Tables are the tables the cache knows, sorted.
func (c *Cache) Tables() []string { return append([]string(nil), c.tables...) }

// slotSep separates table (or scope) and column in a version slot name.
const slotSep = "#"

// Ready reports whether annotated reads are currently served from the
// cache: always without Redis; with Redis once the versions are in sync and
// as long as Redis answers.
func (c *Cache) Ready() bool { return c.healthy.Load() && !c.cfg.Disabled }

// WaitReady waits until Ready or ctx ends. A disabled cache still serves
// the queries of Options.AlwaysCached once in sync, so with any of them it
// waits for that; without, it has nothing to wait for.
func (c *Cache) WaitReady(ctx context.Context) error {
	for !c.healthy.Load() && (!c.cfg.Disabled || len(c.alwaysCached) > 0) {
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
// the generated queries; call it after the write committed. Such a write
// fires the table's triggers all the same, so the tables they write
// (Options.TriggerWrites: emails changes campaign_email_counts) are
// invalidated with it, in the same bump.
func (c *Cache) InvalidateTable(ctx context.Context, table string) error {
	if !slices.Contains(c.tables, table) {
		return fmt.Errorf("%w: %q", ErrUnknownTable, table)
	}
	b := c.NewBumps()
	for _, t := range append([]string{table}, c.triggerWrites[table]...) {
		b.Table(t)
		for _, si := range c.tableScopes[t] {
			b.Wide(si.Name, rowColumn)
		}
	}
	c.Apply(ctx, b)
	return nil
}

// Apply makes the invalidations b collected (what the generated decorator
// calls after a write committed).
func (c *Cache) Apply(ctx context.Context, b *Bumps) {
	if b == nil || b.Empty() {
		return
	}
	c.bump(ctx, b.slots(), b.lsn, b.writer)
}

// Clear removes this application's cached entries: L1 entirely, and in
// Redis only the keys under the namespace's entry prefix (SCAN + UNLINK in
// batches; never FLUSHDB, and never the version counters, whose reset would
// let old entries validate again).
func (c *Cache) Clear(ctx context.Context) (removed int64, err error) {
	c.clearL1()
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
func (c *Cache) bump(ctx context.Context, idx []int, lsn uint64, writer string) {
	if len(idx) == 0 {
		return
	}
	// The floors first: a load that captures a bumped version must also
	// see the position of the write that bumped it.
	if lsn > 0 {
		for _, i := range idx {
			storeMax(&c.slotLSN[i], lsn)
		}
	}
	if c.rdb == nil {
		for _, i := range idx {
			c.vers[i].Add(1)
		}
		return
	}
	c.bumpRedis(ctx, idx, lsn, writer)
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
