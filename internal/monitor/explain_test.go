package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/monitor/sqlguard"
)

// fingerprint is a digest of every row of the tables a write could touch.
func fingerprint(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `
SELECT md5(coalesce((SELECT string_agg(u::text, ',' ORDER BY id) FROM users u), '') ||
           coalesce((SELECT string_agg(c::text, ',' ORDER BY id) FROM campaigns c), '') ||
           coalesce((SELECT string_agg(e::text, ',' ORDER BY id) FROM emails e), '') ||
           (SELECT count(*) FROM audit)::text)`).Scan(&s)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	return s
}

func TestAnalyzeQueryCannotChangeData(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{AllowAnalyze: true, ExplainTimeout: 300 * time.Millisecond})
	seedEmails(t, pool, 200)
	exec(t, pool, "CREATE TABLE audit (at timestamptz)")
	// A volatile function that writes: not on the deny-list, so only the
	// READ ONLY transaction stands between it and the data.
	exec(t, pool, `CREATE FUNCTION touch_audit() RETURNS int LANGUAGE plpgsql VOLATILE AS
		$$ BEGIN INSERT INTO audit VALUES (now()); DELETE FROM emails; RETURN 1; END $$`)
	// A slow function that is not on the deny-list either: the statement
	// timeout ends it.
	exec(t, pool, `CREATE FUNCTION slow_fn() RETURNS int LANGUAGE plpgsql AS
		$$ BEGIN PERFORM pg_sleep(60); RETURN 1; END $$`)
	before := fingerprint(t, pool)
	ctx := context.Background()

	for _, c := range []struct {
		name    string
		sql     string
		analyze bool
		want    error
	}{
		{"delete", "DELETE FROM emails", true, sqlguard.ErrNotSelect},
		{"update", "UPDATE users SET name = 'x'", true, sqlguard.ErrNotSelect},
		{"insert", "INSERT INTO audit VALUES (now())", true, sqlguard.ErrNotSelect},
		{"second statement", "SELECT 1; DELETE FROM emails", true, sqlguard.ErrNotOneStatement},
		{"cte with delete", "WITH d AS (DELETE FROM emails RETURNING id) SELECT count(*) FROM d", true, sqlguard.ErrModifyingCTE},
		{"for update", "SELECT * FROM users FOR UPDATE", true, sqlguard.ErrLocking},
		{"select into", "SELECT * INTO users_copy FROM users", true, sqlguard.ErrSelectInto},
		{"pg_sleep", "SELECT pg_sleep(60)", true, sqlguard.ErrDeniedFunction},
		{"writing function, explain only", "SELECT touch_audit()", false, nil},
		{"writing function, analyzed", "SELECT touch_audit()", true, ErrQueryFailed},
		{"slow function, analyzed", "SELECT slow_fn()", true, ErrQueryTimeout},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			_, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: c.sql, Analyze: c.analyze})
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("AnalyzeQuery: %v", err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("AnalyzeQuery = %v, want %v", err, c.want)
			}
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("took %s: longer than the 300 ms timeout allows", elapsed)
			}
			if c.want == ErrQueryFailed && SQLState(err) != "25006" {
				t.Errorf("SQLSTATE %q, want 25006 (read-only transaction)", SQLState(err))
			}
		})
	}
	if after := fingerprint(t, pool); after != before {
		t.Fatal("data changed")
	}
	// Nothing is still running on the server: the timeout ended it there,
	// not only in the client. Only this test's database counts: other
	// tests of the package run pg_sleep sessions on purpose, in theirs.
	// The backend reports the cancel a moment after the client saw it, so
	// allow a second for that, far less than the statement would run.
	var running int
	for deadline := time.Now().Add(time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE (query LIKE '%slow_fn%' OR query LIKE '%pg_sleep%') AND pid <> pg_backend_pid() AND state <> 'idle'
			  AND datname = current_database()`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		if running == 0 || time.Now().After(deadline) {
			break
		}
	}
	if running != 0 {
		t.Fatalf("%d statements outlived the timeout", running)
	}
}

func TestAnalyzeQueryRules(t *testing.T) {
	t.Parallel()
	m, _ := newMonitor(t, Config{})
	ctx := context.Background()
	if _, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT 1", Analyze: true}); !errors.Is(err, ErrAnalyzeDisabled) {
		t.Errorf("analyze without MONITOR_ALLOW_ANALYZE: %v", err)
	}
	if _, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT $1::int + $2::int", Params: []any{1.0}}); !errors.Is(err, ErrParamCount) {
		t.Errorf("one param for two placeholders: %v", err)
	}
	if _, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT $1::int", Params: []any{map[string]any{}}}); !errors.Is(err, ErrParamType) {
		t.Errorf("object param: %v", err)
	}
	a, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT * FROM campaigns WHERE user_id = $1 AND name = $2", Params: []any{"00000000-0000-0000-0000-000000000000", "x"}})
	if err != nil || a.GenericPlan || a.TotalCost <= 0 {
		t.Fatalf("with params: %+v, %v", a, err)
	}
	g, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT * FROM campaigns WHERE user_id = $1"})
	if err != nil || !g.GenericPlan {
		t.Fatalf("generic: %+v, %v", g, err)
	}
	// The PREPAREd statement did not outlive the request on the pool's
	// connections: the same call works again and again.
	for i := 0; i < 5; i++ {
		if _, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT * FROM campaigns WHERE user_id = $1"}); err != nil {
			t.Fatalf("generic again: %v", err)
		}
	}
	if _, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT * FROM no_such_table"}); !errors.Is(err, ErrQueryFailed) || SQLState(err) != "42P01" {
		t.Errorf("unknown table: %v", err)
	}
}

func TestAnalyzeQueryRecommendations(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{AllowAnalyze: true})
	seedEmails(t, pool, 50_000)
	ctx := context.Background()
	kinds := func(sql string, analyze bool) map[string]bool {
		t.Helper()
		a, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: sql, Analyze: analyze})
		if err != nil {
			t.Fatalf("AnalyzeQuery(%q): %v", sql, err)
		}
		if !json.Valid(a.Plan) {
			t.Fatalf("plan is not JSON: %s", a.Plan)
		}
		out := map[string]bool{}
		for _, r := range a.Recommendations {
			out[r.Kind] = true
			if r.Message == "" {
				t.Errorf("recommendation %s without words", r.Kind)
			}
		}
		return out
	}
	k := kinds("SELECT id FROM emails WHERE recipient = 'r7@example.com'", false)
	if !k[RecSeqScan] || !k[RecNoPruning] {
		t.Errorf("filter on an unindexed column: %v, want %s and %s", k, RecSeqScan, RecNoPruning)
	}
	k = kinds("SELECT g, md5(g::text) FROM generate_series(1, (SELECT 300000)) g ORDER BY 2", true)
	if !k[RecSortSpill] || !k[RecMisestimate] {
		t.Errorf("large sort of an unestimated function: %v, want %s and %s", k, RecSortSpill, RecMisestimate)
	}
	if k := kinds("SELECT id FROM emails WHERE created_at >= now() - interval '1 day' AND recipient = 'x'", false); k[RecNoPruning] {
		t.Errorf("a created_at range prunes partitions, yet %s was reported", RecNoPruning)
	}
}

func TestRecommendationsFromPlan(t *testing.T) {
	rows := func(v float64) *float64 { return &v }
	plan := planNode{NodeType: "Nested Loop", Plans: []planNode{
		{NodeType: "Seq Scan", RelationName: "big", PlanRows: 50_000, ActualRows: rows(50_000), ActualLoops: rows(1)},
		{NodeType: "Hash", HashBatches: 8, OrigHashBatches: 1, PlanRows: 10, ActualRows: rows(10)},
	}}
	got := map[string]bool{}
	for _, r := range recommendations(plan, map[string]relInfo{"big": {rows: 50_000}}, true) {
		got[r.Kind] = true
	}
	if !got[RecNestedLoopBig] || !got[RecHashSpill] || got[RecSeqScan] {
		t.Errorf("recommendations %v, want nested loop and hash spill, and no seq scan (no filter)", got)
	}
}
