package monitor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/querystats"
)

func checkByName(t *testing.T, p *Performance, name string) Check {
	t.Helper()
	for _, c := range p.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, p.Checks)
	return Check{}
}

func TestPerformanceFlagsUnusedDuplicateAndInvalidIndexes(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{})
	seedEmails(t, pool, 500)
	// Covered by emails_campaign_created_idx (campaign_id, created_at, id).
	exec(t, pool, "CREATE INDEX emails_campaign_only_idx ON emails (campaign_id)")
	// Never scanned.
	exec(t, pool, "CREATE INDEX campaigns_name_idx ON campaigns (name)")
	// ON ONLY leaves a partitioned index invalid until every partition has
	// one attached.
	exec(t, pool, "CREATE INDEX emails_subject_idx ON ONLY emails (subject)")

	p, err := m.Performance(context.Background())
	if err != nil {
		t.Fatalf("Performance: %v", err)
	}
	for _, c := range p.Checks {
		if c.Status != StatusOK && c.Status != StatusWarning {
			t.Errorf("check %s: status %q (%s)", c.Name, c.Status, c.Message)
		}
		if c.Message == "" {
			t.Errorf("check %s has no message", c.Name)
		}
	}
	dup := checkByName(t, p, "duplicate_indexes")
	if dup.Status != StatusWarning {
		t.Fatalf("duplicate_indexes: %s %s", dup.Status, dup.Message)
	}
	found := false
	for _, d := range dup.Details.([]DuplicateIndex) {
		if d.Index == "emails_campaign_only_idx" && d.CoveredBy == "emails_campaign_created_idx" {
			found = true
		}
	}
	if !found {
		t.Errorf("duplicate_indexes does not name emails_campaign_only_idx: %+v", dup.Details)
	}
	unused := checkByName(t, p, "unused_indexes")
	names := map[string]bool{}
	for _, u := range unused.Details.([]UnusedIndex) {
		names[u.Index] = true
	}
	if unused.Status != StatusWarning || !names["campaigns_name_idx"] || !names["emails_campaign_only_idx"] {
		t.Errorf("unused_indexes %s does not list the new indexes: %v", unused.Status, names)
	}
	if snaps := checkByName(t, p, "snapshots"); snaps.Status != StatusOK {
		t.Errorf("snapshots: %s %s", snaps.Status, snaps.Message)
	}
	if names["users_pkey"] || names["users_email_key"] {
		t.Errorf("unique indexes enforce constraints and must not be called unused: %v", names)
	}
	inv := checkByName(t, p, "invalid_indexes")
	if inv.Status != StatusWarning || !strings.Contains(inv.Message, "invalid") {
		t.Errorf("invalid_indexes: %s %s", inv.Status, inv.Message)
	}
	if p.SizeBytes <= 0 || p.Database == "" {
		t.Errorf("database %q size %d", p.Database, p.SizeBytes)
	}
	var emails *TableSize
	for i := range p.Tables {
		if p.Tables[i].Name == "emails" {
			emails = &p.Tables[i]
		}
	}
	if emails == nil || emails.Partitions < 4 || emails.EstimatedRows != 500 {
		t.Errorf("tables list emails as %+v, want 4+ partitions and 500 rows", emails)
	}
}

func TestPerformanceFlagsLongRunningAndIdleInTransaction(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{LongQuery: 200 * time.Millisecond, IdleInTransaction: 200 * time.Millisecond})
	ctx := context.Background()
	// A session stuck in a long query, from its own connection.
	long, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer long.Release()
	qctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = long.Exec(qctx, "SELECT pg_sleep(30)")
	}()
	defer func() { cancel(); <-done }()
	time.Sleep(600 * time.Millisecond)

	// And a session that opened a transaction and went quiet.
	idle, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = idle.Rollback(ctx) }()
	if _, err := idle.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)

	p, err := m.Performance(ctx)
	if err != nil {
		t.Fatalf("Performance: %v", err)
	}
	conns := checkByName(t, p, "connections")
	if conns.Status != StatusWarning || !strings.Contains(conns.Message, "idle in a transaction") {
		t.Errorf("connections: %s %s", conns.Status, conns.Message)
	}
	c := checkByName(t, p, "long_running_queries")
	if c.Status != StatusWarning || !strings.Contains(c.Message, "1 queries") {
		t.Errorf("long_running_queries: %s %s", c.Status, c.Message)
	}
}

func TestCatalogQueriesGiveUpOnLocks(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{LockTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	// A migration-like session holds campaigns exclusively: the monitor's
	// size queries must give up after the lock timeout, not queue behind it.
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(ctx) }()
	if _, err := holder.Exec(ctx, "LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if _, err := m.TableStats(ctx, "campaigns"); !errors.Is(err, ErrQueryTimeout) {
		t.Fatalf("TableStats under a lock: %v, want ErrQueryTimeout", err)
	}
	p, err := m.Performance(ctx)
	if err != nil {
		t.Fatalf("Performance under a lock: %v", err)
	}
	// The index checks read index definitions, which need the lock; they
	// say they gave up, and the page still answers.
	dup := checkByName(t, p, "duplicate_indexes")
	if dup.Status != StatusError || !strings.Contains(dup.Message, ErrQueryTimeout.Error()) {
		t.Errorf("duplicate_indexes: %s %s", dup.Status, dup.Message)
	}
	if c := checkByName(t, p, "connections"); c.Status == StatusError {
		t.Errorf("an unrelated check failed too: %s", c.Message)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("took %s behind the lock", elapsed)
	}
}

func TestStatementsStatus(t *testing.T) {
	for _, c := range []struct {
		preload   string
		installed bool
		available bool
		enable    string
	}{
		{"pg_stat_statements", true, true, ""},
		{`auto_explain, "pg_stat_statements"`, true, true, ""},
		{"", false, false, "shared_preload_libraries"},
		{"auto_explain", true, false, "shared_preload_libraries"},
		{"pg_stat_statements", false, false, "CREATE EXTENSION pg_stat_statements"},
	} {
		got := statementsStatusOf(c.preload, c.installed)
		if got.Available != c.available || !strings.Contains(got.Enable, c.enable) || (!got.Available && got.Reason == "") {
			t.Errorf("statementsStatusOf(%q, %v) = %+v", c.preload, c.installed, got)
		}
	}
}

func TestTableStatsListsPartitions(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{})
	seedEmails(t, pool, 1_000)
	ctx := context.Background()
	ts, err := m.TableStats(ctx, "emails")
	if err != nil {
		t.Fatalf("TableStats: %v", err)
	}
	if ts.Kind != "partitioned table" {
		t.Errorf("kind %q", ts.Kind)
	}
	var monthly, defaults int
	var sumRows int64
	for _, p := range ts.Partitions {
		switch {
		case strings.HasPrefix(p.Name, "emails_p") && strings.HasPrefix(p.Bounds, "FOR VALUES FROM"):
			monthly++
		case p.Name == "emails_default" && p.Bounds == "DEFAULT":
			defaults++
		default:
			t.Errorf("unexpected partition %s %q", p.Name, p.Bounds)
		}
		if len(p.Indexes) < 2 {
			t.Errorf("partition %s has %d indexes, want its primary key and campaign index", p.Name, len(p.Indexes))
		}
		sumRows += p.EstimatedRows
	}
	if monthly < 3 || defaults != 1 {
		t.Errorf("%d monthly partitions and %d default, want 3+ and 1", monthly, defaults)
	}
	if ts.EstimatedRows != 1_000 || sumRows != ts.EstimatedRows {
		t.Errorf("estimated rows %d (partitions sum %d), want 1000", ts.EstimatedRows, sumRows)
	}
	if ts.TotalBytes <= 0 || ts.IndexBytes <= 0 {
		t.Errorf("sizes total %d index %d", ts.TotalBytes, ts.IndexBytes)
	}
	var idx *IndexStat
	for i := range ts.Indexes {
		if ts.Indexes[i].Name == "emails_campaign_created_idx" {
			idx = &ts.Indexes[i]
		}
	}
	if idx == nil || !idx.Valid || idx.SizeBytes <= 0 || !strings.Contains(idx.Definition, "campaign_id, created_at, id") {
		t.Errorf("emails_campaign_created_idx: %+v", idx)
	}

	plain, err := m.TableStats(ctx, "campaigns")
	if err != nil || plain.Kind != "table" || len(plain.Partitions) != 0 || plain.EstimatedRows != 1 {
		t.Errorf("campaigns: %+v, %v", plain, err)
	}

	for _, name := range []string{"nope", "emails; DROP TABLE users", `"; DROP TABLE users; --`, "a.b.c.d", "emails_campaign_created_idx", strings.Repeat("x", 400)} {
		if _, err := m.TableStats(ctx, name); !errors.Is(err, ErrNotFound) {
			t.Errorf("TableStats(%q) = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := m.TableStats(ctx, "users"); err != nil {
		t.Errorf("users is gone after the injection attempts: %v", err)
	}
}

type fakeCache map[string]float64

func (f fakeCache) QueryHitRates() map[string]float64 { return f }

func (f fakeCache) Lookups() (int64, int64) { return 0, 0 }

// tracedPool is a pool on a fresh database whose queries the tracer sees,
// as cmd/replyrocket wires it.
func tracedPool(t *testing.T, tr *querystats.Tracer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestSlowQueriesWindowAndAppLatency(t *testing.T) {
	t.Parallel()
	tr := querystats.New()
	pool := tracedPool(t, tr)
	m := New(pool, Config{SnapshotInterval: time.Hour, SlowMean: time.Nanosecond, SlowCalls: 5}, Sources{Tracer: tr, Cache: fakeCache{"CountUsers": 0.75, "GetUser": 1}})
	t.Cleanup(m.Close)
	ctx := context.Background()
	q := db.New(pool)
	run := func(n int) {
		for i := 0; i < n; i++ {
			if _, err := q.CountUsers(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(10)
	if err := m.Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	run(7)

	find := func(list []Statement) *Statement {
		for i := range list {
			if strings.Contains(list[i].Query, "count(*) FROM users") {
				return &list[i]
			}
		}
		return nil
	}
	total, err := m.SlowQueries(ctx, 0)
	if err != nil {
		t.Fatalf("SlowQueries: %v", err)
	}
	if !total.PgStatStatements.Available {
		t.Fatalf("pg_stat_statements unavailable: %+v", total.PgStatStatements)
	}
	if s := find(total.ByCalls); s == nil || s.Calls != 17 || !s.Slow || s.SharePct <= 0 {
		t.Fatalf("since reset: CountUsers = %+v, want 17 calls, slow, with a share", s)
	}
	win, err := m.SlowQueries(ctx, time.Millisecond)
	if err != nil {
		t.Fatalf("SlowQueries(window): %v", err)
	}
	if win.Window == nil || win.Window.Seconds <= 0 {
		t.Fatalf("window %+v", win.Window)
	}
	if s := find(win.ByCalls); s == nil || s.Calls != 7 {
		t.Fatalf("window: CountUsers = %+v, want the 7 calls after the snapshot", s)
	}

	var count, cachedOnly *AppQuery
	for i := range win.AppQueries {
		switch win.AppQueries[i].Name {
		case "CountUsers":
			count = &win.AppQueries[i]
		case "GetUser":
			cachedOnly = &win.AppQueries[i]
		default:
			// The monitor's own catalog queries ran on this traced pool
			// too; they must not pose as the application's.
			t.Errorf("unexpected app query %+v", win.AppQueries[i])
		}
	}
	if count == nil || count.Calls != 17 || count.P99Ms <= 0 || count.CacheHitRate == nil || *count.CacheHitRate != 0.75 {
		t.Fatalf("app query CountUsers = %+v", count)
	}
	if cachedOnly == nil || cachedOnly.Calls != 0 || *cachedOnly.CacheHitRate != 1 {
		t.Errorf("a query served only from cache is missing: %+v", cachedOnly)
	}
}

func TestSlowQueriesWithoutPgStatStatements(t *testing.T) {
	t.Parallel()
	tr := querystats.New()
	pool := tracedPool(t, tr)
	exec(t, pool, "DROP EXTENSION pg_stat_statements")
	m := New(pool, Config{SnapshotInterval: time.Hour}, Sources{Tracer: tr})
	t.Cleanup(m.Close)
	ctx := context.Background()
	if _, err := db.New(pool).CountUsers(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := m.SlowQueries(ctx, time.Hour)
	if err != nil {
		t.Fatalf("SlowQueries: %v", err)
	}
	if s.PgStatStatements.Available || !strings.Contains(s.PgStatStatements.Enable, "CREATE EXTENSION pg_stat_statements") {
		t.Errorf("status %+v does not say how to enable it", s.PgStatStatements)
	}
	found := false
	for _, q := range s.AppQueries {
		found = found || (q.Name == "CountUsers" && q.Calls == 1)
	}
	if !found {
		t.Errorf("app queries %+v, want CountUsers still reported", s.AppQueries)
	}
}

func TestHistoryRates(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{})
	seedEmails(t, pool, 200)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for i := 0; i < 3; i++ {
		// Backends publish their I/O counters when idle, at most once a
		// second unless told to flush at once.
		exec(t, pool, "SELECT 1") // keep the pool's own connection warm
		if _, err := conn.Exec(ctx, "SELECT count(*) FROM emails"); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if err := m.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := m.History()
	if len(h) < 3 {
		t.Fatalf("%d history points, want at least 3", len(h))
	}
	last := h[len(h)-1]
	if last.TableHitRate == nil || *last.TableHitRate <= 0 || *last.TableHitRate > 1 {
		t.Errorf("last table hit rate %v", last.TableHitRate)
	}
	if last.MaxConns <= 0 {
		t.Errorf("pool max %d", last.MaxConns)
	}
}

// BenchmarkPerformance is what one /db-monitor/performance costs against a
// real database: every check, each its own read-only transaction.
func BenchmarkPerformance(b *testing.B) {
	pool := pgtest.NewPool(b)
	m := New(pool, Config{SnapshotInterval: time.Hour}, Sources{})
	b.Cleanup(m.Close)
	ctx := context.Background()
	for b.Loop() {
		if _, err := m.Performance(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
