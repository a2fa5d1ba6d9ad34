package dbcache

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbmeta"
	"github.com/replyrocket/replyrocket/db/dbroute"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// TestLoadsAfterAWriteSeeIt: with a replica that replays 2 s late, a
// cached read loaded right after a write — by a reader who is not the
// writer, so no read-your-writes marker routes it — still reflects the
// write: the load demands the write's WAL position and reads the primary.
// The control run without the floor stores the replica's old value, so
// the test can fail. Run on both tiers; on two instances through Redis the
// second learns the position with the invalidation.
func TestLoadsAfterAWriteSeeIt(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{Replicas: 1, ApplyDelay: map[int]time.Duration{0: 3 * time.Second}})
	primary := replicaPool(t, rep.PrimaryURL)
	replica := replicaPool(t, rep.Replicas[0].URL)
	r := dbroute.New(primary, []*pgxpool.Pool{replica}, dbroute.Options{PoolTimeout: 5 * time.Second, ReadOnly: dbmeta.ReadOnly()})
	r.Start(t.Context())
	t.Cleanup(r.Close)
	routed := db.NewStore(primary, 5*time.Second, db.RouteWith(r), db.AfterCommit(r.AfterCommit))
	f := seed(t, primary, 3)
	if err := rep.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); r.Target(t.Context()) != "replica-1"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replica never entered rotation")
		}
	}
	srv := redistest.Start(t)
	opens := 0
	run := func(t *testing.T, withFloor bool, redisURL string, instances int) (opened int64) {
		ns := "rep" + time.Now().Format("150405.000000")
		var stores []*Store
		for i := 0; i < instances; i++ {
			opts := cache.Options{Tables: dbmeta.Tables, Versions: Versions, Scopes: Scopes, Registerer: prometheus.NewRegistry()}
			if withFloor {
				opts.LoadFloor = func(ctx context.Context, lsn uint64) context.Context {
					return dbroute.WithMinLSN(ctx, dbroute.LSN(lsn))
				}
			}
			c, err := cache.New(cache.Config{Namespace: ns, RedisURL: redisURL, RedisTimeout: time.Second}, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = c.Close() })
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			if err := c.WaitReady(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			s, err := New(routed, c)
			if err != nil {
				t.Fatal(err)
			}
			stores = append(stores, s)
		}
		reader := stores[len(stores)-1]
		// Cached before the write, from the replica.
		if _, err := reader.GetCampaignSummary(t.Context(), f.summaryArg()); err != nil {
			t.Fatal(err)
		}
		email := f.emails[opens].ID
		opens++
		if _, err := stores[0].MarkEmailOpened(t.Context(), db.MarkEmailOpenedParams{ID: email, UserID: f.user.ID}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(500 * time.Millisecond)
		for {
			sum, err := reader.GetCampaignSummary(t.Context(), f.summaryArg())
			if err != nil {
				t.Fatal(err)
			}
			// Across instances the invalidation takes a few milliseconds
			// to arrive; once it has, the load must see the write.
			if instances == 1 || sum.Opened >= int64(opens) || time.Now().After(deadline) {
				return sum.Opened
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Run("l1", func(t *testing.T) {
		if got := run(t, true, "", 1); got != 1 {
			t.Fatalf("summary after the open: %d opened, want 1", got)
		}
	})
	t.Run("two instances through redis", func(t *testing.T) {
		if got := run(t, true, srv.URL(), 2); got != 2 {
			t.Fatalf("summary after the open on the other instance: %d opened, want 2", got)
		}
	})
	t.Run("control: no floor", func(t *testing.T) {
		// The third open, read less than the replica's 3 s delay after it:
		// without the floor the load goes to the replica, which has not
		// replayed it, and the cache keeps the old count.
		if got := run(t, false, "", 1); got >= 3 {
			t.Fatalf("without the floor the load saw the write (%d opened): the control shows nothing", got)
		}
	})
}

func replicaPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
