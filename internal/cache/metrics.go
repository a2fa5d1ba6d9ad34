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

// metrics are the cache's Prometheus collectors. Per-query lookup counts
// live once, in each Query's striped counters, and a collector reads them
// at scrape time.
type metrics struct {
	c                 *Cache
	lookups           *prometheus.Desc
	loads             *prometheus.HistogramVec
	promInvalidations *prometheus.CounterVec
	decodeErrors      prometheus.Counter
	redisErrorsProm   prometheus.CounterFunc
	gauges            []prometheus.Collector
	// invalidations count, per table, each scope's scoped and scope-wide
	// bumps; the key is {table, scope label or tableWide}.
	invalidations map[[2]string]*atomic.Int64
	redisErrors   atomic.Int64
}

// tableWide labels invalidations that named no scope value: every read of
// the table (or of the scope) is invalidated.
const tableWide = "table-wide"

func newMetrics(c *Cache) *metrics {
	const ns, sub = "replyrocket", "cache"
	m := &metrics{c: c, invalidations: map[[2]string]*atomic.Int64{}}
	m.lookups = prometheus.NewDesc(prometheus.BuildFQName(ns, sub, "lookups_total"),
		"Annotated reads by query, tier (l1, l2, none for bypass) and result (hit, miss, stale, bypass).",
		[]string{"query", "tier", "result"}, nil)
	m.loads = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "load_duration_seconds",
		Help:    "Database loads behind cache misses, by query.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"query"})
	m.promInvalidations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "invalidations_total",
		Help: "Invalidations made by this instance, by table and scope: the scope's column when the write named its rows' values, table-wide when it could not.",
	}, []string{"table", "scope"})
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
	// Zero series for every table and scope, so a dashboard shows them
	// before the first write; the label set is bounded by the schema.
	for _, t := range c.tables {
		m.addInvalidationSeries(t, tableWide)
		for _, si := range c.tableScopes[t] {
			m.addInvalidationSeries(t, si.label)
		}
	}
	return m
}

func (m *metrics) addInvalidationSeries(table, label string) {
	m.invalidations[[2]string{table, label}] = new(atomic.Int64)
	m.promInvalidations.WithLabelValues(table, label)
}

// countScope counts one write's outcome for one scope.
func (m *metrics) countScope(si *scopeInfo, wide bool) {
	label := si.label
	if wide {
		label = tableWide
	}
	m.countTable(si.Table, label)
}

func (m *metrics) countTable(table, label string) {
	if n := m.invalidations[[2]string{table, label}]; n != nil {
		n.Add(1)
	}
	m.promInvalidations.WithLabelValues(table, label).Inc()
}

// Describe and Collect make metrics the collector of the lookup counts.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.lookups }

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for _, q := range m.c.registered() {
		s := &q.stats
		for t, tn := range tierNames {
			ch <- prometheus.MustNewConstMetric(m.lookups, prometheus.CounterValue, float64(s.hit[t].Value()), q.spec.Name, tn, "hit")
			ch <- prometheus.MustNewConstMetric(m.lookups, prometheus.CounterValue, float64(s.miss[t].Value()), q.spec.Name, tn, "miss")
			ch <- prometheus.MustNewConstMetric(m.lookups, prometheus.CounterValue, float64(s.stale[t].Value()), q.spec.Name, tn, "stale")
		}
		ch <- prometheus.MustNewConstMetric(m.lookups, prometheus.CounterValue, float64(s.bypass.Value()), q.spec.Name, "none", "bypass")
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	cs := append([]prometheus.Collector{m, m.loads, m.promInvalidations, m.decodeErrors, m.redisErrorsProm}, m.gauges...)
	for _, col := range cs {
		if err := r.Register(col); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cache) l1Entries() int64 {
	if c.l1 == nil {
		return 0
	}
	return c.l1.entries()
}

func (c *Cache) l1Bytes() int64 {
	if c.l1 == nil {
		return 0
	}
	return c.l1.bytes()
}

// Snapshot is the JSON shape of GET /db-monitor/cache.
type Snapshot struct {
	Enabled       bool                 `json:"enabled"`
	Ready         bool                 `json:"ready"`
	Namespace     string               `json:"namespace"`
	HitRate       float64              `json:"hit_rate"`
	Hits          int64                `json:"hits"`
	Misses        int64                `json:"misses"`
	Stale         int64                `json:"stale"`
	Bypasses      int64                `json:"bypasses"`
	L1            TierSnapshot         `json:"l1"`
	Redis         RedisSnapshot        `json:"redis"`
	Invalidations []TableInvalidations `json:"invalidations"`
	Queries       []QuerySnapshot      `json:"queries"`
}

// TableInvalidations are one table's invalidations by this instance: per
// scope, the writes that named their rows' values in it (Scoped), and the
// scope or table bumps that could not (TableWide).
type TableInvalidations struct {
	Table     string           `json:"table"`
	TableWide int64            `json:"table_wide"`
	Scoped    map[string]int64 `json:"scoped"`
}

// Invalidation is a table's figures by name, zero for an unknown table.
func (s Snapshot) Invalidation(table string) TableInvalidations {
	for _, ti := range s.Invalidations {
		if ti.Table == table {
			return ti
		}
	}
	return TableInvalidations{Table: table}
}

// Query is a query's figures by name, zero for an unknown query.
func (s Snapshot) Query(name string) QuerySnapshot {
	for _, q := range s.Queries {
		if q.Name == name {
			return q
		}
	}
	return QuerySnapshot{Name: name}
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
	Name string `json:"name"`
	TTL  string `json:"ttl"`
	SWR  string `json:"swr,omitempty"`
	// Reads are the version slots it depends on whatever its arguments;
	// Scopes those its arguments pin, with the columns it reads.
	Reads        []string   `json:"reads"`
	Scopes       []ScopeDep `json:"scopes"`
	HitRate      float64    `json:"hit_rate"`
	HitsL1       int64      `json:"hits_l1"`
	HitsL2       int64      `json:"hits_l2"`
	Stale        int64      `json:"stale"`
	Misses       int64      `json:"misses"`
	Bypasses     int64      `json:"bypasses"`
	L2Entries    int64      `json:"l2_entries"`
	L2Bytes      int64      `json:"l2_bytes"`
	Loads        int64      `json:"loads"`
	AvgLoadMS    float64    `json:"avg_load_ms"`
	DecodeErrors int64      `json:"decode_errors"`
}

func (q *Query) snapshot() QuerySnapshot {
	s := &q.stats
	qs := QuerySnapshot{
		Name: q.spec.Name, TTL: q.spec.TTL.String(), Reads: q.spec.Reads, Scopes: q.spec.Scoped,
		HitsL1: s.hit[tierL1].Value(), HitsL2: s.hit[tierL2].Value(),
		Stale:    s.stale[tierL1].Value() + s.stale[tierL2].Value(),
		Misses:   s.misses.Load(),
		Bypasses: s.bypass.Value(), Loads: s.loads.Load(), DecodeErrors: s.decodeErrors.Load(),
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
		L1:    TierSnapshot{Entries: c.l1Entries(), Bytes: c.l1Bytes(), MaxBytes: c.cfg.L1MaxBytes},
		Redis: RedisSnapshot{Configured: c.rdb != nil, Up: c.rdb != nil && c.healthy.Load(), Errors: c.m.redisErrors.Load(), Resyncs: c.resyncs.Load()},
	}
	for _, t := range c.tables {
		ti := TableInvalidations{Table: t, TableWide: c.m.invalidations[[2]string{t, tableWide}].Load(), Scoped: map[string]int64{}}
		for _, si := range c.tableScopes[t] {
			ti.Scoped[si.label] = c.m.invalidations[[2]string{t, si.label}].Load()
		}
		s.Invalidations = append(s.Invalidations, ti)
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

// Lookups are the running totals of annotated reads served from the cache
// (hits and stale serves, on either tier) and of all annotated reads.
// Cheap: no Redis scan.
func (c *Cache) Lookups() (served, total int64) {
	for _, q := range c.registered() {
		s := &q.stats
		for t := range tierNames {
			served += s.hit[t].Value() + s.stale[t].Value()
		}
		total += s.bypass.Value() + s.misses.Load()
	}
	return served, served + total
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
