package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	redisstore "github.com/eko/gocache/store/redis/v4"
	"github.com/redis/go-redis/v9"
)

// The versions are one Redis hash, slot name -> counter: a slot never
// bumped has no field, so the hashed slots of the scopes cost nothing until
// used, and a resync reads only the bumped ones.

// bumpScript increments some slots' versions and publishes the new values,
// atomically with reading the epoch: a caller whose epoch differs learns
// that Redis lost the counters and must resynchronise. The epoch is created
// on first use (KEYS[1]); KEYS[2] is the versions hash, KEYS[3] the
// invalidation sequence, KEYS[4] the writing user's marker; ARGV are the
// candidate epoch, the channel, the write's WAL position, whether to set
// the marker and its lifetime in ms, then the slot names. The message is
// "epoch @seq <n> @lsn <position> <slot> <version> …": the position travels
// before the versions, so a receiver raises the slots' load floors first,
// and the sequence number lets a receiver tell whether it has applied a
// given user's last invalidation (readerMustWait).
var bumpScript = redis.NewScript(`
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
local seq = redis.call('INCR', KEYS[3])
if ARGV[4] == '1' then
  redis.call('SET', KEYS[4], seq, 'PX', ARGV[5])
end
local out = {e}
local msg = {e, '@seq', seq, '@lsn', ARGV[3]}
for i = 6, #ARGV do
  local n = redis.call('HINCRBY', KEYS[2], ARGV[i], 1)
  out[i-4] = n
  msg[#msg+1] = ARGV[i]
  msg[#msg+1] = n
end
redis.call('PUBLISH', ARGV[2], table.concat(msg, ' '))
return out
`)

// syncScript reads the epoch (creating it if absent) and every bumped
// version in one atomic step, so the snapshot is consistent.
var syncScript = redis.NewScript(`
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
return {e, redis.call('HGETALL', KEYS[2]), tonumber(redis.call('GET', KEYS[3]) or '0')}
`)

func (c *Cache) startRedis() error {
	opt, err := redis.ParseURL(c.cfg.RedisURL)
	if err != nil {
		return fmt.Errorf("parse REDIS_URL: %w", err)
	}
	t := c.cfg.RedisTimeout
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = t, t, t, t
	// A retry doubles the time a dead Redis costs a request; the cache fails
	// open instead, and the subscriber brings it back.
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	c.rdb = redis.NewClient(opt)
	c.l2 = redisstore.NewRedis(c.rdb)
	// The braces are a Redis Cluster hash tag: the scripts touch the epoch
	// and version keys together, so they must share a slot.
	base := "{" + c.cfg.Namespace + "}"
	// ":v3:" and ":invalidate3" name the scoped protocol with windowed
	// slots (scope.go's valueWindow): instances of an earlier protocol map
	// values to other slots, so they keep their own keys and channel
	// rather than misreading these.
	c.keys = redisKeys{
		epoch:   base + ":epoch",
		vers:    base + ":v3:versions",
		seq:     base + ":v3:seq",
		writer:  base + ":v3:writer:",
		channel: c.cfg.Namespace + ":invalidate3",
		entries: c.cfg.Namespace + ":c:",
	}
	c.epoch.Store(localEpoch())
	c.resync = make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	c.stop, c.done = cancel, make(chan struct{})
	go c.subscribe(ctx)
	return nil
}

// bumpRedis increments the tables' Redis versions and mirrors the results
// locally before returning, so this instance never serves an entry older
// than a write it acknowledged. When Redis fails the cache fails open.
func (c *Cache) bumpRedis(ctx context.Context, idx []int, lsn uint64, writer string) {
	// Checking health under the lock matters: a resync in progress has
	// already bumped the pending tables and is about to declare the cache
	// healthy, so a table added to pending now would miss that resync
	// while the cache serves entries it should have killed. Waiting for the
	// resync (bounded by its timeout) and bumping normally is safe.
	c.syncMu.RLock()
	defer c.syncMu.RUnlock()
	if !c.healthy.Load() {
		c.failOpen(idx, nil)
		return
	}
	// The caller leaving must not skip the bump: its write committed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RedisTimeout)
	defer cancel()
	epoch, vals, err := c.runBump(ctx, idx, lsn, writer)
	if err != nil {
		c.failOpen(idx, fmt.Errorf("bump versions: %w", err))
		return
	}
	if epoch != c.epoch.Load() {
		// Redis lost its counters (restart): versions restarted from zero
		// and would repeat ones already stamped on entries.
		c.failOpen(nil, fmt.Errorf("epoch changed from %d to %d", c.epoch.Load(), epoch))
		return
	}
	for k, i := range idx {
		storeMax(&c.vers[i], vals[k])
	}
}

func (c *Cache) runBump(ctx context.Context, idx []int, lsn uint64, writer string) (uint64, []uint64, error) {
	setMarker := "0"
	if writer != "" {
		setMarker = "1"
	}
	keys := []string{c.keys.epoch, c.keys.vers, c.keys.seq, c.keys.writer + writer}
	args := make([]any, 0, len(idx)+5)
	args = append(args, strconv.FormatUint(redisEpochCandidate(), 10), c.keys.channel, strconv.FormatUint(lsn, 10),
		setMarker, strconv.FormatInt(writerMarkerTTL.Milliseconds(), 10))
	for _, i := range idx {
		args = append(args, c.slotName(i))
	}
	res, err := bumpScript.Run(ctx, c.rdb, keys, args...).Slice()
	if err != nil {
		return 0, nil, err
	}
	return parseEpochAndInts(res, len(idx))
}

// parseSync turns syncScript's answer into the epoch and a version per
// slot (zero for slots never bumped; fields of slots this deploy does not
// know are skipped).
func (c *Cache) parseSync(res []any) (uint64, []uint64, error) {
	if len(res) != 3 {
		return 0, nil, fmt.Errorf("sync script returned %d values, want 3", len(res))
	}
	epoch, err := parseEpoch(res[0])
	if err != nil {
		return 0, nil, err
	}
	kv, ok := res[1].([]any)
	if !ok || len(kv)%2 != 0 {
		return 0, nil, fmt.Errorf("sync script returned versions %T", res[1])
	}
	vals := make([]uint64, len(c.vers))
	for k := 0; k < len(kv); k += 2 {
		name, _ := kv[k].(string)
		raw, _ := kv[k+1].(string)
		n, err := strconv.ParseUint(raw, 10, 64)
		if err != nil {
			return 0, nil, fmt.Errorf("version of %q: %q is not a counter", name, raw)
		}
		if i, ok := c.slotIndex(name); ok {
			vals[i] = n
		}
	}
	return epoch, vals, nil
}

func parseEpoch(v any) (uint64, error) {
	es, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("script returned epoch %T", v)
	}
	epoch, err := strconv.ParseUint(es, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse epoch %q: %w", es, err)
	}
	return epoch, nil
}

func parseEpochAndInts(res []any, n int) (uint64, []uint64, error) {
	if len(res) != n+1 {
		return 0, nil, fmt.Errorf("script returned %d values, want %d", len(res), n+1)
	}
	epoch, err := parseEpoch(res[0])
	if err != nil {
		return 0, nil, err
	}
	vals := make([]uint64, n)
	for k := range vals {
		v, ok := res[k+1].(int64)
		if !ok || v < 0 {
			return 0, nil, fmt.Errorf("script returned version %v", res[k+1])
		}
		vals[k] = uint64(v)
	}
	return epoch, vals, nil
}

// failOpen takes the cache out of service after a Redis failure: reads go
// to the database until a resync succeeds. A fresh local epoch kills every
// entry in L1 at once (even ones a read in flight stores later), the tables
// the failed bump should have invalidated are kept to bump on recovery, and
// the subscriber is asked to resync.
func (c *Cache) failOpen(idx []int, cause error) {
	c.epoch.Store(localEpoch())
	wasHealthy := c.healthy.Swap(false)
	if len(idx) > 0 {
		c.pendingMu.Lock()
		for _, i := range idx {
			c.pending[i] = struct{}{}
		}
		c.pendingMu.Unlock()
	}
	if cause != nil {
		c.m.redisErrors.Add(1)
		// Once per outage: the retries every idle period would flood the log.
		if wasHealthy {
			c.log.Warn("redis unavailable, cache bypassed until it returns", "err", cause)
		}
	}
	select {
	case c.resync <- struct{}{}:
	default:
	}
}

// redisFailed handles a failed GET or SET of an entry: the caller's own
// cancellation is not Redis's fault.
func (c *Cache) redisFailed(ctx context.Context, op string, err error) {
	if ctx.Err() != nil {
		return
	}
	c.failOpen(nil, fmt.Errorf("%s: %w", op, err))
}

// subscribe receives other instances' bumps until ctx ends. Each
// (re)subscription resynchronises the versions and flushes L1, since
// messages may have been missed while the connection was down; a resync
// asked for by a failed command is retried on every idle tick.
func (c *Cache) subscribe(ctx context.Context) {
	defer close(c.done)
	ps := c.rdb.Subscribe(ctx, c.keys.channel)
	defer ps.Close()
	idle := max(c.cfg.RedisTimeout, 50*time.Millisecond)
	wantSync := true
	var lastTry time.Time
	// maybeSync retries a wanted resync at most once per idle period, on
	// timeouts and between messages alike: on a busy channel the receive
	// never times out.
	maybeSync := func() {
		if (wantSync || !c.healthy.Load()) && time.Since(lastTry) >= idle {
			lastTry = time.Now()
			wantSync = c.trySync(ctx) != nil
		}
	}
	for ctx.Err() == nil {
		select {
		case <-c.resync:
			wantSync = true
		default:
		}
		msg, err := ps.ReceiveTimeout(ctx, idle)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				maybeSync()
				continue
			}
			if c.healthy.Load() {
				c.failOpen(nil, fmt.Errorf("subscription: %w", err))
			}
			wantSync = true
			sleep(ctx, idle)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				// A (re)subscription: messages may have been missed.
				wantSync, lastTry = true, time.Time{}
			}
		case *redis.Message:
			if !c.apply(m.Payload) {
				c.failOpen(nil, errors.New("invalidation from another epoch"))
				wantSync = true
			}
		}
		maybeSync()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (c *Cache) trySync(ctx context.Context) error {
	err := c.sync(ctx)
	if err != nil {
		c.failOpen(nil, fmt.Errorf("resync: %w", err))
	}
	return err
}

// sync brings the cache back into service: it bumps the tables whose
// invalidation failed, reads the epoch and every version in one step, and
// flushes L1 — the order makes a stale entry impossible to validate: every
// write this instance acknowledged is counted in Redis before the
// versions are read.
func (c *Cache) sync(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.healthy.Store(false)
	ctx, cancel := context.WithTimeout(ctx, 4*c.cfg.RedisTimeout)
	defer cancel()
	c.pendingMu.Lock()
	idx := make([]int, 0, len(c.pending))
	for i := range c.pending {
		idx = append(idx, i)
	}
	c.pendingMu.Unlock()
	if len(idx) > 0 {
		// Their writes' positions are lost: the floor after the resync
		// (resyncFloor) covers them.
		if _, _, err := c.runBump(ctx, idx, 0, ""); err != nil {
			return fmt.Errorf("bump pending tables: %w", err)
		}
		c.pendingMu.Lock()
		for _, i := range idx {
			delete(c.pending, i)
		}
		c.pendingMu.Unlock()
	}
	keys := []string{c.keys.epoch, c.keys.vers, c.keys.seq}
	res, err := syncScript.Run(ctx, c.rdb, keys, strconv.FormatUint(redisEpochCandidate(), 10)).Slice()
	if err != nil {
		return fmt.Errorf("read versions: %w", err)
	}
	epoch, vals, err := c.parseSync(res)
	if err != nil {
		return err
	}
	// Every invalidation up to now is in the versions just read.
	if seq, ok := res[2].(int64); ok && seq >= 0 {
		storeMax(&c.appliedSeq, uint64(seq))
	}
	// Bumps missed while out of touch carried WAL positions this instance
	// never saw: until the replicas have certainly replayed them, loads
	// read the primary.
	c.floorUntil.Store(time.Now().Add(c.cfg.ResyncFloor).UnixNano())
	c.epoch.Store(epoch)
	for i := range c.vers {
		c.vers[i].Store(vals[i])
	}
	c.clearL1()
	if n := c.resyncs.Add(1); n > 1 {
		c.log.Info("redis reachable, versions resynchronised and L1 flushed", "resyncs", n)
	}
	c.healthy.Store(true)
	return nil
}

// apply mirrors a bump published by any instance (this one included). It
// reports false for a message from another epoch.
func (c *Cache) apply(payload string) bool {
	f := strings.Fields(payload)
	if len(f) < 1 || len(f)%2 != 1 {
		c.log.Error("malformed invalidation message", "payload", payload)
		return true
	}
	epoch, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		c.log.Error("malformed invalidation epoch", "payload", payload)
		return true
	}
	if epoch != c.epoch.Load() {
		// While out of service the local epoch is private; the resync
		// under way will read the versions anyway.
		return !c.healthy.Load()
	}
	var seq uint64
	for k := 1; k+1 < len(f); k += 2 {
		if f[k] == "@seq" {
			seq, _ = strconv.ParseUint(f[k+1], 10, 64)
			continue
		}
		if f[k] == "@lsn" {
			if lsn, err := strconv.ParseUint(f[k+1], 10, 64); err == nil {
				// Raised before any version of the message: a load that
				// sees a new version also sees its floor.
				for j := k + 2; j+1 < len(f); j += 2 {
					if i, ok := c.slotIndex(f[j]); ok {
						storeMax(&c.slotLSN[i], lsn)
					}
				}
			}
			continue
		}
		i, ok := c.slotIndex(f[k])
		if !ok {
			// Another deploy may know tables this one does not.
			continue
		}
		n, err := strconv.ParseUint(f[k+1], 10, 64)
		if err != nil {
			c.log.Error("malformed invalidation version", "payload", payload)
			continue
		}
		storeMax(&c.vers[i], n)
	}
	// After the versions: a reader that sees the sequence number sees
	// the invalidation it numbers. Messages arrive in publish order, so
	// every earlier one is applied too.
	if seq > 0 {
		storeMax(&c.appliedSeq, seq)
	}
	return true
}

// writerMarkerTTL is how long a user's last invalidation is remembered for
// readers on other instances; pub/sub delivers within milliseconds, so
// this only has to outlast a slow subscriber.
const writerMarkerTTL = 30 * time.Second

// readerMustBypass reports whether a read acting for a user must skip the
// tiers: that user's last write produced an invalidation this instance
// has not applied yet (it was made on another instance, a few
// milliseconds ago). It waits for the invalidation briefly first, bounded
// by the Redis timeout. The marker is read once per request (the Actor
// hook memoises it); without Redis or an actor there is nothing to check.
func (c *Cache) readerMustBypass(ctx context.Context) bool {
	if c.rdb == nil || c.actor == nil {
		return false
	}
	need, ok := c.actor(ctx, c.readWriterMarker)
	if !ok || need <= c.appliedSeq.Load() {
		return false
	}
	deadline := time.Now().Add(c.cfg.RedisTimeout)
	for time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
		if need <= c.appliedSeq.Load() {
			return false
		}
	}
	return true
}

// readWriterMarker is the sequence number of user's last invalidation, 0
// when there is none (or Redis cannot say: the cache is then failing open
// anyway).
func (c *Cache) readWriterMarker(ctx context.Context, user string) uint64 {
	rctx, cancel := context.WithTimeout(ctx, c.cfg.RedisTimeout)
	defer cancel()
	n, err := c.rdb.Get(rctx, c.keys.writer+user).Uint64()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			c.redisFailed(ctx, "get writer marker", err)
		}
		return 0
	}
	return n
}
