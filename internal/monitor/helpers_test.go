package monitor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/dbfixture"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newMonitor returns a monitor of a fresh migrated database.
func newMonitor(t *testing.T, cfg Config) (*Monitor, *pgxpool.Pool) {
	t.Helper()
	pool := pgtest.NewPool(t)
	if cfg.SnapshotInterval == 0 {
		// The tests take snapshots themselves.
		cfg.SnapshotInterval = time.Hour
	}
	m := New(pool, cfg, Sources{})
	t.Cleanup(m.Close)
	return m, pool
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// seedEmails creates a user and a campaign with n emails spread over the
// last three months (three monthly partitions plus the default one), each
// with its own recipient, and analyzes the table so the planner and
// pg_stats know its size.
func seedEmails(t *testing.T, pool *pgxpool.Pool, n int) (campaignID string) {
	t.Helper()
	ctx := context.Background()
	q := db.New(pool)
	now := time.Now().UTC()
	if _, err := q.EnsureEmailPartitions(ctx, db.EnsureEmailPartitionsParams{FromMonth: now.AddDate(0, -2, 0), Months: 3}); err != nil {
		t.Fatalf("ensure partitions: %v", err)
	}
	c := dbfixture.Campaign(t, q, db.CreateCampaignParams{Name: "Seed"})
	rows := make([][]any, n)
	for i := range rows {
		at := now.Add(-time.Duration(i%80) * 24 * time.Hour)
		id, created := db.NewEmailID(at)
		rows[i] = []any{id, c.ID, fmt.Sprintf("r%d@example.com", i), "Hello", "Body text", "sent", created}
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"emails"},
		[]string{"id", "campaign_id", "recipient", "subject", "body", "status", "created_at"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatalf("copy emails: %v", err)
	}
	exec(t, pool, "ANALYZE emails")
	exec(t, pool, "ANALYZE campaigns")
	return c.ID.String()
}
