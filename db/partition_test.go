package db

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// scannedPartitions runs EXPLAIN (FORMAT JSON) of a generated query and
// returns the relations its plan reads.
func scannedPartitions(t *testing.T, pool *pgxpool.Pool, genericPlan bool, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// A generic plan cannot prune at plan time: it must prune when the
	// executor starts, which is what a prepared statement reused many times
	// gets.
	mode := "force_custom_plan"
	if genericPlan {
		mode = "force_generic_plan"
	}
	if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
		t.Fatal(err)
	}
	var plan []struct{ Plan planNode }
	if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+sql, args...).Scan(&plan); err != nil {
		t.Fatalf("explain: %v", err)
	}
	var rels []string
	var walk func(n planNode)
	walk = func(n planNode) {
		if n.RelationName != "" && !slices.Contains(rels, n.RelationName) && n.ActualLoops > 0 {
			rels = append(rels, n.RelationName)
		}
		for _, c := range n.Plans {
			walk(c)
		}
	}
	walk(plan[0].Plan)
	slices.Sort(rels)
	return rels
}

type planNode struct {
	RelationName string     `json:"Relation Name"`
	ActualLoops  int        `json:"Actual Loops"`
	Plans        []planNode `json:"Plans"`
}

func TestQueriesReadOnlyTheirPartitions(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	if _, err := s.EnsureEmailPartitions(ctx, EnsureEmailPartitionsParams{
		FromMonth: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Months: 6,
	}); err != nil {
		t.Fatal(err)
	}
	u := mustUser(t, s)
	c := mustCampaign(t, s, u.ID)
	var rows []InsertEmailsParams
	for m := time.January; m <= time.June; m++ {
		rows = append(rows, EmailRows(c.ID, someEmails(20), time.Date(2026, m, 15, 12, 0, 0, 0, time.UTC))...)
	}
	if _, err := s.InsertEmails(ctx, rows); err != nil {
		t.Fatal(err)
	}
	march := rows[45] // 20 per month: index 45 is in March
	if got := EmailTime(march.ID).Month(); got != time.March {
		t.Fatalf("test row is from %v", got)
	}

	for _, generic := range []bool{false, true} {
		got := scannedPartitions(t, pool, generic, getEmail, march.ID, u.ID)
		if want := []string{"campaigns", "emails_p202603"}; !slices.Equal(got, want) {
			t.Errorf("GetEmail (generic plan %v) read %v, want %v", generic, got, want)
		}
		got = scannedPartitions(t, pool, generic, getCampaignDailyCounts, c.ID,
			time.Date(2026, 2, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 20, 0, 0, 0, 0, time.UTC))
		// Sends, opens and replies in the window may be of emails created
		// before it: every partition up to the window's end is read (the
		// DEFAULT one too, which may hold any earlier month), none after.
		if want := []string{"emails_default", "emails_p202601", "emails_p202602", "emails_p202603"}; !slices.Equal(got, want) {
			t.Errorf("GetCampaignDailyCounts (generic plan %v) read %v, want %v", generic, got, want)
		}
	}

	e, err := s.GetEmail(ctx, GetEmailParams{ID: march.ID, UserID: u.ID})
	if err != nil || e.ID != march.ID {
		t.Fatalf("GetEmail: %+v, %v", e, err)
	}
	daily, err := s.GetCampaignDailyCounts(ctx, GetCampaignDailyCountsParams{
		CampaignID: c.ID, Since: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil || len(daily) != 2 || daily[0].Count != 20 || daily[0].Day.Day() != 15 {
		t.Fatalf("daily counts %+v, %v", daily, err)
	}
}
