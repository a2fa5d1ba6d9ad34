package dbcache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// tiers runs a test with L1 only and with L1 + Redis.
func tiers(t *testing.T, fn func(t *testing.T, redisURL string)) {
	t.Run("l1", func(t *testing.T) { fn(t, "") })
	t.Run("l1+redis", func(t *testing.T) { fn(t, redistest.Start(t).URL()) })
}

func TestReadThroughThenInvalidateOnWrite(t *testing.T) {
	tiers(t, func(t *testing.T, redisURL string) {
		pool := newPool(t, nil)
		f := seed(t, pool, 3)
		s := newCached(t, pool, redisURL, "t")
		ctx := context.Background()
		var got db.GetCampaignSummaryRow
		read := func(ctx context.Context) (err error) {
			got, err = s.GetCampaignSummary(ctx, f.summaryArg())
			return err
		}
		if o := outcome(t, read); o != "miss" || got.Total != 3 {
			t.Fatalf("first read: %s %+v, want miss with 3 emails", o, got)
		}
		if o := outcome(t, read); o != "hit" || got.Total != 3 {
			t.Fatalf("second read: %s %+v, want hit with 3 emails", o, got)
		}
		if _, err := s.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: f.emails[0].ID, UserID: f.user.ID}); err != nil {
			t.Fatal(err)
		}
		if o := outcome(t, read); o != "miss" || got.Opened != 1 {
			t.Fatalf("read after open: %s %+v, want miss with 1 opened", o, got)
		}
		insertEmails(t, s, f.campaign.ID, 2)
		if err := read(ctx); err != nil || got.Total != 5 {
			t.Fatalf("read after insert: %+v %v, want 5 emails", got, err)
		}
		if _, err := s.DeleteCampaign(ctx, db.DeleteCampaignParams{ID: f.campaign.ID, UserID: f.user.ID}); err != nil {
			t.Fatal(err)
		}
		if err := read(ctx); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("read after delete: %+v %v, want not found", got, err)
		}
	})
}

func TestWriteThatChangedNothingKeepsEntries(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 1)
	s := newCached(t, pool, "", "t")
	ctx := context.Background()
	open := db.MarkEmailOpenedParams{ID: f.emails[0].ID, UserID: f.user.ID}
	if _, err := s.MarkEmailOpened(ctx, open); err != nil {
		t.Fatal(err)
	}
	read := func(ctx context.Context) error { _, err := s.GetCampaignSummary(ctx, f.summaryArg()); return err }
	outcome(t, read)
	// A repeated open matches no row: nothing changed, nothing to invalidate.
	if _, err := s.MarkEmailOpened(ctx, open); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("second open: %v, want not found", err)
	}
	if o := outcome(t, read); o != "hit" {
		t.Fatalf("read after a no-op write: %s, want hit", o)
	}
}

// TestNoStaleReads checks the central guarantee under concurrency: a read
// that began after a write was acknowledged reflects that write.
func TestNoStaleReads(t *testing.T) {
	tiers(t, func(t *testing.T, redisURL string) {
		pool := newPool(t, nil)
		f := seed(t, pool, 0)
		s := newCached(t, pool, redisURL, "t")
		ctx := context.Background()
		const writers, readers, perWriter = 4, 8, 25
		// Fixed bounds, so the daily counts are one cache key.
		dailyArg := db.GetCampaignDailyCountsParams{CampaignID: f.campaign.ID, Since: time.Now().Add(-48 * time.Hour), Until: time.Now().Add(48 * time.Hour)}
		var inserted, opened atomic.Int64 // acknowledged writes
		var stale, reads atomic.Int64
		var wg sync.WaitGroup
		done := make(chan struct{})
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				seen := reads.Load()
				for i := 0; i < perWriter; i++ {
					// Let a read finish between two writes of a writer, so
					// the readers run during the writes even on a loaded
					// machine (else the writes could all land before the
					// readers' first hit, and the test prove nothing).
					for deadline := time.Now().Add(time.Second); reads.Load() == seen && time.Now().Before(deadline); {
						time.Sleep(100 * time.Microsecond)
					}
					seen = reads.Load()
					rows := insertEmails(t, s, f.campaign.ID, 1)
					inserted.Add(1)
					if i%2 == 0 {
						if _, err := s.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: rows[0].ID, UserID: f.user.ID}); err != nil {
							t.Error(err)
							return
						}
						opened.Add(1)
					}
				}
			}()
		}
		var rg sync.WaitGroup
		for r := 0; r < readers; r++ {
			rg.Add(1)
			go func() {
				defer rg.Done()
				for {
					select {
					case <-done:
						return
					default:
					}
					wantTotal, wantOpened := inserted.Load(), opened.Load()
					sum, err := s.GetCampaignSummary(ctx, f.summaryArg())
					if err != nil {
						t.Error(err)
						return
					}
					days, err := s.GetCampaignDailyCounts(ctx, dailyArg)
					if err != nil {
						t.Error(err)
						return
					}
					var daily int64
					for _, d := range days {
						daily += d.Count
					}
					reads.Add(1)
					if sum.Total < wantTotal || sum.Opened < wantOpened || daily < wantTotal {
						stale.Add(1)
						t.Errorf("stale read: summary %+v, daily %d; acknowledged %d inserted, %d opened", sum, daily, wantTotal, wantOpened)
					}
				}
			}()
		}
		wg.Wait()
		close(done)
		rg.Wait()
		snap := s.Cache().Snapshot()
		t.Logf("%d reads, %d stale; hits %d, misses %d", reads.Load(), stale.Load(), snap.Hits, snap.Misses)
		if snap.Hits == 0 {
			t.Error("no read was served from the cache: the test proved nothing")
		}
		final, err := s.GetCampaignSummary(ctx, f.summaryArg())
		if err != nil || final.Total != writers*perWriter || final.Opened != writers*((perWriter+1)/2) {
			t.Fatalf("final summary %+v %v", final, err)
		}
	})
}

func TestTransactionReadsOwnWritesAndInvalidatesAfterCommit(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 2)
	s := newCached(t, pool, "", "t")
	ctx := context.Background()
	summary := func() db.GetCampaignSummaryRow {
		t.Helper()
		r, err := s.GetCampaignSummary(ctx, f.summaryArg())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	summary() // cached: 2
	invalidations := func() int64 { return invalidationsOf(s, "emails") }
	before := invalidations()

	err := s.InTx(ctx, db.TxOptions{}, func(q db.Querier) error {
		insertEmails(t, q, f.campaign.ID, 3)
		inTx := outcome(t, func(ctx context.Context) error {
			r, err := q.GetCampaignSummary(ctx, f.summaryArg())
			if err == nil && r.Total != 5 {
				t.Errorf("inside the transaction: %d emails, want its own 5", r.Total)
			}
			return err
		})
		if inTx != "bypass" {
			t.Errorf("read inside the transaction: %s, want bypass", inTx)
		}
		if got := summary(); got.Total != 2 {
			t.Errorf("outside before commit: %d emails, want 2", got.Total)
		}
		if invalidations() != before {
			t.Error("invalidated before commit")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(); got.Total != 5 {
		t.Fatalf("after commit: %d emails, want 5", got.Total)
	}
	if invalidations() == before {
		t.Fatal("the committed insert invalidated nothing")
	}
	before = invalidations()

	rollback := errors.New("roll back")
	err = s.InTx(ctx, db.TxOptions{}, func(q db.Querier) error {
		insertEmails(t, q, f.campaign.ID, 1)
		return rollback
	})
	if !errors.Is(err, rollback) {
		t.Fatalf("InTx: %v", err)
	}
	if invalidations() != before {
		t.Fatal("a rolled back transaction invalidated")
	}
	if got := summary(); got.Total != 5 {
		t.Fatalf("after rollback: %d emails, want 5", got.Total)
	}
}

func TestConcurrentMissesRunOneQuery(t *testing.T) {
	tracer := &queryCounter{name: "GetCampaignSummary", delay: 150 * time.Millisecond}
	pool := newPool(t, tracer)
	f := seed(t, pool, 4)
	s := newCached(t, pool, "", "t")

	// The first caller gives up while the load is still running; it must
	// not take the shared load down with it.
	first, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	firstErr := make(chan error, 1)
	go func() {
		_, err := s.GetCampaignSummary(first, f.summaryArg())
		firstErr <- err
	}()
	time.Sleep(10 * time.Millisecond)
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.GetCampaignSummary(context.Background(), f.summaryArg())
			if err == nil && r.Total != 4 {
				err = errors.New("wrong total")
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent reader: %v", err)
		}
	}
	if err := <-firstErr; !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, db.ErrTimeout) {
		t.Fatalf("first caller: %v, want its own timeout", err)
	}
	if got := tracer.n.Load(); got != 1 {
		t.Fatalf("%d database queries for %d concurrent misses, want 1", got, n+1)
	}
}

func TestResultsAreCopies(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 3)
	s := newCached(t, pool, "", "t")
	ctx := context.Background()
	arg := db.GetCampaignDailyCountsParams{CampaignID: f.campaign.ID, Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)}
	a, err := s.GetCampaignDailyCounts(ctx, arg)
	if err != nil || len(a) != 1 {
		t.Fatalf("%v %v", a, err)
	}
	a[0].Count = 999
	b, err := s.GetCampaignDailyCounts(ctx, arg)
	if err != nil || b[0].Count != 3 {
		t.Fatalf("a caller's change leaked into the cache: %v %v", b, err)
	}
}

func TestInvalidateTable(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 1)
	s := newCached(t, pool, "", "t")
	ctx := context.Background()
	read := func(ctx context.Context) error { _, err := s.GetCampaignSummary(ctx, f.summaryArg()); return err }
	outcome(t, read)
	if err := s.InvalidateTable(ctx, "users"); err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, read); o != "hit" {
		t.Fatalf("after invalidating a table it does not read: %s, want hit", o)
	}
	if err := s.InvalidateTable(ctx, "emails"); err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, read); o != "miss" {
		t.Fatalf("after invalidating emails: %s, want miss", o)
	}
	if err := s.InvalidateTable(ctx, "nope"); err == nil {
		t.Fatal("unknown table accepted")
	}
}

func TestCrossInstanceInvalidation(t *testing.T) {
	srv := redistest.Start(t)
	pool := newPool(t, nil)
	f := seed(t, pool, 2)
	a := newCached(t, pool, srv.URL(), "x")
	b := newCached(t, pool, srv.URL(), "x")
	ctx := context.Background()
	if _, err := a.GetCampaignSummary(ctx, f.summaryArg()); err != nil {
		t.Fatal(err)
	}
	// B finds A's entry in Redis, then holds it in its own L1.
	for i, want := range []string{"hit", "hit"} {
		o := outcome(t, func(ctx context.Context) error { _, err := b.GetCampaignSummary(ctx, f.summaryArg()); return err })
		if o != want {
			t.Fatalf("read %d on B: %s, want %s", i, o, want)
		}
	}
	if snap := b.Cache().Snapshot(); snap.Query("GetCampaignSummary").HitsL2 != 1 || snap.Query("GetCampaignSummary").HitsL1 != 1 {
		t.Fatalf("B's hits: %+v", snap.Query("GetCampaignSummary"))
	}
	if _, err := a.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: f.emails[0].ID, UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	for {
		r, err := b.GetCampaignSummary(ctx, f.summaryArg())
		if err != nil {
			t.Fatal(err)
		}
		if r.Opened == 1 {
			break
		}
		if time.Since(acked) > 100*time.Millisecond {
			t.Fatalf("B still serves the old summary %v after A's write", time.Since(acked))
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("B saw A's write %v after it was acknowledged", time.Since(acked))
}

func TestRedisDownFailsOpenAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	pool := newPool(t, nil)
	f := seed(t, pool, 2)
	s := newCachedConfig(t, pool, cache.Config{Namespace: "t", RedisURL: srv.URL()})
	ctx := context.Background()
	read := func() (db.GetCampaignSummaryRow, string) {
		t.Helper()
		var r db.GetCampaignSummaryRow
		start := time.Now()
		o := outcome(t, func(ctx context.Context) (err error) { r, err = s.GetCampaignSummary(ctx, f.summaryArg()); return err })
		if d := time.Since(start); d > time.Second {
			t.Fatalf("a read took %v with Redis down", d)
		}
		return r, o
	}
	read()
	if _, o := read(); o != "hit" {
		t.Fatalf("before the outage: %s, want hit", o)
	}
	srv.Stop()
	// Writes and reads go on; the write is visible at once.
	if _, err := s.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: f.emails[0].ID, UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		r, o := read()
		if r.Opened != 1 {
			t.Fatalf("read %d during the outage: %+v (%s), want the write", i, r, o)
		}
	}
	if s.Cache().Ready() {
		t.Fatal("cache still in service with Redis down")
	}
	if s.Cache().Snapshot().Redis.Errors == 0 {
		t.Fatal("no Redis error counted")
	}
	srv.Restart()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Cache().WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	read()
	r, o := read()
	if o != "hit" || r.Opened != 1 {
		t.Fatalf("after recovery: %+v %s, want a hit with the write", r, o)
	}
}

func TestUndecodableValueIsAMiss(t *testing.T) {
	srv := redistest.Start(t)
	pool := newPool(t, nil)
	f := seed(t, pool, 2)
	a := newCached(t, pool, srv.URL(), "t")
	ctx := context.Background()
	if _, err := a.GetCampaignSummary(ctx, f.summaryArg()); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	key := string(keyGetCampaignSummary([]byte(a.q.GetCampaignSummary.Prefix()), f.summaryArg()))
	raw, err := rdb.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatalf("entry not in Redis: %v", err)
	}
	// Valid envelope and stamps, payload cut short.
	if err := rdb.Set(ctx, key, raw[:len(raw)-3], time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	b := newCached(t, pool, srv.URL(), "t")
	var r db.GetCampaignSummaryRow
	o := outcome(t, func(ctx context.Context) (err error) { r, err = b.GetCampaignSummary(ctx, f.summaryArg()); return err })
	if o != "miss" || r.Total != 2 {
		t.Fatalf("read of a corrupt entry: %s %+v, want a miss with 2 emails", o, r)
	}
	if n := b.Cache().Snapshot().Query("GetCampaignSummary").DecodeErrors; n != 1 {
		t.Fatalf("decode errors: %d, want 1", n)
	}
}

func TestClearRemovesOnlyOwnKeys(t *testing.T) {
	srv := redistest.Start(t)
	pool := newPool(t, nil)
	f := seed(t, pool, 1)
	s := newCached(t, pool, srv.URL(), "mine")
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	if err := rdb.Set(ctx, "other:key", "keep", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCampaignSummary(ctx, f.summaryArg()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCampaign(ctx, db.GetCampaignParams{ID: f.campaign.ID, UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	snap := s.Cache().Snapshot()
	if snap.Redis.Entries != 2 || snap.Redis.Bytes <= 0 || snap.Query("GetCampaign").L2Entries != 1 || snap.Query("GetCampaignSummary").L2Entries != 1 {
		t.Fatalf("Redis figures before Clear: %+v, queries %+v", snap.Redis, snap.Queries)
	}
	n, err := s.Cache().Clear(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Clear removed %d keys (%v), want 2", n, err)
	}
	if v, err := rdb.Get(ctx, "other:key").Result(); err != nil || v != "keep" {
		t.Fatalf("another application's key: %q %v", v, err)
	}
	if n, err := rdb.Exists(ctx, "{mine}:epoch").Result(); err != nil || n != 1 {
		t.Fatalf("the version epoch was removed: %d %v", n, err)
	}
	if o := outcome(t, func(ctx context.Context) error { _, err := s.GetCampaignSummary(ctx, f.summaryArg()); return err }); o != "miss" {
		t.Fatalf("read after Clear: %s, want miss", o)
	}
}

// TestSlowRedisFailsOpen pauses Redis (CLIENT PAUSE): its commands hang
// instead of failing. A write must still return quickly and be visible,
// and the cache must resume by itself once Redis answers again.
func TestSlowRedisFailsOpen(t *testing.T) {
	srv := redistest.Start(t)
	pool := newPool(t, nil)
	f := seed(t, pool, 2)
	s := newCachedConfig(t, pool, cache.Config{Namespace: "t", RedisURL: srv.URL(), RedisTimeout: 50 * time.Millisecond})
	ctx := context.Background()
	if _, err := s.GetCampaignSummary(ctx, f.summaryArg()); err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer admin.Close()
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "1500", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := s.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: f.emails[0].ID, UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a write took %v with Redis paused", d)
	}
	r, err := s.GetCampaignSummary(ctx, f.summaryArg())
	if err != nil || r.Opened != 1 {
		t.Fatalf("read after the write, Redis paused: %+v %v", r, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	time.Sleep(1500 * time.Millisecond)
	if err := s.Cache().WaitReady(wctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCampaignSummary(ctx, f.summaryArg()); err != nil {
		t.Fatal(err)
	}
	o := outcome(t, func(ctx context.Context) (err error) { r, err = s.GetCampaignSummary(ctx, f.summaryArg()); return err })
	if o != "hit" || r.Opened != 1 {
		t.Fatalf("after Redis resumed: %s %+v, want a hit with the write", o, r)
	}
}

// TestUpdatesInvalidateOnlyReadsOfTheirColumns: an UPDATE cannot add or
// remove rows, so it invalidates only the cached reads that reference a
// column it sets.
func TestUpdatesInvalidateOnlyReadsOfTheirColumns(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 3)
	s := newCached(t, pool, "", "t")
	ctx := context.Background()
	days := db.GetCampaignDailyCountsParams{CampaignID: f.campaign.ID, Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Hour)}
	daily := func(ctx context.Context) error {
		d, err := s.GetCampaignDailyCounts(ctx, days)
		if err == nil && (len(d) != 1 || d[0].Count != 3) {
			t.Errorf("daily counts %+v", d)
		}
		return err
	}
	var sum db.GetCampaignSummaryRow
	summary := func(ctx context.Context) (err error) {
		sum, err = s.GetCampaignSummary(ctx, f.summaryArg())
		return err
	}
	var camp db.Campaign
	campaign := func(ctx context.Context) (err error) {
		camp, err = s.GetCampaign(ctx, db.GetCampaignParams{ID: f.campaign.ID, UserID: f.user.ID})
		return err
	}
	for _, read := range []func(context.Context) error{daily, summary, campaign} {
		outcome(t, read)
	}
	if _, err := s.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: f.emails[0].ID, UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	// The daily counts count opens by opened_at, so an open invalidates
	// them; the campaign itself stays cached (checked after the rename).
	if o := outcome(t, daily); o != "miss" {
		t.Errorf("daily counts after an open: %s, want miss (they count opens by opened_at)", o)
	}
	if o := outcome(t, summary); o != "miss" || sum.Opened != 1 {
		t.Errorf("summary after an open: %s %+v, want a miss with the open", o, sum)
	}
	name := "Renamed"
	if _, err := s.UpdateCampaign(ctx, db.UpdateCampaignParams{Name: &name, ID: f.campaign.ID, UserID: f.user.ID}); err != nil {
		t.Fatal(err)
	}
	if o := outcome(t, summary); o != "hit" {
		t.Errorf("summary after a rename: %s, want hit", o)
	}
	if o := outcome(t, campaign); o != "miss" || camp.Name != name {
		t.Errorf("campaign after a rename: %s %+v, want a miss with the name", o, camp)
	}
	insertEmails(t, s, f.campaign.ID, 1)
	for _, read := range []func(context.Context) error{summary, campaign} {
		outcome(t, read)
	}
	if o := outcome(t, func(ctx context.Context) error {
		d, err := s.GetCampaignDailyCounts(ctx, days)
		if err == nil && d[0].Count != 4 {
			t.Errorf("daily counts after an insert: %+v", d)
		}
		return err
	}); o != "miss" {
		t.Errorf("daily counts after an insert: %s, want miss", o)
	}
}

// TestRetriedTransactionInvalidatesWhatItsLastAttemptWrote: a retry runs fn
// again from the start; what a rolled back attempt wrote never happened.
func TestRetriedTransactionInvalidatesWhatItsLastAttemptWrote(t *testing.T) {
	pool := newPool(t, nil)
	f := seed(t, pool, 1)
	s := newCached(t, pool, "", "t")
	ctx := context.Background()
	inv := func() [2]int64 { return [2]int64{invalidationsOf(s, "campaigns"), invalidationsOf(s, "emails")} }
	before := inv()
	attempts := 0
	err := s.InTx(ctx, db.TxOptions{MaxAttempts: 3}, func(q db.Querier) error {
		attempts++
		if attempts == 1 {
			name := "lost"
			if _, err := q.UpdateCampaign(ctx, db.UpdateCampaignParams{Name: &name, ID: f.campaign.ID, UserID: f.user.ID}); err != nil {
				return err
			}
			return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
		}
		insertEmails(t, q, f.campaign.ID, 1)
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("InTx: %v after %d attempts", err, attempts)
	}
	after := inv()
	if after[0] != before[0] {
		t.Error("the rolled back first attempt's update was invalidated")
	}
	if after[1] == before[1] {
		t.Error("the last attempt's insert was not invalidated")
	}
}

// TestWritersReadTheirWritesAcrossInstances: a user's open on instance A
// followed at once by that user's summary read on instance B (a new
// request) reflects the open, every time, although B learns of the
// invalidation through pub/sub a few milliseconds later: the user's
// marker names the invalidation, and B waits for it (or reads the
// database). Each round first caches the summary on B.
func TestWritersReadTheirWritesAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	pool := newPool(t, nil)
	const rounds = 60
	f := seed(t, pool, rounds)
	a := newCached(t, pool, srv.URL(), "ryw")
	b := newCached(t, pool, srv.URL(), "ryw")
	request := func() context.Context { return db.WithActor(context.Background(), f.user.ID) }
	for i := 0; i < rounds; i++ {
		if _, err := b.GetCampaignSummary(request(), f.summaryArg()); err != nil {
			t.Fatal(err)
		}
		if _, err := a.MarkEmailOpened(request(), db.MarkEmailOpenedParams{ID: f.emails[i].ID, UserID: f.user.ID}); err != nil {
			t.Fatal(err)
		}
		sum, err := b.GetCampaignSummary(request(), f.summaryArg())
		if err != nil {
			t.Fatal(err)
		}
		if sum.Opened != int64(i+1) {
			t.Fatalf("round %d: B served %d opened right after the user's open on A, want %d", i, sum.Opened, i+1)
		}
	}
}
