// Package keyset holds, in memory, the set of API keys that exist: the
// first 64 bits of each unrevoked key's SHA-256. It lets authentication
// tell a key that may be good (in the set: looked up, never refused by the
// per-address failure limit) from one that cannot be (not in the set: an
// unknown key, which the failure limit may refuse without a database
// lookup). It is an exact filter in practice: a random bad key collides
// with one of n stored prefixes with probability n/2^64.
//
// The set is never the authority on a key: the lookup is. So it may hold
// revoked keys (their lookup fails; the periodic reload drops them) but it
// must learn new keys at once: a key created on this instance is added
// before its creator sees it, and announced on a Redis channel to the
// others; every (re)subscription and every Reload period reloads the whole
// set from the database, in case messages were missed.
package keyset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Source pages through the stored hashes of unrevoked keys in hash order:
// those after after, at most limit of them (db.ListAPIKeyHashesAfter).
type Source func(ctx context.Context, after []byte, limit int32) ([][]byte, error)

// Config configures a Set.
type Config struct {
	// RedisURL enables announcing new keys to other instances; empty: this
	// instance only (a key created elsewhere is learned on its first
	// successful lookup or the next reload).
	RedisURL string
	// Channel is the Redis channel of the announcements.
	Channel string
	// Timeout bounds each Redis call.
	Timeout time.Duration
	// Reload is how often the whole set is reloaded; zero: DefaultReload.
	Reload time.Duration
	// PageSize is how many hashes one reload query reads; zero: 10 000.
	PageSize int32
}

// DefaultReload is the period of full reloads.
const DefaultReload = 5 * time.Minute

// Set is the set of existing keys. The zero value is not usable; call New.
type Set struct {
	cfg Config
	src Source
	log *slog.Logger
	rdb *redis.Client

	// base is the last full load, never written after: lookups of keys
	// that exist (every authenticated request) take no lock.
	base atomic.Pointer[map[uint64]struct{}]
	// recent are keys added since, with when, copied on each add (adds are
	// rare: a key created, or learnt from a lookup), so reading takes no
	// lock either; each reload folds those of the last addGrace into its
	// result (the reload may have read the table before their insert
	// committed) and starts recent afresh.
	mu     sync.Mutex // serialises writers of recent and base
	recent atomic.Pointer[map[uint64]time.Time]
	loaded atomic.Bool
	now    func() time.Time

	reloadMu sync.Mutex // one reload at a time
	cancel   context.CancelFunc
	done     chan struct{}
}

// New builds an empty Set; Start loads it and keeps it current.
func New(cfg Config, src Source, log *slog.Logger) (*Set, error) {
	if cfg.Reload <= 0 {
		cfg.Reload = DefaultReload
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 10_000
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Set{cfg: cfg, src: src, log: log, now: time.Now}
	s.base.Store(&map[uint64]struct{}{})
	s.recent.Store(&map[uint64]time.Time{})
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("keyset: %w", err)
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout, cfg.Timeout
		opt.MaxRetries = -1
		s.rdb = redis.NewClient(opt)
	}
	return s, nil
}

// Prefix is the part of a key hash the set keeps.
func Prefix(hash []byte) uint64 { return binary.BigEndian.Uint64(hash) }

// Contains reports whether hash may be an existing key. Before the first
// load completes it reports false: unknown keys then go through the
// failure limit, as every key did before the set existed.
func (s *Set) Contains(hash [32]byte) bool {
	p := Prefix(hash[:])
	if _, ok := (*s.base.Load())[p]; ok {
		return true
	}
	_, ok := (*s.recent.Load())[p]
	return ok
}

// Len is how many keys the set holds (a key both loaded and added since
// counts twice).
func (s *Set) Len() int {
	return len(*s.base.Load()) + len(*s.recent.Load())
}

// Loaded reports whether a full load has completed.
func (s *Set) Loaded() bool { return s.loaded.Load() }

// Learn adds hash on this instance only: a key the database just
// confirmed, which another instance created.
func (s *Set) Learn(hash [32]byte) { s.add(Prefix(hash[:])) }

// Add adds a key created on this instance and announces it to the others.
// The announcement is best effort: an instance that misses it learns the
// key on its first successful lookup, or at its next reload.
func (s *Set) Add(ctx context.Context, hash [32]byte) {
	p := Prefix(hash[:])
	s.add(p)
	if s.rdb == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
	defer cancel()
	if err := s.rdb.Publish(ctx, s.cfg.Channel, binary.BigEndian.AppendUint64(nil, p)).Err(); err != nil {
		s.log.Warn("keyset: announce a new key", "error", err)
	}
}

func (s *Set) add(p uint64) {
	if _, ok := (*s.base.Load())[p]; ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next := maps.Clone(*s.recent.Load())
	next[p] = s.now()
	s.recent.Store(&next)
}

// addGrace is how long before a reload's start an added key is still
// carried into its result: longer than any transaction that creates one.
const addGrace = time.Minute

// Reload reads every unrevoked key's hash and replaces the set with them
// (keys added meanwhile, or shortly before, are kept).
func (s *Set) Reload(ctx context.Context) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	start := s.now()
	next, err := s.read(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, at := range *s.recent.Load() {
		if at.After(start.Add(-addGrace)) {
			next[p] = struct{}{}
		}
	}
	s.base.Store(&next)
	s.recent.Store(&map[uint64]time.Time{})
	s.loaded.Store(true)
	return nil
}

func (s *Set) read(ctx context.Context) (map[uint64]struct{}, error) {
	next := make(map[uint64]struct{}, len(*s.base.Load()))
	after := []byte{}
	for {
		page, err := s.src(ctx, after, s.cfg.PageSize)
		if err != nil {
			return nil, fmt.Errorf("keyset: read key hashes after %x: %w", after, err)
		}
		for _, h := range page {
			if len(h) < 8 {
				return nil, fmt.Errorf("keyset: a key hash of %d bytes", len(h))
			}
			next[Prefix(h)] = struct{}{}
		}
		if len(page) < int(s.cfg.PageSize) {
			return next, nil
		}
		after = page[len(page)-1]
	}
}

// Start loads the set (an error is logged, not fatal: the set stays
// empty, which refuses no good key that is not under a flood, and is
// retried) and keeps it current until Close: announcements from other
// instances, a reload on each (re)subscription and every Reload period.
func (s *Set) Start(ctx context.Context) {
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.done = cancel, make(chan struct{})
	// Subscribed before the load, so no key created in between is missed.
	var ps *redis.PubSub
	if s.rdb != nil {
		ps = s.rdb.Subscribe(bg, s.cfg.Channel)
	}
	if err := s.Reload(ctx); err != nil {
		s.log.Error("keyset: first load; unknown keys go through the failure limit until a reload succeeds", "error", err)
	}
	go s.run(bg, ps)
}

// Close stops the background work and releases the Redis client.
func (s *Set) Close() error {
	if s.cancel != nil {
		s.cancel()
		<-s.done
	}
	if s.rdb != nil {
		return s.rdb.Close()
	}
	return nil
}

func (s *Set) run(ctx context.Context, ps *redis.PubSub) {
	defer close(s.done)
	if ps != nil {
		defer ps.Close()
	}
	subscribed := false
	retry := time.Second
	next := time.Now().Add(s.cfg.Reload)
	if !s.Loaded() {
		next = time.Now().Add(retry)
	}
	for ctx.Err() == nil {
		if !time.Now().Before(next) {
			next = time.Now().Add(s.cfg.Reload)
			if err := s.Reload(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("keyset: reload", "error", err)
				next = time.Now().Add(retry)
			}
		}
		if ps == nil {
			sleep(ctx, time.Until(next))
			continue
		}
		msg, err := ps.ReceiveTimeout(ctx, min(time.Until(next), time.Second))
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				sleep(ctx, retry) // Redis down: reloads keep the set current
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && subscribed {
				next = time.Now() // a resubscription: announcements may have been missed
			}
			subscribed = true
		case *redis.Message:
			if len(m.Payload) == 8 {
				s.add(Prefix([]byte(m.Payload)))
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
