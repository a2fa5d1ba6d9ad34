package cache

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/eko/gocache/lib/v4/store"
	"github.com/puzpuzpuz/xsync/v4"
)

// QuerySpec describes one annotated query; the generator emits them.
type QuerySpec struct {
	Name string
	// Hash covers the SQL text and the result type's shape, so a deploy
	// that changes either never reads entries of the old shape.
	Hash string
	TTL  time.Duration
	SWR  time.Duration
	// Reads are the named version slots the query depends on whatever its
	// arguments: tables and columns no scope pins, scope-wide versions.
	Reads []string
	// Scoped are the scopes its arguments pin; the generated code passes
	// the values to Read.
	Scoped []ScopeDep
}

// Query is a registered QuerySpec: its key prefix, the indexes of the
// tables it reads, and its counters.
type Query struct {
	c      *Cache
	spec   QuerySpec
	prefix string
	reads  []int
	scoped []scopedDep
	stats  queryStats
	// always: read through the cache even under Config.Disabled
	// (Options.AlwaysCached).
	always bool
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
	q := &Query{c: c, spec: spec, prefix: c.cfg.Namespace + ":c:" + spec.Name + ":" + spec.Hash + ":",
		always: slices.Contains(c.alwaysCached, spec.Name)}
	q.stats.init()
	for _, t := range spec.Reads {
		i, ok := c.index[t]
		if !ok {
			return nil, fmt.Errorf("register %s: %w: %q", spec.Name, ErrUnknownTable, t)
		}
		q.reads = append(q.reads, i)
	}
	for _, d := range spec.Scoped {
		si, ok := c.scopes[d.Scope]
		if !ok {
			return nil, fmt.Errorf("register %s: unknown scope %q", spec.Name, d.Scope)
		}
		sd := scopedDep{scope: si, cols: []uint64{hashString(rowColumn)}}
		for _, col := range d.Columns {
			sd.cols = append(sd.cols, hashString(col))
		}
		q.scoped = append(q.scoped, sd)
	}
	c.queryMu.Lock()
	c.queries = append(c.queries, q)
	c.queryMu.Unlock()
	return q, nil
}

// bypassed reports whether a read of q skips the cache: disabled (unless
// q is always cached), out of sync with Redis, or a reader whose own
// invalidation has not reached this instance yet.
func (q *Query) bypassed(ctx context.Context) bool {
	c := q.c
	return (c.cfg.Disabled && !q.always) || !c.healthy.Load() || c.readerMustBypass(ctx)
}

// Bypass records an annotated read that skipped the cache (inside a
// transaction, where it must see the transaction's own writes).
func (q *Query) Bypass(ctx context.Context) {
	q.stats.bypass.Add(1)
	recorderFrom(ctx).record(OutcomeBypass)
}

// entry is what L1 holds: the value as its Go type, and the epoch and
// versions it was loaded under.
type entry struct {
	version
	soft int64 // unix nanos: fresh until then
	hard int64 // unix nanos: served stale until then, while revalidating
	val  any
	cost uint32 // its weight in L1: encoded bytes
}

// version is a captured epoch and the versions of the slots one read
// depends on: the query's named slots, then the slots of its arguments'
// scope values.
type version struct {
	epoch  uint64
	slots  []int32
	stamps []uint64
	floor  uint64 // WAL position the load must see (not stored with entries)
}

// slots lists the version slots a read with these arguments depends on.
func (q *Query) slots(deps func(*Deps)) []int32 {
	d := Deps{q: q, slots: make([]int32, 0, len(q.reads)+4*len(q.scoped))}
	for _, i := range q.reads {
		d.slots = append(d.slots, int32(i))
	}
	if deps != nil {
		deps(&d)
	}
	return d.slots
}

func (c *Cache) capture(slots []int32) version {
	v := version{epoch: c.epoch.Load(), slots: slots, stamps: make([]uint64, len(slots))}
	for k, i := range slots {
		v.stamps[k] = c.vers[i].Load()
	}
	// After the stamps: a bump raises its slots' floors before their
	// versions.
	if c.loadFloor != nil {
		for _, i := range slots {
			v.floor = max(v.floor, c.slotLSN[i].Load())
		}
		if time.Now().UnixNano() < c.floorUntil.Load() {
			v.floor = math.MaxUint64
		}
	}
	return v
}

// current reports whether v still holds: same epoch, no slot bumped since.
func (c *Cache) current(v *version) bool {
	if v.epoch != c.epoch.Load() || len(v.stamps) != len(v.slots) {
		return false
	}
	for k, i := range v.slots {
		if v.stamps[k] != c.vers[i].Load() {
			return false
		}
	}
	return true
}

// Read serves one annotated read: from L1, then L2, then the database
// through load, shared by concurrent callers of the same key and versions.
// key is the query's Prefix followed by the encoded arguments; deps adds
// the scope values the arguments pin (nil when the query has none). An L1
// entry carries the slots it was captured with, so a hit calls neither.
func Read[T any](ctx context.Context, q *Query, key []byte, codec *Codec[T], load func(context.Context) (T, error), deps func(*Deps)) (T, error) {
	return ReadWith(ctx, q, key, codec, closures[T]{load, deps}, callLoad[T], callDeps[T])
}

// closures adapt Read's function values to ReadWith.
type closures[T any] struct {
	load func(context.Context) (T, error)
	deps func(*Deps)
}

func callLoad[T any](ctx context.Context, c closures[T]) (T, error) { return c.load(ctx) }

func callDeps[T any](d *Deps, c closures[T]) {
	if c.deps != nil {
		c.deps(d)
	}
}

// ReadWith is Read for generated code: load and deps are plain functions of
// arg rather than closures over it, so a hit allocates no closure and arg
// stays on the caller's stack (only a miss, or a stale serve that starts a
// refresh, builds the closure the shared load needs). deps may be nil.
func ReadWith[T, A any](ctx context.Context, q *Query, key []byte, codec *Codec[T], arg A, load func(context.Context, A) (T, error), deps func(*Deps, A)) (T, error) {
	c := q.c
	if q.bypassed(ctx) {
		q.Bypass(ctx)
		return load(ctx, arg)
	}
	rec := recorderFrom(ctx)
	if c.l1 != nil {
		// The lookup copies no key (l1.get); only a miss or a stale serve
		// makes the key a string of its own.
		if e, ok := c.l1.get(key); ok {
			now := c.l1.now(e)
			if now < e.hard && c.current(&e.version) {
				val, _ := e.val.(T)
				if now < e.soft {
					return hit(q, tierL1, rec, codec, val), nil
				}
				return serveStale(ctx, q, tierL1, rec, e, string(key), codec, arg, load, val), nil
			}
		}
		q.stats.miss[tierL1].Add(1)
	}
	return readMiss(ctx, q, string(key), codec, arg, load, deps, time.Now().UnixNano(), rec)
}

// Peek answers a read from the cache alone, L1 then L2: ok is false when
// neither holds a fresh entry, and nothing is loaded. Authentication uses
// it to let a key the cache knows good pass without the failure limit
// while its address is limited, at no database cost. A miss is not
// counted: the caller decides what a miss costs.
func Peek[T, A any](ctx context.Context, q *Query, key []byte, codec *Codec[T], arg A, deps func(*Deps, A)) (T, bool) {
	c := q.c
	var zero T
	if q.bypassed(ctx) {
		return zero, false
	}
	rec := recorderFrom(ctx)
	if c.l1 != nil {
		if e, ok := c.l1.get(key); ok && c.l1.now(e) < e.soft && c.current(&e.version) {
			val, _ := e.val.(T)
			return hit(q, tierL1, rec, codec, val), true
		}
	}
	if c.l2 == nil {
		return zero, false
	}
	slots := q.slots(func(d *Deps) { deps(d, arg) })
	now := time.Now().UnixNano()
	if e, val, ok := getL2(ctx, q, string(key), slots, codec, now); ok && now < e.soft {
		return hit(q, tierL2, rec, codec, val), true
	}
	return zero, false
}

// readMiss goes on past L1: L2, then the database.
func readMiss[T, A any](ctx context.Context, q *Query, k string, codec *Codec[T], arg A, load func(context.Context, A) (T, error), deps func(*Deps, A), now int64, rec *Recorder) (T, error) {
	c := q.c
	var slots []int32
	if deps == nil {
		slots = q.slots(nil)
	} else {
		slots = q.slots(func(d *Deps) { deps(d, arg) })
	}
	if c.l2 != nil {
		if e, val, ok := getL2(ctx, q, k, slots, codec, now); ok {
			if now < e.soft {
				return hit(q, tierL2, rec, codec, val), nil
			}
			return serveStale(ctx, q, tierL2, rec, e, k, codec, arg, load, val), nil
		}
		q.stats.miss[tierL2].Add(1)
	}
	q.stats.misses.Add(1)
	rec.record(OutcomeMiss)
	return loadShared(ctx, q, k, slots, codec, func(ctx context.Context) (T, error) { return load(ctx, arg) })
}

// hit counts a fresh serve and returns the value (a copy when it shares
// memory with the cache).
func hit[T any](q *Query, tier int, rec *Recorder, codec *Codec[T], val T) T {
	q.stats.hit[tier].Add(1)
	rec.record(OutcomeHit)
	if codec.Clone != nil {
		return codec.Clone(val)
	}
	return val
}

// serveStale serves a valid but stale entry and starts a background
// refresh (stale-while-revalidate).
func serveStale[T, A any](ctx context.Context, q *Query, tier int, rec *Recorder, e *entry, k string, codec *Codec[T], arg A, load func(context.Context, A) (T, error), val T) T {
	q.stats.stale[tier].Add(1)
	rec.record(OutcomeStale)
	ver := q.c.capture(e.slots)
	q.c.sf.DoChan(sfKey(k, ver), loader(ctx, q, k, ver, codec, func(ctx context.Context) (T, error) { return load(ctx, arg) }))
	if codec.Clone != nil {
		return codec.Clone(val)
	}
	return val
}

func getL2[T any](ctx context.Context, q *Query, k string, slots []int32, codec *Codec[T], now int64) (*entry, T, bool) {
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
	// The Redis store answers GET with the reply's string; anything else is
	// reported as a value that does not decode, not read as an empty one.
	raw, ok := got.(string)
	var e *entry
	var payload []byte
	if ok {
		e, payload, err = decodeEnvelope([]byte(raw))
	} else {
		err = fmt.Errorf("the Redis store returned a %T, not the string it stores", got)
	}
	if err == nil {
		// The envelope carries stamps only; the slots are this deploy's for
		// these arguments (the key's hash covers the query's dependencies).
		e.slots = slots
		if now >= e.hard || !c.current(&e.version) {
			return nil, zero, false
		}
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
	if c.l1 != nil {
		c.l1.set(k, e, len(raw))
	}
	return e, val, true
}

// loadShared loads from the database once for all concurrent callers of a
// key under the same versions. The load runs detached from the first
// caller's context, so that caller giving up does not fail the others;
// each caller still stops waiting when its own context ends, and the load
// is canceled when the last one does (or at their latest deadline).
func loadShared[T any](ctx context.Context, q *Query, k string, slots []int32, codec *Codec[T], load func(context.Context) (T, error)) (T, error) {
	ver := q.c.capture(slots)
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
		// The caller's own deadline or cancellation, as the context says
		// it: callers map context errors (the cache knows nothing of the
		// data layer's error kinds).
		return zero, fmt.Errorf("%s: wait for the shared load: %w", q.spec.Name, ctx.Err())
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
		if ver.floor > 0 {
			lctx = q.c.loadFloor(lctx, ver.floor)
		}
		start := time.Now()
		val, err := load(lctx)
		d := time.Since(start)
		q.stats.loads.Add(1)
		q.stats.loadNanos.Add(int64(d))
		q.c.m.loads.WithLabelValues(q.spec.Name).Observe(d.Seconds())
		if err != nil {
			return nil, err
		}
		storeEntry(lctx, q, k, ver, codec, val)
		return val, nil
	}
}

func storeEntry[T any](ctx context.Context, q *Query, k string, ver version, codec *Codec[T], val T) {
	c := q.c
	if !c.current(&ver) {
		// A write landed during the load: the entry would be dead on
		// arrival.
		q.stats.discarded.Add(1)
		return
	}
	payload := codec.Encode(nil, val)
	now := time.Now()
	e := &entry{
		version: ver, val: val,
		soft: now.Add(q.spec.TTL).UnixNano(),
		hard: now.Add(q.spec.TTL + q.spec.SWR).UnixNano(),
	}
	life := q.spec.TTL + q.spec.SWR
	// Cost is the encoded size, so CACHE_L1_MAX_BYTES bounds what L1 holds
	// in the same bytes Redis does. The entry is in L1 when Set returns, so
	// a read right after a miss is a hit.
	if c.l1 != nil {
		c.l1.set(k, e, len(payload)+len(k))
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
const envelopeFormat = 2

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
	e := &entry{version: version{epoch: d.ReadUint64()}, soft: d.ReadInt64(), hard: d.ReadInt64()}
	n := d.uvarint("stamp count")
	if n > uint64(len(d.b))/8 {
		return nil, nil, fmt.Errorf("%w: %d stamps", ErrCorrupt, n)
	}
	e.stamps = make([]uint64, n)
	for i := range e.stamps {
		e.stamps[i] = d.ReadUint64()
	}
	if d.err != nil {
		return nil, nil, d.err
	}
	return e, d.b, nil
}

// queryStats are a query's figures, for the JSON snapshot and Prometheus
// alike (one count each: a second copy on the hit path doubled its
// contended writes). Counters of the hit path are xsync's striped
// counters: a goroutine adds to the stripe of the P it runs on, so reads on
// several cores write no common cache line. (Picking a stripe at random
// per add, as before, moved each line between the cores half the time.)
type queryStats struct {
	hit, miss, stale [2]*xsync.Counter
	bypass           *xsync.Counter
	misses           atomic.Int64 // missed every tier
	loads, loadNanos atomic.Int64
	decodeErrors     atomic.Int64
	discarded        atomic.Int64
}

func (s *queryStats) init() {
	s.bypass = xsync.NewCounter()
	for t := range s.hit {
		s.hit[t], s.miss[t], s.stale[t] = xsync.NewCounter(), xsync.NewCounter(), xsync.NewCounter()
	}
}

const (
	tierL1 = iota
	tierL2
)

var tierNames = [2]string{"l1", "l2"}
