package migrate_test

import (
	"context"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/migrate"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/schema"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func tables(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
		AND tablename IN ('users', 'api_keys', 'campaigns', 'emails', 'emails_default')`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// migratedUp is a fresh database with every migration applied, and its
// migrator (closed with the test).
func migratedUp(t *testing.T) (string, *migrate.Migrator) {
	t.Helper()
	url := pgtest.NewEmptyDatabase(t)
	m, err := migrate.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if _, err := m.Up(context.Background()); err != nil {
		t.Fatal(err)
	}
	return url, m
}

func TestDownThenUpRoundTrips(t *testing.T) {
	url, m := migratedUp(t)
	ctx := context.Background()
	if n := tables(t, url); n != 5 {
		t.Fatalf("%d tables after up", n)
	}
	if err := m.Redo(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.DownTo(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if n := tables(t, url); n != 0 {
		t.Fatalf("%d tables left after down to 0", n)
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := m.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range st {
		if s.State != "applied" {
			t.Fatalf("migration %d is %s after up", s.Source.Version, s.State)
		}
	}
}

func TestConcurrentMigratorsAreSafe(t *testing.T) {
	url := pgtest.NewEmptyDatabase(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	applied := make([]int, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := migrate.Open(url)
			if err != nil {
				errs[i] = err
				return
			}
			defer m.Close()
			res, err := m.Up(ctx)
			applied[i], errs[i] = len(res), err
		}()
	}
	wg.Wait()
	total := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("migrator %d: %v", i, err)
		}
		total += applied[i]
	}
	if want := migrationCount(t); total != want {
		t.Fatalf("migrations applied %d times in all, want each of %d once", total, want)
	}
	if n := tables(t, url); n != 5 {
		t.Fatalf("%d tables", n)
	}
}

// migrationCount is how many migrations the embedded schema holds.
func migrationCount(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(schema.FS, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return len(files)
}

// TestCountersBackfilledFromExistingEmails: migrating a database that
// already has campaigns and emails to the counters fills them from a full
// count, a campaign without emails included; down removes them again.
func TestCountersBackfilledFromExistingEmails(t *testing.T) {
	url, m := migratedUp(t)
	ctx := context.Background()
	if _, err := m.DownTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var user string
	if err := conn.QueryRow(ctx, `INSERT INTO users (email, name) VALUES ('a@example.com', 'A') RETURNING id`).Scan(&user); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{3, 0, 5} {
		var campaign string
		if err := conn.QueryRow(ctx, `INSERT INTO campaigns (user_id, name) VALUES ($1, 'C') RETURNING id`, user).Scan(&campaign); err != nil {
			t.Fatal(err)
		}
		for j := range n {
			id, at := db.NewEmailID(time.Now())
			if _, err := conn.Exec(ctx, `INSERT INTO emails (id, campaign_id, recipient, subject, body, is_opened, is_replied, created_at)
				VALUES ($1, $2, 'r@example.com', 's', 'b', $3, $4, $5)`, id, campaign, j%2 == 0, i == 2 && j == 0, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	rows, err := conn.Query(ctx, `SELECT n.total || '/' || n.opened || '/' || n.replied FROM campaign_email_counts n
		JOIN campaigns c ON c.id = n.campaign_id ORDER BY n.total`)
	if err != nil {
		t.Fatal(err)
	}
	got, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"0/0/0", "3/2/0", "5/3/1"}; !slices.Equal(got, want) {
		t.Fatalf("backfilled counters %v, want %v", got, want)
	}
	if _, err := m.DownTo(ctx, 4); err != nil {
		t.Fatal(err)
	}
	var left bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('campaign_email_counts') IS NOT NULL
		OR EXISTS (SELECT 1 FROM pg_trigger WHERE tgname LIKE '%counts%' OR tgname = 'emails_refuse_truncate')
		OR EXISTS (SELECT 1 FROM pg_proc WHERE proname LIKE 'campaign_email_counts%' OR proname = 'emails_refuse_truncate')`).Scan(&left); err != nil || left {
		t.Fatalf("down left counters, triggers or functions behind (%v, %v)", left, err)
	}
}
