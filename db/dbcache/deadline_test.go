package dbcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
)

// lockedCampaigns holds an ACCESS EXCLUSIVE lock on campaigns, so a cached
// read of a campaign waits on the server until release.
func lockedCampaigns(t *testing.T, pool *pgxpool.Pool) func() {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() { _ = tx.Rollback(ctx) }
}

// waitingLoads counts GetCampaign statements waiting on a lock on the server.
func waitingLoads(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '-- name: GetCampaign %'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A cache miss whose only caller gives up is canceled on the server: the
// slow query does not run on under CACHE_LOAD_TIMEOUT.
func TestSharedLoadCanceledWhenItsCallerLeaves(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 0)
	s := newCached(t, pool, "", "deadline-"+t.Name())
	release := lockedCampaigns(t, pool)
	defer release()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := s.GetCampaign(ctx, db.GetCampaignParams{ID: f.campaign.ID, UserID: f.user.ID})
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, db.ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	eventually(t, "the abandoned load canceled on the server", func() bool { return waitingLoads(t, pool) == 0 })
}

// Two callers share a load: the first leaving early does not cancel it; it
// runs up to the latest deadline and answers the second.
func TestSharedLoadLivesForItsLastWaiter(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 0)
	s := newCached(t, pool, "", "deadline-"+t.Name())
	release := lockedCampaigns(t, pool)
	arg := db.GetCampaignParams{ID: f.campaign.ID, UserID: f.user.ID}

	long := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := s.GetCampaign(ctx, arg)
		long <- err
	}()
	eventually(t, "the load waiting on the lock", func() bool { return waitingLoads(t, pool) == 1 })
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.GetCampaign(short, arg); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, db.ErrTimeout) {
		t.Fatalf("short caller: %v", err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := waitingLoads(t, pool); n != 1 {
		t.Fatalf("%d loads waiting after the short caller left, want the shared one still running", n)
	}
	release()
	if err := <-long; err != nil {
		t.Fatalf("the remaining caller: %v", err)
	}

	// And the load's own deadline is the latest waiter's: with only a
	// 300 ms caller, the query is gone from the server soon after.
	release = lockedCampaigns(t, pool)
	defer release()
	s.c.Clear(context.Background())
	ctx, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	if _, err := s.GetCampaign(ctx, arg); !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, db.ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	eventually(t, "the load canceled at its deadline", func() bool { return waitingLoads(t, pool) == 0 })
}
