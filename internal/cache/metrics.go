package cache

import (
	"context"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// metrics are the cache's Prometheus collectors and the counters the JSON
// snapshot reads (Prometheus counters cannot be read back cheaply).
type metrics struct {
	c                 *Cache
	lookups           *prometheus.CounterVec
	loads             *prometheus.HistogramVec
	promInvalidations *prometheus.CounterVec
	decodeErrors      prometheus.Counter
	redisErrorsProm   prometheus.CounterFunc
	gauges            []prometheus.Collector
	invalidations     []atomic.Int64
	redisErrors       atomic.Int64
}

func newMetrics(c *Cache) *metrics {
	const ns, sub = "replyrocket", "cache"
	m := &metrics{c: c, invalidations: make([]atomic.Int64, len(c.tables))}
	m.lookups = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "lookups_total",
		Help: "Annotated reads by query, tier (l1, l2, none for bypass) and result (hit, miss, stale, bypass).",
	}, []string{"query", "tier", "result"})
	m.loads = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "load_duration_seconds",
		Help:    "Database loads behind cache misses, by query.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"query"})
	m.promInvalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "invalidations_total",
		Help: "Table invalidations made by this instance, by table.",
	}, []string{"table"})
	m.decodeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "decode_errors_total",
		Help: "Cached values that failed to decode and were loaded again.",
	})
	m.redisErrorsProm = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "redis_errors_total",
		Help: "Redis failures that put the cache out of service until a resync.",
	}, func() float64 { return float64(m.redisErrors.Load()) })
	m.gauges = []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "entries", ConstLabels: prometheus.Labels{"tier": "l1"},
			Help: "Entries held.",
		}, func() float64 { return float64(c.l1Entries()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "bytes", ConstLabels: prometheus.Labels{"tier": "l1"},
			Help: "Encoded bytes held (the cost L1 is bounded by).",
		}, func() float64 { return float64(c.l1Bytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "up",
			Help: "1 while annotated reads are served from the cache, 0 while they bypass it (Redis down, resync pending).",
		}, func() float64 {
			if c.Ready() {
				return 1
			}
			return 0
		}),
	}
	for _, t := range c.tables {
		// Zero series for every table, so a dashboard shows them before the
		// first write.
		m.promInvalidations.WithLabelValues(t)
	}
	return m
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := append([]prometheus.Collector{m.lookups, m.loads, m.promInvalidations, m.decodeErrors, m.redisErrorsProm}, m.gauges...)
	for _, col := range cs {
		if err := r.Register(col); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) forQuery(name string) queryProm {
	var p queryProm
	for t, tn := range tierNames {
		p.hit[t] = m.lookups.WithLabelValues(name, tn, "hit")
		p.miss[t] = m.lookups.WithLabelValues(name, tn, "miss")
		p.stale[t] = m.lookups.WithLabelValues(name, tn, "stale")
	}
	p.bypass = m.lookups.WithLabelValues(name, "none", "bypass")
	p.load = m.loads.WithLabelValues(name)
	return p
}

func (c *Cache) l1Entries() int64 {
	mt := c.rist.Metrics
	return int64(mt.KeysAdded()) - int64(mt.KeysEvicted())
}

func (c *Cache) l1Bytes() int64 {
	mt := c.rist.Metrics
	return int64(mt.CostAdded()) - int64(mt.CostEvicted())
}

// Snapshot is the JSON shape of GET /db-monitor/cache.
type Snapshot struct {
	Enabled       bool             `json:"enabled"`
	Ready         bool             `json:"ready"`
	Namespace     string           `json:"namespace"`
	HitRate       float64          `json:"hit_rate"`
	Hits          int64            `json:"hits"`
	Misses        int64            `json:"misses"`
	Stale         int64            `json:"stale"`
	Bypasses      int64            `json:"bypasses"`
	L1            TierSnapshot     `json:"l1"`
	Redis         RedisSnapshot    `json:"redis"`
	Invalidations map[string]int64 `json:"invalidations"`
	Queries       []QuerySnapshot  `json:"queries"`
}

// TierSnapshot sizes a tier.
type TierSnapshot struct {
	Entries  int64 `json:"entries"`
	Bytes    int64 `json:"bytes"`
	MaxBytes int64 `json:"max_bytes"`
}

// RedisSnapshot is the shared tier's state. Entries and Bytes count this
// namespace's keys (all instances'), from a bounded SCAN: Partial is set
// when the scan stopped at its limit or deadline.
type RedisSnapshot struct {
	Configured bool   `json:"configured"`
	Up         bool   `json:"up"`
	Errors     int64  `json:"errors"`
	Resyncs    int64  `json:"resyncs"`
	Entries    int64  `json:"entries"`
	Bytes      int64  `json:"bytes"`
	Partial    bool   `json:"partial,omitempty"`
	ScanError  string `json:"scan_error,omitempty"`
}

// QuerySnapshot is one annotated query's figures. A hit is counted at the
// tier that served it; a read that missed both tiers counts one miss.
type QuerySnapshot struct {
	Name         string   `json:"name"`
	TTL          string   `json:"ttl"`
	SWR          string   `json:"swr,omitempty"`
	Tables       []string `json:"tables"`
	HitRate      float64  `json:"hit_rate"`
	HitsL1       int64    `json:"hits_l1"`
	HitsL2       int64    `json:"hits_l2"`
	Stale        int64    `json:"stale"`
	Misses       int64    `json:"misses"`
	Bypasses     int64    `json:"bypasses"`
	L2Entries    int64    `json:"l2_entries"`
	L2Bytes      int64    `json:"l2_bytes"`
	Loads        int64    `json:"loads"`
	AvgLoadMS    float64  `json:"avg_load_ms"`
	DecodeErrors int64    `json:"decode_errors"`
}

func (q *Query) snapshot() QuerySnapshot {
	s := &q.stats
	qs := QuerySnapshot{
		Name: q.spec.Name, TTL: q.spec.TTL.String(), Tables: q.spec.Reads,
		HitsL1: s.hit[tierL1].Load(), HitsL2: s.hit[tierL2].Load(),
		Stale:    s.stale[tierL1].Load() + s.stale[tierL2].Load(),
		Misses:   s.misses.Load(),
		Bypasses: s.bypass.Load(), Loads: s.loads.Load(), DecodeErrors: s.decodeErrors.Load(),
	}
	if q.spec.SWR > 0 {
		qs.SWR = q.spec.SWR.String()
	}
	if qs.Loads > 0 {
		qs.AvgLoadMS = float64(s.loadNanos.Load()) / float64(qs.Loads) / float64(time.Millisecond)
	}
	qs.HitRate = rate(qs.HitsL1+qs.HitsL2+qs.Stale, qs.Misses+qs.Bypasses)
	return qs
}

func rate(hits, others int64) float64 {
	if hits+others == 0 {
		return 0
	}
	return float64(hits) / float64(hits+others)
}

func (c *Cache) registered() []*Query {
	c.queryMu.Lock()
	defer c.queryMu.Unlock()
	qs := append([]*Query(nil), c.queries...)
	sort.Slice(qs, func(i, j int) bool { return qs[i].spec.Name < qs[j].spec.Name })
	return qs
}

// Snapshot gathers the figures for the monitor.
func (c *Cache) Snapshot() Snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return c.SnapshotContext(ctx)
}

// SnapshotContext is Snapshot with the Redis scan bounded by ctx.
func (c *Cache) SnapshotContext(ctx context.Context) Snapshot {
	s := Snapshot{
		Enabled: !c.cfg.Disabled, Ready: c.Ready(), Namespace: c.cfg.Namespace,
		L1:            TierSnapshot{Entries: c.l1Entries(), Bytes: c.l1Bytes(), MaxBytes: c.cfg.L1MaxBytes},
		Redis:         RedisSnapshot{Configured: c.rdb != nil, Up: c.rdb != nil && c.healthy.Load(), Errors: c.m.redisErrors.Load(), Resyncs: c.resyncs.Load()},
		Invalidations: map[string]int64{},
	}
	for i, t := range c.tables {
		s.Invalidations[t] = c.m.invalidations[i].Load()
	}
	perQuery := map[string][2]int64{}
	if c.rdb != nil && c.healthy.Load() {
		perQuery = c.scanL2(ctx, &s.Redis)
	}
	for _, q := range c.registered() {
		qs := q.snapshot()
		qs.L2Entries, qs.L2Bytes = perQuery[q.spec.Name][0], perQuery[q.spec.Name][1]
		s.Queries = append(s.Queries, qs)
		s.Hits += qs.HitsL1 + qs.HitsL2
		s.Stale += qs.Stale
		s.Misses += qs.Misses
		s.Bypasses += qs.Bypasses
	}
	s.HitRate = rate(s.Hits+s.Stale, s.Misses+s.Bypasses)
	return s
}

// QueryHitRates is each annotated query's hit rate (stale serves count as
// hits), for the monitor's query table.
func (c *Cache) QueryHitRates() map[string]float64 {
	out := map[string]float64{}
	for _, q := range c.registered() {
		out[q.spec.Name] = q.snapshot().HitRate
	}
	return out
}

// maxScanKeys bounds the monitor's walk over Redis keys.
const maxScanKeys = 100_000

// scanL2 counts this namespace's cached keys and their sizes, per query
// name (the key's second segment).
func (c *Cache) scanL2(ctx context.Context, rs *RedisSnapshot) map[string][2]int64 {
	out := map[string][2]int64{}
	iter := c.rdb.WithTimeout(time.Second).Scan(ctx, 0, c.keys.entries+"*", 1000).Iterator()
	batch := make([]string, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		pipe := c.rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(batch))
		for i, k := range batch {
			cmds[i] = pipe.StrLen(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		for i, k := range batch {
			name, _, _ := strings.Cut(strings.TrimPrefix(k, c.keys.entries), ":")
			n := cmds[i].Val()
			v := out[name]
			v[0]++
			v[1] += n
			out[name] = v
			rs.Entries++
			rs.Bytes += n
		}
		batch = batch[:0]
		return nil
	}
	seen := 0
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		seen++
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				rs.ScanError = err.Error()
				return out
			}
		}
		if seen >= maxScanKeys {
			rs.Partial = true
			break
		}
	}
	if err := iter.Err(); err != nil {
		rs.Partial = true
		rs.ScanError = err.Error()
	}
	if err := flush(); err != nil {
		rs.ScanError = err.Error()
	}
	return out
}
