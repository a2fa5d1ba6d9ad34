package monitor

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Check statuses. StatusError means the check's catalog query did not
// complete (usually its statement_timeout); the check says nothing then.
const (
	StatusOK      = "ok"
	StatusWarning = "warning"
	StatusError   = "error"
)

// Check is one health check: a status and one line saying what it found
// and what to do.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

// PoolPoint is the application pool's state at one instant.
type PoolPoint struct {
	At                      time.Time `json:"at"`
	TotalConns              int32     `json:"total_conns"`
	AcquiredConns           int32     `json:"acquired_conns"`
	IdleConns               int32     `json:"idle_conns"`
	ConstructingConns       int32     `json:"constructing_conns"`
	MaxConns                int32     `json:"max_conns"`
	AcquireCount            int64     `json:"acquire_count"`
	EmptyAcquireCount       int64     `json:"empty_acquire_count"`
	CanceledAcquireCount    int64     `json:"canceled_acquire_count"`
	AcquireDurationMs       float64   `json:"acquire_duration_ms"`
	NewConnsCount           int64     `json:"new_conns_count"`
	MaxLifetimeDestroyCount int64     `json:"max_lifetime_destroy_count"`
	MaxIdleDestroyCount     int64     `json:"max_idle_destroy_count"`
}

func (m *Monitor) poolPoint(at time.Time) PoolPoint {
	pool := m.pool
	if m.src.Pool != nil {
		pool = m.src.Pool
	}
	s := pool.Stat()
	return PoolPoint{
		At: at, TotalConns: s.TotalConns(), AcquiredConns: s.AcquiredConns(), IdleConns: s.IdleConns(),
		ConstructingConns: s.ConstructingConns(), MaxConns: s.MaxConns(),
		AcquireCount: s.AcquireCount(), EmptyAcquireCount: s.EmptyAcquireCount(),
		CanceledAcquireCount: s.CanceledAcquireCount(), AcquireDurationMs: ms(s.AcquireDuration()),
		NewConnsCount: s.NewConnsCount(), MaxLifetimeDestroyCount: s.MaxLifetimeDestroyCount(),
		MaxIdleDestroyCount: s.MaxIdleDestroyCount(),
	}
}

// HistoryPoint is one snapshot's figures for the dashboard's charts. Hit
// rates cover the interval since the previous snapshot, so a chart shows
// change rather than a since-startup average that barely moves.
type HistoryPoint struct {
	At time.Time `json:"at"`
	// QueryCacheHitRate is the share of annotated reads the query cache
	// served; TableHitRate and IndexHitRate are PostgreSQL's buffer cache.
	QueryCacheHitRate *float64 `json:"query_cache_hit_rate"`
	TableHitRate      *float64 `json:"table_hit_rate"`
	IndexHitRate      *float64 `json:"index_hit_rate"`
	AcquiredConns     int32    `json:"acquired_conns"`
	IdleConns         int32    `json:"idle_conns"`
	TotalConns        int32    `json:"total_conns"`
	MaxConns          int32    `json:"max_conns"`
}

// History returns one point per snapshot, oldest first.
func (m *Monitor) History() []HistoryPoint {
	snaps := m.snaps.all()
	out := make([]HistoryPoint, 0, len(snaps))
	for i, sn := range snaps {
		p := HistoryPoint{At: sn.at, AcquiredConns: sn.pool.AcquiredConns, IdleConns: sn.pool.IdleConns,
			TotalConns: sn.pool.TotalConns, MaxConns: sn.pool.MaxConns}
		if sn.ioOK {
			cur := sn.io
			var prev ioCounters
			if i > 0 && snaps[i-1].ioOK {
				prev = snaps[i-1].io
			}
			p.TableHitRate = hitRate(cur.heapHit-prev.heapHit, cur.heapRead-prev.heapRead)
			p.IndexHitRate = hitRate(cur.idxHit-prev.idxHit, cur.idxRead-prev.idxRead)
		}
		if sn.cacheOK && i > 0 && snaps[i-1].cacheOK {
			served := sn.cacheServed - snaps[i-1].cacheServed
			lookups := sn.cacheLookups - snaps[i-1].cacheLookups
			p.QueryCacheHitRate = hitRate(served, lookups-served)
		}
		out = append(out, p)
	}
	return out
}

// hitRate is hits/(hits+reads), or nil when there was no traffic (or the
// counters went backwards after a statistics reset).
func hitRate(hit, read int64) *float64 {
	if hit < 0 || read < 0 || hit+read == 0 {
		return nil
	}
	r := float64(hit) / float64(hit+read)
	return &r
}

// Performance is the answer of GET /db-monitor/performance.
type Performance struct {
	Database   string         `json:"database"`
	SizeBytes  int64          `json:"size_bytes"`
	Checks     []Check        `json:"checks"`
	Pool       PoolPoint      `json:"pool"`
	History    []HistoryPoint `json:"history"`
	Tables     []TableSize    `json:"tables"`
	Extensions map[string]any `json:"extensions"`
	// Links name related pages by role ("health", "slow_queries",
	// "cache"). The HTTP layer fills them in: the monitor knows no routes.
	Links map[string]string `json:"links"`
}

// Performance runs every check. A check whose query fails is reported with
// StatusError; the others still answer.
func (m *Monitor) Performance(ctx context.Context) (*Performance, error) {
	p := &Performance{
		Pool:    m.poolPoint(time.Now()),
		History: m.History(),
	}
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT current_database(), pg_database_size(current_database())`).Scan(&p.Database, &p.SizeBytes)
	})
	if err != nil {
		return nil, fmt.Errorf("read database size: %w", classify(err))
	}
	checks := []struct {
		name string
		run  func(context.Context) (Check, error)
	}{
		{"connections", m.checkConnections},
		{"pool", m.checkPool},
		{"transactions", m.checkTransactions},
		{"table_cache_hit_rate", m.checkHitRate("table", "pg_statio_user_tables", "heap_blks")},
		{"index_cache_hit_rate", m.checkHitRate("index", "pg_statio_user_indexes", "idx_blks")},
		{"long_running_queries", m.checkLongRunning},
		{"transaction_id_wraparound", m.checkWraparound},
		{"invalid_indexes", m.checkInvalidIndexes},
		{"unused_indexes", m.checkUnusedIndexes},
		{"duplicate_indexes", m.checkDuplicateIndexes},
		{"sequences", m.checkSequences},
		{"snapshots", m.checkSnapshots},
		{"replication", m.checkReplication},
		{"replication_slots", m.checkReplicationSlots},
	}
	for _, c := range checks {
		res, err := c.run(ctx)
		if err != nil {
			res = Check{Status: StatusError, Message: "the check did not complete: " + kindText(err)}
		}
		res.Name = c.name
		p.Checks = append(p.Checks, res)
	}
	// Like a check, a failed size list leaves the rest of the page intact.
	tables, err := m.tableSizes(ctx)
	if err != nil {
		tables = []TableSize{}
		p.Checks = append(p.Checks, Check{Name: "table_sizes", Status: StatusError, Message: "the table size list did not complete: " + kindText(err)})
	}
	p.Tables = tables
	p.Extensions = map[string]any{
		"pg_stat_statements": m.statementsStatus(ctx),
		"hypopg":             m.hypoStatus(ctx),
	}
	if m.src.Cache != nil {
		p.Extensions["query_cache"] = ExtensionStatus{Available: true}
	}
	return p, nil
}

// kindText is the fixed, client-safe text of a monitor error.
func kindText(err error) string {
	for _, k := range []error{ErrQueryTimeout, ErrUnavailable, ErrQueryFailed, ErrNotFound, ErrInvalidQuery, ErrAnalyzeDisabled} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return ErrQueryFailed.Error()
}

func ok(msg string, details any) Check {
	return Check{Status: StatusOK, Message: msg, Details: details}
}
func warn(msg string, details any) Check {
	return Check{Status: StatusWarning, Message: msg, Details: details}
}

func (m *Monitor) checkConnections(ctx context.Context) (Check, error) {
	type idleTx struct {
		PID      int32   `json:"pid"`
		Seconds  float64 `json:"seconds"`
		App      string  `json:"application_name"`
		Database string  `json:"database"`
	}
	d := struct {
		ByState map[string]int `json:"by_state"`
		// ByApplication counts sessions by application_name: this app's
		// pools and the work that names its session (see pgsession).
		ByApplication     map[string]int `json:"by_application"`
		Total             int            `json:"total"`
		Max               int            `json:"max_connections"`
		IdleInTransaction []idleTx       `json:"idle_in_transaction"`
	}{ByState: map[string]int{}, ByApplication: map[string]int{}, IdleInTransaction: []idleTx{}}
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT current_setting('max_connections')::int`).Scan(&d.Max); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
SELECT coalesce(state, 'unknown'), coalesce(nullif(application_name, ''), '(none)'), count(*)::int
FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1, 2`)
		if err != nil {
			return err
		}
		var state, app string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&state, &app, &n}, func() error {
			d.ByState[state] += n
			d.ByApplication[app] += n
			d.Total += n
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `
SELECT pid, extract(epoch FROM now() - state_change)::float8, coalesce(application_name, ''), coalesce(datname, '')
FROM pg_stat_activity
WHERE state LIKE 'idle in transaction%' AND state_change < now() - make_interval(secs => $1)
  AND datname = current_database()
ORDER BY state_change LIMIT 20`, m.cfg.IdleInTransaction.Seconds())
		if err != nil {
			return err
		}
		var it idleTx
		_, err = pgx.ForEachRow(rows, []any{&it.PID, &it.Seconds, &it.App, &it.Database}, func() error {
			d.IdleInTransaction = append(d.IdleInTransaction, it)
			return nil
		})
		return err
	})
	if err != nil {
		return Check{}, classify(err)
	}
	switch {
	case d.Max > 0 && d.Total*100 >= d.Max*80:
		return warn(fmt.Sprintf("%d of %d connections in use: above 80 %%; put a pooler (PgBouncer) in front or lower pool sizes", d.Total, d.Max), d), nil
	case len(d.IdleInTransaction) > 0:
		return warn(fmt.Sprintf("%d sessions idle in a transaction for over %s: they hold locks and block vacuum; find the code that leaves transactions open, and set idle_in_transaction_session_timeout", len(d.IdleInTransaction), m.cfg.IdleInTransaction), d), nil
	}
	return ok(fmt.Sprintf("%d of %d connections in use; none idle in a transaction for over %s", d.Total, d.Max, m.cfg.IdleInTransaction), d), nil
}

func (m *Monitor) checkPool(context.Context) (Check, error) {
	p := m.poolPoint(time.Now())
	if p.MaxConns > 0 && p.AcquiredConns >= p.MaxConns {
		return warn(fmt.Sprintf("all %d pool connections are in use: requests wait for a connection; raise DB_POOL_SIZE or find slow queries", p.MaxConns), p), nil
	}
	return ok(fmt.Sprintf("%d of %d pool connections in use, %d idle; %d of %d acquires had to wait for a new connection",
		p.AcquiredConns, p.MaxConns, p.IdleConns, p.EmptyAcquireCount, p.AcquireCount), p), nil
}

func (m *Monitor) checkTransactions(ctx context.Context) (Check, error) {
	d := struct {
		Commits    int64      `json:"commits"`
		Rollbacks  int64      `json:"rollbacks"`
		Deadlocks  int64      `json:"deadlocks"`
		TempFiles  int64      `json:"temp_files"`
		TempBytes  int64      `json:"temp_bytes"`
		StatsReset *time.Time `json:"stats_reset"`
	}{}
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
SELECT xact_commit, xact_rollback, deadlocks, temp_files, temp_bytes, stats_reset
FROM pg_stat_database WHERE datname = current_database()`).
			Scan(&d.Commits, &d.Rollbacks, &d.Deadlocks, &d.TempFiles, &d.TempBytes, &d.StatsReset)
	})
	if err != nil {
		return Check{}, classify(err)
	}
	var problems []string
	if d.Deadlocks > 0 {
		problems = append(problems, fmt.Sprintf("%d deadlocks: make transactions take locks in one order", d.Deadlocks))
	}
	if d.TempFiles > 0 {
		problems = append(problems, fmt.Sprintf("%d temp files (%d bytes): sorts or hashes spilled to disk; raise work_mem or find the query with analyze-query", d.TempFiles, d.TempBytes))
	}
	if total := d.Commits + d.Rollbacks; total > 1000 && d.Rollbacks*10 > total {
		problems = append(problems, fmt.Sprintf("%d of %d transactions rolled back: look for failing requests", d.Rollbacks, total))
	}
	if len(problems) > 0 {
		return warn(strings.Join(problems, "; "), d), nil
	}
	return ok(fmt.Sprintf("%d commits, %d rollbacks, no deadlocks and no temp files since statistics were reset", d.Commits, d.Rollbacks), d), nil
}

// cacheHitThreshold is the hit rate below which the working set no longer
// fits in shared_buffers and reads go to disk.
const cacheHitThreshold = 0.99

func (m *Monitor) checkHitRate(what, view, prefix string) func(context.Context) (Check, error) {
	// view and prefix are constants from Performance, never client input.
	sql := fmt.Sprintf(`SELECT coalesce(sum(%[2]s_hit), 0)::int8, coalesce(sum(%[2]s_read), 0)::int8 FROM %[1]s`, view, prefix)
	return func(ctx context.Context) (Check, error) {
		var hit, read int64
		err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error { return tx.QueryRow(ctx, sql).Scan(&hit, &read) })
		if err != nil {
			return Check{}, classify(err)
		}
		d := map[string]any{"hits": hit, "reads": read, "threshold": cacheHitThreshold}
		r := hitRate(hit, read)
		if r == nil {
			return ok(fmt.Sprintf("no %s blocks read yet", what), d), nil
		}
		d["hit_rate"] = *r
		if *r < cacheHitThreshold {
			return warn(fmt.Sprintf("%s cache hit rate %.2f %% is below 99 %%: the working set does not fit in memory; raise shared_buffers or add RAM", what, 100**r), d), nil
		}
		return ok(fmt.Sprintf("%s cache hit rate %.2f %% (at least 99 %%)", what, 100**r), d), nil
	}
}

func (m *Monitor) checkLongRunning(ctx context.Context) (Check, error) {
	type q struct {
		PID     int32   `json:"pid"`
		Seconds float64 `json:"seconds"`
		State   string  `json:"state"`
		App     string  `json:"application_name"`
		Query   string  `json:"query"`
	}
	list, err := catalogRows[q](ctx, m, `
SELECT pid, extract(epoch FROM now() - query_start)::float8, coalesce(state, ''), coalesce(application_name, ''), left(query, 300)
FROM pg_stat_activity
WHERE state IN ('active', 'fastpath function call') AND backend_type = 'client backend'
  AND datname = current_database() AND pid <> pg_backend_pid() AND query_start < now() - make_interval(secs => $1)
ORDER BY query_start LIMIT 20`, m.cfg.LongQuery.Seconds())
	if err != nil {
		return Check{}, classify(err)
	}
	if len(list) > 0 {
		return warn(fmt.Sprintf("%d queries running for over %s: check them, and cancel with pg_cancel_backend(pid) if stuck", len(list), m.cfg.LongQuery), list), nil
	}
	return ok(fmt.Sprintf("no query running for over %s", m.cfg.LongQuery), list), nil
}

// wraparoundWarnAge is half of the 2^31 transaction ids PostgreSQL can have
// outstanding: autovacuum normally freezes long before (at
// autovacuum_freeze_max_age, 200 million by default).
const wraparoundWarnAge = 1 << 30

func (m *Monitor) checkWraparound(ctx context.Context) (Check, error) {
	type db struct {
		Database string `json:"database"`
		Age      int64  `json:"age"`
		Left     int64  `json:"transactions_left"`
	}
	list, err := catalogRows[db](ctx, m, `
SELECT datname, age(datfrozenxid)::int8, (2147483647 - age(datfrozenxid))::int8
FROM pg_database WHERE datallowconn ORDER BY 2 DESC LIMIT 10`)
	if err != nil {
		return Check{}, classify(err)
	}
	if len(list) > 0 && list[0].Age >= wraparoundWarnAge {
		return warn(fmt.Sprintf("database %s has %d transaction ids left before wraparound: run VACUUM (FREEZE) on its oldest tables and check autovacuum is not blocked", list[0].Database, list[0].Left), list), nil
	}
	oldest := int64(0)
	if len(list) > 0 {
		oldest = list[0].Age
	}
	return ok(fmt.Sprintf("oldest unfrozen transaction is %d ids old; wraparound is far away", oldest), list), nil
}

func (m *Monitor) checkInvalidIndexes(ctx context.Context) (Check, error) {
	type idx struct {
		Index string `json:"index"`
		Table string `json:"table"`
	}
	list, err := catalogRows[idx](ctx, m, `
SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 1`)
	if err != nil {
		return Check{}, classify(err)
	}
	if len(list) > 0 {
		return warn(fmt.Sprintf("%d invalid indexes (a failed CREATE INDEX CONCURRENTLY, or a partitioned index missing partitions): they cost writes and serve no reads; drop and recreate them", len(list)), list), nil
	}
	return ok("no invalid indexes", list), nil
}

// UnusedIndex is an index no scan has used since statistics were reset.
type UnusedIndex struct {
	Index     string `json:"index"`
	Table     string `json:"table"`
	SizeBytes int64  `json:"size_bytes"`
}

func (m *Monitor) checkUnusedIndexes(ctx context.Context) (Check, error) {
	// Partitions' indexes are rolled up to the partitioned index they belong
	// to: the question is whether the index as a whole is used.
	list, err := catalogRows[UnusedIndex](ctx, m, `
SELECT r.root::regclass::text, i.indrelid::regclass::text, sum(pg_relation_size(s.indexrelid))::int8
FROM pg_stat_user_indexes s
CROSS JOIN LATERAL (SELECT coalesce(pg_partition_root(s.indexrelid), s.indexrelid) AS root) r
JOIN pg_index i ON i.indexrelid = r.root
WHERE NOT i.indisunique AND NOT i.indisprimary
GROUP BY r.root, i.indrelid
HAVING sum(s.idx_scan) = 0
ORDER BY 3 DESC, 1
LIMIT 100`)
	if err != nil {
		return Check{}, classify(err)
	}
	if len(list) > 0 {
		return warn(fmt.Sprintf("%d indexes have not been scanned since statistics were reset: if that covers normal traffic (and replicas), drop them with DROP INDEX CONCURRENTLY", len(list)), list), nil
	}
	return ok("every non-unique index has been scanned", list), nil
}

type indexInfo struct {
	Name       string
	Table      string
	Keys       []int16
	Classes    []uint32
	Unique     bool
	Primary    bool
	Expr, Pred string
	Method     string
	Def        string
}

// DuplicateIndex is an index another index makes redundant.
type DuplicateIndex struct {
	Index     string `json:"index"`
	CoveredBy string `json:"covered_by"`
	Table     string `json:"table"`
	Def       string `json:"definition"`
	CoverDef  string `json:"covered_by_definition"`
}

func (m *Monitor) checkDuplicateIndexes(ctx context.Context) (Check, error) {
	all, err := catalogRows[indexInfo](ctx, m, `
SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text, i.indkey::int2[], i.indclass::oid[],
       i.indisunique, i.indisprimary,
       coalesce(pg_get_expr(i.indexprs, i.indrelid), ''), coalesce(pg_get_expr(i.indpred, i.indrelid), ''),
       am.amname, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_am am ON am.oid = c.relam
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisvalid AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`)
	if err != nil {
		return Check{}, classify(err)
	}
	list := duplicates(all)
	if len(list) > 0 {
		return warn(fmt.Sprintf("%d indexes are covered by another index's leading columns: they cost writes and space for nothing; drop them with DROP INDEX CONCURRENTLY", len(list)), list), nil
	}
	return ok("no duplicate or covered indexes", list), nil
}

// duplicates finds indexes whose columns are a leading prefix of another
// index on the same table with the same method, operator classes,
// expressions and predicate (PgHero's rule). A unique index is never
// redundant: it enforces a constraint.
func duplicates(all []indexInfo) []DuplicateIndex {
	list := []DuplicateIndex{}
	for _, a := range all {
		if a.Unique || a.Primary {
			continue
		}
		for _, b := range all {
			if a.Name == b.Name || a.Table != b.Table || a.Method != b.Method || a.Expr != b.Expr || a.Pred != b.Pred {
				continue
			}
			if !prefix(a.Keys, b.Keys) || !prefixU(a.Classes, b.Classes) {
				continue
			}
			// Two identical non-unique indexes: report only one of them.
			if len(a.Keys) == len(b.Keys) && !b.Unique && a.Name < b.Name {
				continue
			}
			list = append(list, DuplicateIndex{Index: a.Name, CoveredBy: b.Name, Table: a.Table, Def: a.Def, CoverDef: b.Def})
			break
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Index < list[j].Index })
	return list
}

func prefix(a, b []int16) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func prefixU(a, b []uint32) bool {
	if len(a) > len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (m *Monitor) checkSequences(ctx context.Context) (Check, error) {
	type seq struct {
		Sequence string  `json:"sequence"`
		Last     int64   `json:"last_value"`
		Max      int64   `json:"max_value"`
		Used     float64 `json:"used"`
	}
	list := []seq{}
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		// last_value is NULL for sequences never used or not readable by
		// this role; both are skipped.
		rows, err := tx.Query(ctx, `
SELECT schemaname || '.' || sequencename, last_value, max_value,
       CASE WHEN increment_by > 0 THEN (last_value - min_value)::float8 / nullif(max_value - min_value, 0)
            ELSE (max_value - last_value)::float8 / nullif(max_value - min_value, 0) END
FROM pg_sequences WHERE last_value IS NOT NULL ORDER BY 4 DESC NULLS LAST LIMIT 20`)
		if err != nil {
			return err
		}
		var s seq
		var used *float64
		_, err = pgx.ForEachRow(rows, []any{&s.Sequence, &s.Last, &s.Max, &used}, func() error {
			s.Used = 0
			if used != nil {
				s.Used = *used
			}
			list = append(list, s)
			return nil
		})
		return err
	})
	if err != nil {
		return Check{}, classify(err)
	}
	var near []seq
	for _, s := range list {
		if s.Used >= 0.9 {
			near = append(near, s)
		}
	}
	if len(near) > 0 {
		return warn(fmt.Sprintf("%d sequences have used over 90 %% of their range: change the column and sequence to bigint before inserts fail", len(near)), list), nil
	}
	return ok("no sequence is near exhaustion", list), nil
}

// TableSize is one table in the overview's size list. A partitioned table
// counts its partitions' sizes and rows.
type TableSize struct {
	Name          string `json:"name"`
	TotalBytes    int64  `json:"total_bytes"`
	EstimatedRows int64  `json:"estimated_rows"`
	Partitions    int    `json:"partitions"`
}

func (m *Monitor) tableSizes(ctx context.Context) ([]TableSize, error) {
	list, err := catalogRows[TableSize](ctx, m, `
SELECT c.oid::regclass::text,
       (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::int8 FROM pg_partition_tree(c.oid) t),
       (SELECT coalesce(sum(greatest(x.reltuples, 0)), 0)::int8 FROM pg_partition_tree(c.oid) t
          JOIN pg_class x ON x.oid = t.relid WHERE t.isleaf),
       CASE WHEN c.relkind = 'p' THEN (SELECT count(*) FROM pg_partition_tree(c.oid) t WHERE t.isleaf) ELSE 0 END::int
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
ORDER BY 2 DESC, 1 LIMIT 50`)
	if err != nil {
		return nil, fmt.Errorf("read table sizes: %w", classify(err))
	}
	return list, nil
}

func (m *Monitor) checkSnapshots(context.Context) (Check, error) {
	n := len(m.snaps.all())
	if msg, _ := m.snapErr.Load().(string); msg != "" {
		return warn("the last counter snapshot failed ("+msg+"): slow-query windows and charts have a gap until the next one succeeds", n), nil
	}
	return ok(fmt.Sprintf("%d counter snapshots kept, one every %s, for windows of up to %s", n, m.cfg.SnapshotInterval, m.cfg.Retention), n), nil
}

// catalogRows runs one catalog query under the monitor's catalog timeout and
// collects its rows into T by column position.
func catalogRows[T any](ctx context.Context, m *Monitor, sql string, args ...any) ([]T, error) {
	var out []T
	err := m.catalog(ctx, func(ctx context.Context, tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowToStructByPos[T])
		return err
	})
	return out, err
}
