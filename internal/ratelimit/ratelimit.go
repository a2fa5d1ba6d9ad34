// Package ratelimit enforces request budgets per API key: GCRA in Redis
// (go-redis/redis_rate), so every instance draws on one budget, with an
// in-process limiter (golang.org/x/time/rate) when Redis is not configured
// or does not answer. A Redis failure never refuses a request: the shared
// limit fails open onto the local one.
package ratelimit

import (
	"context"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// Limit is a budget: PerMinute cost units per minute, at most Burst at
// once.
type Limit struct {
	PerMinute int
	Burst     int
}

// Decision is the outcome of one charge, with what the RateLimit headers
// report.
type Decision struct {
	Allowed bool
	Limit   Limit
	// Remaining is what could be spent right now.
	Remaining int
	// RetryAfter is how long until the refused charge would pass (zero when
	// allowed); ResetAfter how long until the budget is full again.
	RetryAfter time.Duration
	ResetAfter time.Duration
	// Shared says the decision came from Redis.
	Shared bool
}

// Config configures a Limiter.
type Config struct {
	// RedisURL enables the shared limit; empty: in-process only.
	RedisURL string
	// Namespace prefixes the Redis keys.
	Namespace string
	// Timeout bounds each Redis call; past it the local limit decides.
	Timeout time.Duration
	// Now is the in-process limit's clock (tests pin it); nil: time.Now.
	// Redis keeps its own time.
	Now func() time.Time
}

// maxLocalKeys bounds the in-process limiters and the per-key counts.
const maxLocalKeys = 50_000

// Limiter charges costs against per-key budgets.
type Limiter struct {
	cfg    Config
	log    *slog.Logger
	rdb    *redis.Client
	shared *redis_rate.Limiter

	mu      sync.Mutex
	local   map[string]*localBucket
	limited map[string]int64 // refused charges per key, for the monitor

	decisions *prometheus.CounterVec
	errors    prometheus.Counter
	redisErrs int64
	// downUntil: after a Redis failure the shared limit is skipped for
	// retryShared, so a dead Redis costs one timeout per period, not one
	// per request.
	downUntil time.Time
}

// retryShared is how long the local limit decides alone after Redis failed.
const retryShared = time.Second

type localBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// New builds a Limiter and registers its metrics on reg (may be nil).
func New(cfg Config, reg prometheus.Registerer, log *slog.Logger) (*Limiter, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	l := &Limiter{
		cfg: cfg, log: log,
		local:   make(map[string]*localBucket),
		limited: make(map[string]int64),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replyrocket_rate_limit_decisions_total",
			Help: "Rate-limit decisions by scope (key, admin) and result (allowed, limited) and where they were made (redis, local).",
		}, []string{"scope", "result", "backend"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replyrocket_rate_limit_redis_errors_total",
			Help: "Redis calls of the shared rate limit that failed; the in-process limit decided instead.",
		}),
	}
	if reg != nil {
		reg.MustRegister(l.decisions, l.errors)
	}
	if cfg.RedisURL != "" {
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout, opt.PoolTimeout = cfg.Timeout, cfg.Timeout, cfg.Timeout, cfg.Timeout
		opt.ContextTimeoutEnabled = true
		opt.MaxRetries = -1   // a retry would only double the wait on a dead Redis
		opt.DialerRetries = 1 // likewise for dialing
		l.rdb = redis.NewClient(opt)
		l.shared = redis_rate.NewLimiter(l.rdb)
	}
	return l, nil
}

// Close releases the Redis client.
func (l *Limiter) Close() error {
	if l.rdb != nil {
		return l.rdb.Close()
	}
	return nil
}

// Allow charges cost to key's budget lim, refusing it (and charging
// nothing) when the budget cannot cover it. scope labels the metrics.
func (l *Limiter) Allow(ctx context.Context, scope, key string, lim Limit, cost int) Decision {
	lim.Burst = max(lim.Burst, 1)
	var d Decision
	if l.shared != nil {
		var ok bool
		d, ok = l.allowShared(ctx, key, lim, cost, false)
		if !ok {
			d = l.allowLocal(key, lim, cost, false)
		}
	} else {
		d = l.allowLocal(key, lim, cost, false)
	}
	l.count(scope, key, d)
	return d
}

// Charge takes up to cost more from key's budget after the fact (an
// uncached statistics query turned out dearer than announced). It never
// refuses; the next request pays for an empty budget.
func (l *Limiter) Charge(ctx context.Context, key string, lim Limit, cost int) Decision {
	lim.Burst = max(lim.Burst, 1)
	if l.shared != nil {
		if d, ok := l.allowShared(ctx, key, lim, cost, true); ok {
			return d
		}
	}
	return l.allowLocal(key, lim, cost, true)
}

func (l *Limiter) allowShared(ctx context.Context, key string, lim Limit, cost int, atMost bool) (Decision, bool) {
	l.mu.Lock()
	down := time.Now().Before(l.downUntil)
	l.mu.Unlock()
	if down {
		return Decision{}, false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Timeout)
	defer cancel()
	rl := redis_rate.Limit{Rate: lim.PerMinute, Burst: lim.Burst, Period: time.Minute}
	k := l.cfg.Namespace + ":" + key
	var res *redis_rate.Result
	var err error
	if atMost {
		res, err = l.shared.AllowAtMost(ctx, k, rl, cost)
	} else {
		res, err = l.shared.AllowN(ctx, k, rl, cost)
	}
	if err != nil {
		l.errors.Inc()
		l.mu.Lock()
		l.redisErrs++
		first := l.redisErrs == 1
		l.downUntil = time.Now().Add(retryShared)
		l.mu.Unlock()
		if first {
			l.log.Warn("shared rate limit unavailable; limiting in process", "error", err)
		}
		return Decision{}, false
	}
	d := Decision{Allowed: res.Allowed > 0 || cost == 0, Limit: lim, Remaining: res.Remaining, ResetAfter: res.ResetAfter, Shared: true}
	if !d.Allowed && res.RetryAfter > 0 {
		d.RetryAfter = res.RetryAfter
	}
	return d, true
}

func (l *Limiter) allowLocal(key string, lim Limit, cost int, debt bool) Decision {
	now := l.cfg.Now()
	perSec := rate.Limit(float64(lim.PerMinute) / 60)
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.local[key]
	if !ok {
		if len(l.local) >= maxLocalKeys {
			l.pruneLocal(now)
		}
		b = &localBucket{lim: rate.NewLimiter(perSec, lim.Burst)}
		l.local[key] = b
	} else if b.lim.Limit() != perSec || b.lim.Burst() != lim.Burst {
		b.lim.SetLimitAt(now, perSec)
		b.lim.SetBurstAt(now, lim.Burst)
	}
	b.seen = now
	d := Decision{Limit: lim}
	if debt {
		b.lim.ReserveN(now, min(cost, lim.Burst))
		d.Allowed = true
	} else {
		d.Allowed = b.lim.AllowN(now, cost)
	}
	tokens := b.lim.TokensAt(now)
	d.Remaining = max(int(math.Floor(tokens)), 0)
	if !d.Allowed {
		d.RetryAfter = secondsFor(float64(cost)-tokens, float64(perSec))
	}
	d.ResetAfter = secondsFor(float64(lim.Burst)-tokens, float64(perSec))
	return d
}

func secondsFor(units, perSec float64) time.Duration {
	if units <= 0 || perSec <= 0 {
		return 0
	}
	return time.Duration(units / perSec * float64(time.Second))
}

// pruneLocal drops buckets idle long enough to be full again; if every
// bucket is recent, the map starts over (a bound on memory beats a
// perfect count).
func (l *Limiter) pruneLocal(now time.Time) {
	for k, b := range l.local {
		if now.Sub(b.seen) > time.Minute {
			delete(l.local, k)
		}
	}
	if len(l.local) >= maxLocalKeys {
		clear(l.local)
	}
}

func (l *Limiter) count(scope, key string, d Decision) {
	result, backend := "allowed", "local"
	if !d.Allowed {
		result = "limited"
	}
	if d.Shared {
		backend = "redis"
	}
	l.decisions.WithLabelValues(scope, result, backend).Inc()
	if d.Allowed {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.limited[key]; !ok && len(l.limited) >= maxLocalKeys {
		return // bounded: keys already counted keep counting
	}
	l.limited[key]++
}

// KeyCount is one key's refused requests since start.
type KeyCount struct {
	Key     string `json:"key"`
	Limited int64  `json:"limited"`
}

// Stats is the limiter's state for the monitor.
type Stats struct {
	Backend     string     `json:"backend"` // "redis" or "local"
	RedisErrors int64      `json:"redis_errors"`
	Limited     int64      `json:"limited_total"`
	TopKeys     []KeyCount `json:"top_keys"` // the most limited, at most 20
}

// Stats reports refused requests, most limited keys first.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{Backend: "local", RedisErrors: l.redisErrs, TopKeys: []KeyCount{}}
	if l.shared != nil {
		s.Backend = "redis"
	}
	for k, n := range l.limited {
		s.Limited += n
		s.TopKeys = append(s.TopKeys, KeyCount{Key: k, Limited: n})
	}
	sort.Slice(s.TopKeys, func(i, j int) bool {
		if s.TopKeys[i].Limited != s.TopKeys[j].Limited {
			return s.TopKeys[i].Limited > s.TopKeys[j].Limited
		}
		return s.TopKeys[i].Key < s.TopKeys[j].Key
	})
	if len(s.TopKeys) > 20 {
		s.TopKeys = s.TopKeys[:20]
	}
	return s
}
