package monitor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/querystats"
)

// stmtKey identifies a pg_stat_statements entry within one database.
type stmtKey struct {
	userID   uint32
	queryID  int64
	topLevel bool
}

type stmtCounters struct {
	calls   int64
	totalMs float64
	rows    int64
}

// snapshot is the monitor's copy of cumulative counters at one instant.
// Windows ("last hour") are the difference between now and a snapshot, which
// is why the monitor never needs pg_stat_statements_reset.
type snapshot struct {
	at         time.Time
	statements map[stmtKey]stmtCounters // nil when pg_stat_statements is unavailable
	io         ioCounters
	ioOK       bool
	pool       PoolPoint
	// cacheServed and cacheLookups are the query cache's running totals
	// (cacheOK false without a cache).
	cacheServed, cacheLookups int64
	cacheOK                   bool
}

type ioCounters struct {
	heapHit, heapRead, idxHit, idxRead int64
}

// snapshots is a bounded ring of snapshots, oldest first.
type snapshots struct {
	mu   sync.Mutex
	max  int
	list []snapshot
}

func (s *snapshots) add(sn snapshot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, sn)
	if len(s.list) > s.max {
		s.list = append(s.list[:0], s.list[len(s.list)-s.max:]...)
	}
}

// before returns the newest snapshot taken at or before t, else the oldest
// one there is; ok is false when there are none.
func (s *snapshots) before(t time.Time) (snapshot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.list) == 0 {
		return snapshot{}, false
	}
	best := s.list[0]
	for _, sn := range s.list {
		if sn.at.After(t) {
			break
		}
		best = sn
	}
	return best, true
}

func (s *snapshots) all() []snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]snapshot(nil), s.list...)
}

// Snapshot records the current counters. The loop started by New calls it;
// it is exported so tests and operators can take one on demand.
func (m *Monitor) Snapshot(ctx context.Context) error {
	sn := snapshot{at: time.Now(), pool: m.poolPoint(time.Now())}
	if m.src.Cache != nil {
		sn.cacheServed, sn.cacheLookups = m.src.Cache.Lookups()
		sn.cacheOK = true
	}
	var errs []error
	if st := m.statementsStatus(ctx); st.Available {
		stmts, err := m.readStatements(ctx, false)
		if err != nil {
			errs = append(errs, err)
		} else {
			sn.statements = make(map[stmtKey]stmtCounters, len(stmts))
			for _, s := range stmts {
				sn.statements[s.key] = s.stmtCounters
			}
		}
	}
	io, err := m.readIO(ctx)
	if err != nil {
		errs = append(errs, err)
	} else {
		sn.io, sn.ioOK = io, true
	}
	m.snaps.add(sn)
	if len(errs) > 0 {
		return fmt.Errorf("snapshot: %w", errors.Join(errs...))
	}
	return nil
}

func (m *Monitor) readIO(ctx context.Context) (ioCounters, error) {
	var io ioCounters
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
SELECT (SELECT coalesce(sum(heap_blks_hit), 0)::int8 FROM pg_statio_user_tables),
       (SELECT coalesce(sum(heap_blks_read), 0)::int8 FROM pg_statio_user_tables),
       (SELECT coalesce(sum(idx_blks_hit), 0)::int8 FROM pg_statio_user_indexes),
       (SELECT coalesce(sum(idx_blks_read), 0)::int8 FROM pg_statio_user_indexes)`).
			Scan(&io.heapHit, &io.heapRead, &io.idxHit, &io.idxRead)
	})
	return io, classify(err)
}

// ExtensionStatus says whether an optional extension can be used, and if not
// why and how to enable it.
type ExtensionStatus struct {
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	Enable    string `json:"how_to_enable,omitempty"`
}

func (m *Monitor) statementsStatus(ctx context.Context) ExtensionStatus {
	var preload string
	var installed bool
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
SELECT current_setting('shared_preload_libraries'),
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements')`).Scan(&preload, &installed)
	})
	if err != nil {
		return ExtensionStatus{Reason: "could not read the server's settings: " + kindText(err)}
	}
	return statementsStatusOf(preload, installed)
}

// statementsStatusOf reads pg_stat_statements' state from the
// shared_preload_libraries setting and whether the extension exists.
func statementsStatusOf(preload string, installed bool) ExtensionStatus {
	preloaded := false
	for _, lib := range strings.Split(preload, ",") {
		if strings.Trim(strings.TrimSpace(lib), `"`) == "pg_stat_statements" {
			preloaded = true
		}
	}
	switch {
	case !preloaded:
		return ExtensionStatus{
			Reason: "pg_stat_statements is not in shared_preload_libraries",
			Enable: "add pg_stat_statements to shared_preload_libraries in postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements in this database",
		}
	case !installed:
		return ExtensionStatus{
			Reason: "the pg_stat_statements extension is not created in this database",
			Enable: "run CREATE EXTENSION pg_stat_statements as a superuser (or a role with CREATE on the database)",
		}
	}
	return ExtensionStatus{Available: true}
}

type stmtRow struct {
	key stmtKey
	stmtCounters
	query string
}

// readStatements reads this database's pg_stat_statements entries; with
// text, the normalised query text too (capped, since texts can be huge).
func (m *Monitor) readStatements(ctx context.Context, text bool) ([]stmtRow, error) {
	queryCol := "''"
	if text {
		queryCol = "left(query, 4000)"
	}
	sql := `SELECT userid::int8, coalesce(queryid, 0), toplevel, calls, total_exec_time, rows, ` + queryCol + `
FROM pg_stat_statements(` + fmt.Sprint(text) + `)
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`
	var out []stmtRow
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql)
		if err != nil {
			return err
		}
		var r stmtRow
		var uid int64
		_, err = pgx.ForEachRow(rows, []any{&uid, &r.key.queryID, &r.key.topLevel, &r.calls, &r.totalMs, &r.rows, &r.query}, func() error {
			r.key.userID = uint32(uid)
			out = append(out, r)
			return nil
		})
		return err
	})
	return out, classify(err)
}

// Statement is one pg_stat_statements entry, over a window or in total.
type Statement struct {
	QueryID  int64   `json:"query_id"`
	Calls    int64   `json:"calls"`
	TotalMs  float64 `json:"total_ms"`
	MeanMs   float64 `json:"mean_ms"`
	Rows     int64   `json:"rows"`
	SharePct float64 `json:"share_pct"`
	Slow     bool    `json:"slow"`
	Query    string  `json:"query"`
}

// AppQuery is a query name's latency measured in the application, with its
// cache hit rate when a cache reports one.
type AppQuery struct {
	querystats.Stat
	CacheHitRate *float64 `json:"cache_hit_rate"`
}

// SlowRule is the definition of a slow statement.
type SlowRule struct {
	MeanMs   float64 `json:"mean_ms_at_least"`
	MinCalls int64   `json:"calls_at_least"`
}

// Window is the span the statement figures cover.
type Window struct {
	Requested string    `json:"requested"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Seconds   float64   `json:"seconds"`
	// Partial is true when the monitor has not kept snapshots for as long
	// as was asked: the figures cover the shorter span From..To.
	Partial bool `json:"partial"`
}

// SlowQueries is the answer of GET /db-monitor/slow-queries.
type SlowQueries struct {
	PgStatStatements ExtensionStatus `json:"pg_stat_statements"`
	Window           *Window         `json:"window"`
	SlowRule         SlowRule        `json:"slow_rule"`
	TotalMs          float64         `json:"total_ms"`
	ByTotalTime      []Statement     `json:"by_total_time"`
	ByMeanTime       []Statement     `json:"by_mean_time"`
	ByCalls          []Statement     `json:"by_calls"`
	Slow             []Statement     `json:"slow"`
	AppQueries       []AppQuery      `json:"app_queries"`
	AppQueriesNote   string          `json:"app_queries_note,omitempty"`
}

// SlowQueries reports the top statements, over the last window when window
// is positive (from the monitor's snapshots) or since the statistics were
// last reset otherwise, and the application's per-query latency.
func (m *Monitor) SlowQueries(ctx context.Context, window time.Duration) (*SlowQueries, error) {
	out := &SlowQueries{
		SlowRule:   SlowRule{MeanMs: ms(m.cfg.SlowMean), MinCalls: m.cfg.SlowCalls},
		AppQueries: m.appQueries(),
	}
	if m.src.Tracer == nil {
		out.AppQueriesNote = "the application's query tracer is not installed, so per-query latency is not measured"
	}
	out.PgStatStatements = m.statementsStatus(ctx)
	if !out.PgStatStatements.Available {
		return out, nil
	}
	now := time.Now()
	rows, err := m.readStatements(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("read pg_stat_statements: %w", err)
	}
	if window > 0 {
		rows, out.Window = m.diff(rows, now, window)
	}
	stmts := make([]Statement, 0, len(rows))
	for _, r := range rows {
		if r.calls <= 0 {
			continue
		}
		out.TotalMs += r.totalMs
		s := Statement{QueryID: r.key.queryID, Calls: r.calls, TotalMs: r.totalMs, MeanMs: r.totalMs / float64(r.calls), Rows: r.rows, Query: r.query}
		s.Slow = s.MeanMs >= out.SlowRule.MeanMs && s.Calls >= out.SlowRule.MinCalls
		stmts = append(stmts, s)
	}
	for i := range stmts {
		if out.TotalMs > 0 {
			stmts[i].SharePct = 100 * stmts[i].TotalMs / out.TotalMs
		}
	}
	out.ByTotalTime = top(stmts, m.cfg.TopN, func(a, b Statement) bool { return a.TotalMs > b.TotalMs })
	out.ByMeanTime = top(stmts, m.cfg.TopN, func(a, b Statement) bool { return a.MeanMs > b.MeanMs })
	out.ByCalls = top(stmts, m.cfg.TopN, func(a, b Statement) bool { return a.Calls > b.Calls })
	var slow []Statement
	for _, s := range stmts {
		if s.Slow {
			slow = append(slow, s)
		}
	}
	out.Slow = top(slow, m.cfg.TopN, func(a, b Statement) bool { return a.TotalMs > b.TotalMs })
	return out, nil
}

// diff turns cumulative rows into the change since the snapshot taken at or
// before now-window.
func (m *Monitor) diff(rows []stmtRow, now time.Time, window time.Duration) ([]stmtRow, *Window) {
	w := &Window{Requested: window.String(), To: now}
	base, ok := m.snaps.before(now.Add(-window))
	if !ok || base.statements == nil {
		// Nothing to diff against: the window is empty.
		w.From, w.Partial = now, true
		return nil, w
	}
	w.From = base.at
	w.Seconds = now.Sub(base.at).Seconds()
	w.Partial = base.at.After(now.Add(-window).Add(m.cfg.SnapshotInterval))
	out := make([]stmtRow, 0, len(rows))
	for _, r := range rows {
		old, seen := base.statements[r.key]
		// A count lower than before means the entry was evicted and came
		// back (or the statistics were reset): all of it is new.
		if seen && r.calls >= old.calls {
			r.calls -= old.calls
			r.totalMs -= old.totalMs
			r.rows -= old.rows
		}
		if r.calls > 0 {
			out = append(out, r)
		}
	}
	return out, w
}

func top(in []Statement, n int, less func(a, b Statement) bool) []Statement {
	s := append([]Statement(nil), in...)
	sort.SliceStable(s, func(i, j int) bool { return less(s[i], s[j]) })
	if len(s) > n {
		s = s[:n]
	}
	return s
}

func (m *Monitor) appQueries() []AppQuery {
	out := []AppQuery{}
	var rates map[string]float64
	if m.src.Cache != nil {
		rates = m.src.Cache.QueryHitRates()
	}
	var stats []querystats.Stat
	if m.src.Tracer != nil {
		stats = m.src.Tracer.Snapshot()
	}
	seen := make(map[string]bool)
	for _, s := range stats {
		q := AppQuery{Stat: s}
		if r, ok := rates[s.Name]; ok {
			q.CacheHitRate = &r
		}
		seen[s.Name] = true
		out = append(out, q)
	}
	// A query served entirely from the cache never reaches the tracer; it
	// still belongs in the list, with its hit rate.
	var cachedOnly []string
	for name := range rates {
		if !seen[name] {
			cachedOnly = append(cachedOnly, name)
		}
	}
	sort.Strings(cachedOnly)
	for _, name := range cachedOnly {
		r := rates[name]
		out = append(out, AppQuery{Stat: querystats.Stat{Name: name}, CacheHitRate: &r})
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
