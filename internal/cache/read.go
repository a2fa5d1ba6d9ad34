package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/eko/gocache/lib/v4/store"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
)

// QuerySpec describes one annotated query; the generator emits them.
type QuerySpec struct {
	Name string
	// Hash covers the SQL text and the result type's shape, so a deploy
	// that changes either never reads entries of the old shape.
	Hash  string
	TTL   time.Duration
	SWR   time.Duration
	Reads []string
}

// Query is a registered QuerySpec: its key prefix, the indexes of the
// tables it reads, and its counters.
type Query struct {
	c      *Cache
	spec   QuerySpec
	prefix string
	reads  []int
	stats  queryStats
	prom   queryProm
}

// Prefix is the start of every key of the query; generated code appends
// the encoded arguments to it.
func (q *Query) Prefix() string { return q.prefix }

// Name is the sqlc query name.
func (q *Query) Name() string { return q.spec.Name }

// Register prepares a query for reads through the cache.
func (c *Cache) Register(spec QuerySpec) (*Query, error) {
	if spec.TTL <= 0 {
		return nil, fmt.Errorf("register %s: ttl must be positive", spec.Name)
	}
	q := &Query{c: c, spec: spec, prefix: c.cfg.Namespace + ":c:" + spec.Name + ":" + spec.Hash + ":"}
	for _, t := range spec.Reads {
		i, ok := c.index[t]
		if !ok {
			return nil, fmt.Errorf("register %s: %w: %q", spec.Name, ErrUnknownTable, t)
		}
		q.reads = append(q.reads, i)
	}
	q.prom = c.m.forQuery(spec.Name)
	c.queryMu.Lock()
	c.queries = append(c.queries, q)
	c.queryMu.Unlock()
	return q, nil
}

// Bypass records an annotated read that skipped the cache (inside a
// transaction, where it must see the transaction's own writes).
func (q *Query) Bypass(ctx context.Context) {
	q.stats.bypass.Add(1)
	q.prom.bypass.Inc()
	recorderFrom(ctx).record(OutcomeBypass)
}

// entry is what L1 holds: the value as its Go type, and the epoch and
// table versions it was loaded under.
type entry struct {
	epoch  uint64
	stamps []uint64
	soft   int64 // unix nanos: fresh until then
	hard   int64 // unix nanos: served stale until then, while revalidating
	val    any
}

// version is a captured epoch and the versions of one query's tables.
type version struct {
	epoch  uint64
	stamps []uint64
}

func (c *Cache) capture(q *Query) version {
	v := version{epoch: c.epoch.Load(), stamps: make([]uint64, len(q.reads))}
	for k, i := range q.reads {
		v.stamps[k] = c.vers[i].Load()
	}
	return v
}

func (c *Cache) current(q *Query, epoch uint64, stamps []uint64) bool {
	if epoch != c.epoch.Load() || len(stamps) != len(q.reads) {
		return false
	}
	for k, i := range q.reads {
		if stamps[k] != c.vers[i].Load() {
			return false
		}
	}
	return true
}

// Read serves one annotated read: from L1, then L2, then the database
// through load, shared by concurrent callers of the same key and versions.
// key is the query's Prefix followed by the encoded arguments.
func Read[T any](ctx context.Context, q *Query, key []byte, codec *Codec[T], load func(context.Context) (T, error)) (T, error) {
	c := q.c
	if c.cfg.Disabled || !c.healthy.Load() {
		q.Bypass(ctx)
		return load(ctx)
	}
	k := string(key)
	rec := recorderFrom(ctx)
	now := time.Now().UnixNano()
	if !c.cfg.L1Disabled {
		if v, err := c.l1.Get(ctx, k); err == nil {
			if e, ok := v.(*entry); ok && now < e.hard && c.current(q, e.epoch, e.stamps) {
				val, _ := e.val.(T)
				return serve(ctx, q, tierL1, rec, now, e, k, codec, load, val), nil
			}
		}
		q.stats.miss[tierL1].Add(1)
		q.prom.miss[tierL1].Inc()
	}
	if c.l2 != nil {
		if e, val, ok := getL2(ctx, q, k, codec, now); ok {
			return serve(ctx, q, tierL2, rec, now, e, k, codec, load, val), nil
		}
		q.stats.miss[tierL2].Add(1)
		q.prom.miss[tierL2].Inc()
	}
	q.stats.misses.Add(1)
	rec.record(OutcomeMiss)
	return loadShared(ctx, q, k, codec, load)
}

// serve returns a valid entry's value, fresh or stale; a stale one starts a
// background refresh (stale-while-revalidate).
func serve[T any](ctx context.Context, q *Query, tier int, rec *Recorder, now int64, e *entry, k string, codec *Codec[T], load func(context.Context) (T, error), val T) T {
	if now < e.soft {
		q.stats.hit[tier].Add(1)
		q.prom.hit[tier].Inc()
		rec.record(OutcomeHit)
	} else {
		q.stats.stale[tier].Add(1)
		q.prom.stale[tier].Inc()
		rec.record(OutcomeStale)
		ver := q.c.capture(q)
		q.c.sf.DoChan(sfKey(k, ver), loader(ctx, q, k, ver, codec, load))
	}
	if codec.Clone != nil {
		return codec.Clone(val)
	}
	return val
}

func getL2[T any](ctx context.Context, q *Query, k string, codec *Codec[T], now int64) (*entry, T, bool) {
	c := q.c
	var zero T
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	got, err := c.l2.Get(rctx, k)
	if err != nil {
		if !errors.Is(err, store.NotFound{}) {
			c.redisFailed(ctx, "get", err)
		}
		return nil, zero, false
	}
	raw, _ := got.(string)
	e, payload, err := decodeEnvelope([]byte(raw))
	if err == nil && (now >= e.hard || !c.current(q, e.epoch, e.stamps)) {
		return nil, zero, false
	}
	var val T
	if err == nil {
		d := NewDecoder(payload)
		val = codec.Decode(d)
		err = d.Err()
	}
	if err != nil {
		// A value that does not decode is a miss, never a zero value.
		q.stats.decodeErrors.Add(1)
		c.m.decodeErrors.Inc()
		c.log.Error("cached value does not decode; loading from the database", "query", q.spec.Name, "err", err)
		return nil, zero, false
	}
	e.val = val
	// Refill L1 so the next read on this instance costs no round trip; the
	// entry keeps its stamps, so it stays exactly as valid as in Redis.
	if c.cfg.L1Disabled {
		return e, val, true
	}
	ttl := time.Duration(e.hard - now)
	_ = c.l1.Set(ctx, k, e, store.WithCost(int64(len(raw))), store.WithExpiration(ttl), store.WithSynchronousSet())
	return e, val, true
}

// loadShared loads from the database once for all concurrent callers of a
// key under the same versions. The load runs detached from the first
// caller's context, so that caller giving up does not fail the others;
// each caller still stops waiting when its own context ends, and the load
// is canceled when the last one does (or at their latest deadline).
func loadShared[T any](ctx context.Context, q *Query, k string, codec *Codec[T], load func(context.Context) (T, error)) (T, error) {
	ver := q.c.capture(q)
	key := sfKey(k, ver)
	// The load lives as long as its waiters (loadctx.go).
	lctx, leave := q.c.loads.join(ctx, key, q.c.cfg.LoadTimeout, func() { q.c.sf.Forget(key) })
	defer leave()
	ch := q.c.sf.DoChan(key, loader(lctx, q, k, ver, codec, load))
	var zero T
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		val, _ := r.Val.(T)
		if codec.Clone != nil {
			// The value is shared with the cache and the other callers.
			val = codec.Clone(val)
		}
		return val, nil
	case <-ctx.Done():
		return zero, db.Classify(q.spec.Name, ctx.Err())
	}
}

// sfKey joins the key and the captured versions: a caller that captured
// newer versions (after a write) must not join a load that started before
// the write.
func sfKey(k string, ver version) string {
	b := make([]byte, 0, len(k)+8*(len(ver.stamps)+1))
	b = append(b, k...)
	b = binary.BigEndian.AppendUint64(b, ver.epoch)
	for _, s := range ver.stamps {
		b = binary.BigEndian.AppendUint64(b, s)
	}
	return string(b)
}

func loader[T any](ctx context.Context, q *Query, k string, ver version, codec *Codec[T], load func(context.Context) (T, error)) func() (any, error) {
	return func() (any, error) {
		// A shared load's context is bounded already (loadctx.go); a
		// background refresh's runs detached, under LoadTimeout.
		lctx, cancel := ctx, context.CancelFunc(func() {})
		if _, shared := ctx.(*loadContext); !shared {
			lctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), q.c.cfg.LoadTimeout)
		}
		defer cancel()
		start := time.Now()
		val, err := load(lctx)
		d := time.Since(start)
		q.stats.loads.Add(1)
		q.stats.loadNanos.Add(int64(d))
		q.prom.load.Observe(d.Seconds())
		if err != nil {
			return nil, err
		}
		storeEntry(lctx, q, k, ver, codec, val)
		return val, nil
	}
}

func storeEntry[T any](ctx context.Context, q *Query, k string, ver version, codec *Codec[T], val T) {
	c := q.c
	if !c.current(q, ver.epoch, ver.stamps) {
		// A write landed during the load: the entry would be dead on
		// arrival.
		q.stats.discarded.Add(1)
		return
	}
	payload := codec.Encode(nil, val)
	now := time.Now()
	e := &entry{
		epoch: ver.epoch, stamps: ver.stamps, val: val,
		soft: now.Add(q.spec.TTL).UnixNano(),
		hard: now.Add(q.spec.TTL + q.spec.SWR).UnixNano(),
	}
	life := q.spec.TTL + q.spec.SWR
	// Cost is the encoded size, so CACHE_L1_MAX_BYTES bounds what L1 holds
	// in the same bytes Redis does. The synchronous set makes a read right
	// after a miss a hit, instead of racing ristretto's buffers.
	if !c.cfg.L1Disabled {
		_ = c.l1.Set(ctx, k, e, store.WithCost(int64(len(payload)+len(k))), store.WithExpiration(life), store.WithSynchronousSet())
	}
	if c.l2 == nil || !c.healthy.Load() {
		return
	}
	env := appendEnvelope(make([]byte, 0, len(payload)+64), e, payload)
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	if err := c.l2.Set(rctx, k, env, store.WithExpiration(life)); err != nil {
		c.redisFailed(ctx, "set", err)
	}
}

// The L2 envelope: a format byte, the epoch, soft and hard expiry, the
// stamps, then the payload.
const envelopeFormat = 1

func appendEnvelope(b []byte, e *entry, payload []byte) []byte {
	b = append(b, envelopeFormat)
	b = AppendUint64(b, e.epoch)
	b = AppendInt64(b, e.soft)
	b = AppendInt64(b, e.hard)
	b = binary.AppendUvarint(b, uint64(len(e.stamps)))
	for _, s := range e.stamps {
		b = AppendUint64(b, s)
	}
	return append(b, payload...)
}

func decodeEnvelope(b []byte) (*entry, []byte, error) {
	if len(b) < 1 || b[0] != envelopeFormat {
		return nil, nil, fmt.Errorf("%w: unknown envelope format", ErrCorrupt)
	}
	d := NewDecoder(b[1:])
	e := &entry{epoch: d.Uint64(), soft: d.Int64(), hard: d.Int64()}
	n := d.uvarint("stamp count")
	if n > uint64(len(d.b))/8 {
		return nil, nil, fmt.Errorf("%w: %d stamps", ErrCorrupt, n)
	}
	e.stamps = make([]uint64, n)
	for i := range e.stamps {
		e.stamps[i] = d.Uint64()
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	return e, d.b, nil
}

// queryStats are the figures of the JSON snapshot.
type queryStats struct {
	hit, miss, stale [2]atomic.Int64
	bypass           atomic.Int64
	misses           atomic.Int64 // missed every tier
	loads, loadNanos atomic.Int64
	decodeErrors     atomic.Int64
	discarded        atomic.Int64
}

type queryProm struct {
	hit, miss, stale [2]prometheus.Counter
	bypass           prometheus.Counter
	load             prometheus.Observer
}

const (
	tierL1 = iota
	tierL2
)

var tierNames = [2]string{"l1", "l2"}
