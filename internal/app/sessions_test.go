package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// sessionsByName counts the database's other sessions by application_name,
// as pg_stat_activity shows them.
func sessionsByName(t *testing.T, observer *pgx.Conn) map[string]int {
	t.Helper()
	rows, err := observer.Query(t.Context(), `
SELECT application_name, count(*)::int FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	var name string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&name, &n}, func() error { out[name] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// Each pool's connections carry its name in pg_stat_activity (api,
// background, replica-N), and the work that holds a background connection
// names it while it does: each scheduled job under its own name, and the
// monitor. Each job is held on a lock the test takes, so its session is
// seen while it runs; once released, the connection is "background" again.
func TestSessionsNamedByPurpose(t *testing.T) {
	t.Parallel()
	const admin = "admin-key-for-sessions-test"
	url := pgtest.NewDatabase(t)
	// The "replica" is the primary itself: not a standby, so it stays out
	// of rotation, but its pool opens and is health-checked.
	a := newAppOn(t, url, map[string]string{
		"DATABASE_REPLICA_URLS": url, "ADMIN_API_KEY": admin, "IDEMPOTENCY_TTL": "1h",
		"MONITOR_LOCK_TIMEOUT": "30s", "MONITOR_CATALOG_TIMEOUT": "30s",
	})
	ctx := t.Context()
	observer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close(context.Background())
	waitFor(t, func() bool {
		s := sessionsByName(t, observer)
		return s["api"] > 0 && s["replica-1"] > 0 && s["background"] > 0
	})

	// heldBy runs work while the observer holds lock, and checks that a
	// session named name is waiting for it; it returns work's error.
	heldBy := func(name, lock string, work func() error) error {
		t.Helper()
		tx, err := observer.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(context.Background()) }()
		if _, err := tx.Exec(ctx, lock); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- work() }()
		waitFor(t, func() bool {
			// pg_stat_activity is read once per transaction unless the
			// snapshot is cleared.
			if _, err := tx.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
				t.Fatal(err)
			}
			var waiting bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
WHERE application_name = $1 AND wait_event_type = 'Lock' AND datname = current_database())`, name).Scan(&waiting)
			if err != nil {
				t.Fatal(err)
			}
			return waiting
		})
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		return <-done
	}

	if err := heldBy("partition-maintenance",
		`SELECT pg_advisory_xact_lock(hashtextextended('replyrocket.emails.partitions', 0))`,
		func() error { return a.EnsurePartitions(ctx) }); err != nil {
		t.Fatalf("partition maintenance: %v", err)
	}

	if _, err := a.Pool.Exec(ctx, `INSERT INTO idempotency_keys (owner, key, method, path, request_hash, status, created_at)
VALUES ('admin', 'old', 'POST', '/x', decode(repeat('00', 32), 'hex'), 201, now() - interval '2 hours')`); err != nil {
		t.Fatal(err)
	}
	var purged int64
	if err := heldBy("idempotency-purge", `SELECT FROM idempotency_keys WHERE key = 'old' FOR UPDATE`,
		func() (err error) { purged, err = a.PurgeIdempotencyKeys(ctx); return err }); err != nil || purged != 1 {
		t.Fatalf("idempotency purge: %d purged, %v; want 1", purged, err)
	}

	var status int
	if err := heldBy("monitor", `LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE`, func() error {
		req := httptest.NewRequest(http.MethodGet, "/db-monitor/table-stats/campaigns", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		rec := httptest.NewRecorder()
		a.Router.ServeHTTP(rec, req)
		status = rec.Code
		return nil
	}); err != nil || status != http.StatusOK {
		t.Fatalf("table-stats: %d, %v", status, err)
	}

	// Released, every background connection has its pool's name back.
	waitFor(t, func() bool {
		s := sessionsByName(t, observer)
		return s["partition-maintenance"] == 0 && s["idempotency-purge"] == 0 && s["monitor"] == 0 && s["background"] > 0
	})
}
