package migrate_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

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

func TestDownThenUpRoundTrips(t *testing.T) {
	url := pgtest.NewEmptyDatabase(t)
	ctx := context.Background()
	m, err := migrate.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Up(ctx); err != nil {
		t.Fatal(err)
	}
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
