package monitor

import (
	"context"
	"strings"
	"testing"
)

func TestOptimizeVerifiedWithHypoPG(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{})
	seedEmails(t, pool, 50_000)
	ctx := context.Background()

	for _, c := range []struct {
		name, sql string
		generic   bool
	}{
		{"literal", "SELECT id, subject FROM emails WHERE recipient = 'r42@example.com'", false},
		{"parameterized", "SELECT id, subject FROM emails WHERE recipient = $1", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.OptimizeQuery(ctx, OptimizeRequest{SQL: c.sql})
			if err != nil {
				t.Fatalf("OptimizeQuery: %v", err)
			}
			if got.Method != MethodHypoPG || !got.Verified {
				t.Fatalf("method %q verified %v, want hypopg and verified (note %q)", got.Method, got.Verified, got.Note)
			}
			if got.GenericPlan != c.generic {
				t.Errorf("generic_plan = %v, want %v", got.GenericPlan, c.generic)
			}
			if len(got.Suggestions) == 0 {
				t.Fatalf("no suggestion; candidates %+v", got.Candidates)
			}
			s := got.Suggestions[0]
			if s.Table != "emails" || strings.Join(s.Columns, ",") != "recipient" {
				t.Fatalf("suggestion on %s(%v), want emails(recipient)", s.Table, s.Columns)
			}
			if s.UsedByPlan == nil || !*s.UsedByPlan {
				t.Error("the hypothetical plan does not use the suggested index")
			}
			if *s.CostBefore < minInitialCost || *s.CostAfter > *s.CostBefore/2 {
				t.Errorf("costs %.1f → %.1f do not meet Dexter's bars", *s.CostBefore, *s.CostAfter)
			}
			if !strings.Contains(string(s.Plan), "btree_emails_") {
				t.Errorf("hypothetical plan does not name a hypothetical index: %s", s.Plan)
			}
			stmts := strings.Join(s.Statements, "\n")
			for _, want := range []string{`CREATE INDEX "emails_recipient_idx" ON ONLY emails ("recipient");`, "CREATE INDEX CONCURRENTLY", "ATTACH PARTITION", "emails_default"} {
				if !strings.Contains(stmts, want) {
					t.Errorf("statements lack %q:\n%s", want, stmts)
				}
			}
		})
	}

	// The suggested statements are the ones that work on a partitioned
	// table: run as given, they leave a valid index the planner uses.
	got, err := m.OptimizeQuery(ctx, OptimizeRequest{SQL: "SELECT id FROM emails WHERE recipient = 'r42@example.com'"})
	if err != nil || len(got.Suggestions) == 0 {
		t.Fatalf("OptimizeQuery: %+v, %v", got, err)
	}
	for _, stmt := range got.Suggestions[0].Statements {
		exec(t, pool, stmt)
	}
	var valid bool
	if err := pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'emails_recipient_idx'::regclass`).Scan(&valid); err != nil || !valid {
		t.Fatalf("emails_recipient_idx valid = %v, %v", valid, err)
	}
	real, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT id FROM emails WHERE recipient = 'r42@example.com'"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(real.Plan), "recipient_idx") {
		t.Errorf("the real plan does not use the created index: %s", real.Plan)
	}
	exec(t, pool, "DROP INDEX emails_recipient_idx")

	// The hypothetical indexes did not outlive the request: a plain
	// EXPLAIN on the pool's connections still scans the table.
	for i := 0; i < 3; i++ {
		a, err := m.AnalyzeQuery(ctx, AnalyzeRequest{SQL: "SELECT id FROM emails WHERE recipient = 'r42@example.com'"})
		if err != nil {
			t.Fatalf("AnalyzeQuery: %v", err)
		}
		if strings.Contains(string(a.Plan), "btree_emails_") {
			t.Fatalf("a hypothetical index outlived optimize-query: %s", a.Plan)
		}
	}
}

func TestOptimizeSkipsCoveredAndCheapCandidates(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{})
	seedEmails(t, pool, 2_000)
	got, err := m.OptimizeQuery(context.Background(), OptimizeRequest{
		SQL: "SELECT e.id FROM emails e JOIN campaigns c ON c.id = e.campaign_id WHERE e.campaign_id = $1 ORDER BY e.created_at"})
	if err != nil {
		t.Fatalf("OptimizeQuery: %v", err)
	}
	var skipped []string
	for _, s := range got.Skipped {
		skipped = append(skipped, s.Table+"("+strings.Join(s.Columns, ",")+")")
	}
	joined := strings.Join(skipped, " ")
	for _, want := range []string{"emails(campaign_id)", "emails(campaign_id,created_at)", "campaigns(id)"} {
		if !strings.Contains(joined, want) {
			t.Errorf("covered candidates %v lack %s", skipped, want)
		}
	}
	for _, c := range got.Candidates {
		if c.Table == "emails" && c.Columns[0] == "campaign_id" {
			t.Errorf("candidate %v is covered by emails_campaign_created_idx and should be skipped", c.Columns)
		}
	}
}

func TestOptimizeHeuristicWithoutHypoPG(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name   string
		cfg    Config
		drop   bool
		reason string
	}{
		{"extension absent", Config{}, true, "not created"},
		{"disabled", Config{HypoPGDisabled: true}, false, "MONITOR_HYPOPG_DISABLED"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, pool := newMonitor(t, c.cfg)
			if c.drop {
				exec(t, pool, "DROP EXTENSION IF EXISTS hypopg")
			}
			seedEmails(t, pool, 20_000)
			got, err := m.OptimizeQuery(context.Background(), OptimizeRequest{SQL: "SELECT id FROM emails WHERE recipient = $1 AND status = 'sent'"})
			if err != nil {
				t.Fatalf("OptimizeQuery: %v", err)
			}
			if got.Method != MethodHeuristic || got.Verified {
				t.Fatalf("method %q verified %v, want the unverified heuristic", got.Method, got.Verified)
			}
			if !strings.Contains(got.Note, "UNVERIFIED") || !strings.Contains(got.Note, c.reason) {
				t.Errorf("note %q does not say it is unverified and why (%s)", got.Note, c.reason)
			}
			if len(got.Suggestions) == 0 || got.Suggestions[0].Columns[0] != "recipient" {
				t.Fatalf("suggestions %+v, want recipient first", got.Suggestions)
			}
			for _, s := range got.Suggestions {
				if s.Verified || s.CostAfter != nil {
					t.Errorf("heuristic suggestion %v claims verification", s.Columns)
				}
				if s.Columns[0] == "status" && len(s.Columns) == 1 {
					t.Errorf("status alone (one distinct value) is not selective but was suggested")
				}
			}
		})
	}
}

func TestOptimizeSurvivesAnUnbuildableCandidate(t *testing.T) {
	t.Parallel()
	m, pool := newMonitor(t, Config{})
	// box has an = operator but no btree operator class.
	exec(t, pool, "CREATE TABLE boxes (id int, b box, label text)")
	exec(t, pool, "INSERT INTO boxes SELECT g, box(point(g, g), point(g + 1, g + 1)), 'l' || g FROM generate_series(1, 20000) g")
	exec(t, pool, "ANALYZE boxes")
	got, err := m.OptimizeQuery(context.Background(), OptimizeRequest{SQL: "SELECT id FROM boxes WHERE b = box '((1,1),(2,2))' AND label = 'l7'"})
	if err != nil {
		t.Fatalf("OptimizeQuery: %v", err)
	}
	var boxReason string
	labelSuggested := false
	for _, c := range got.Candidates {
		if len(c.Columns) == 1 && c.Columns[0] == "b" {
			boxReason = c.Reason
		}
	}
	for _, s := range got.Suggestions {
		labelSuggested = labelSuggested || s.Columns[0] == "label"
	}
	if !strings.Contains(boxReason, "42704") {
		t.Errorf("box candidate reason %q, want the SQLSTATE of a missing operator class", boxReason)
	}
	if !labelSuggested {
		t.Errorf("label was not suggested after the box candidate failed: %+v", got.Suggestions)
	}
}
