package dbroute

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/pgtest"
	"github.com/replyrocket/replyrocket/internal/pgxtypes"
	"github.com/replyrocket/replyrocket/internal/redistest"
)

// Lag in seconds is the time since the primary first passed the replica's
// position, so an idle, caught-up replica is never behind however old its
// last replayed commit is.
func TestWALSamplesLag(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := walSamples{keep: time.Minute}
	for i, lsn := range []LSN{100, 100, 200, 300, 300} { // one sample a second
		w.add(t0.Add(time.Duration(i)*time.Second), lsn)
	}
	now := t0.Add(5 * time.Second)
	tests := []struct {
		replay   LSN
		bytes    int64
		secs     float64
		caughtUp bool
	}{
		{replay: 300, caughtUp: true},
		{replay: 400, caughtUp: true},      // past the last sample: replayed newer WAL
		{replay: 250, bytes: 50, secs: 2},  // primary passed 250 at t0+3s
		{replay: 150, bytes: 150, secs: 3}, // passed 150 at t0+2s
		{replay: 50, bytes: 250, secs: 5},  // behind every sample: at least since the oldest
	}
	for _, tc := range tests {
		b, s, ok := w.lag(tc.replay, now)
		if !ok {
			t.Fatal("no samples")
		}
		if tc.caughtUp && (b != 0 || s != 0) {
			t.Errorf("replay %d: lag %d bytes %.1fs, want none", tc.replay, b, s)
		}
		if !tc.caughtUp && (b != tc.bytes || s != tc.secs) {
			t.Errorf("replay %d: lag %d bytes %.1fs, want %d bytes %.1fs", tc.replay, b, s, tc.bytes, tc.secs)
		}
	}
	var empty walSamples
	if _, _, ok := empty.lag(1, now); ok {
		t.Error("lag without samples must be unknown")
	}
	// Old samples are dropped past keep, but the newest always stays.
	w2 := walSamples{keep: time.Second}
	w2.add(t0, 1)
	w2.add(t0.Add(10*time.Second), 2)
	if len(w2.s) != 1 || w2.s[0].lsn != 2 {
		t.Fatalf("samples after keep: %+v", w2.s)
	}
}

func TestMarkers(t *testing.T) {
	ctx := t.Context()
	u1, u2 := uuid.New(), uuid.New()
	t.Run("in process", func(t *testing.T) {
		m := NewMarkers(time.Minute, nil, "")
		check := func(u uuid.UUID, want LSN) {
			t.Helper()
			if got, err := m.Get(ctx, u); err != nil || got != want {
				t.Fatalf("Get = %v, %v; want %v", got, err, want)
			}
		}
		check(u1, 0)
		_ = m.Record(ctx, u1, 500)
		_ = m.Record(ctx, u1, 400) // an older write finishing late never lowers it
		check(u1, 500)
		check(u2, 0)
		short := NewMarkers(time.Millisecond, nil, "")
		_ = short.Record(ctx, u1, 9)
		time.Sleep(5 * time.Millisecond)
		if got, _ := short.Get(ctx, u1); got != 0 {
			t.Fatalf("expired marker still %v", got)
		}
	})
	t.Run("shared through redis", func(t *testing.T) {
		srv := redistest.Start(t)
		client := func() *redis.Client {
			o, err := redis.ParseURL(srv.URL())
			if err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(o)
			t.Cleanup(func() { _ = c.Close() })
			return c
		}
		a, b := NewMarkers(time.Minute, client(), "ns"), NewMarkers(time.Minute, client(), "ns")
		big := LSN(1<<62 + 3) // beyond a double's exact integers
		if err := a.Record(ctx, u1, big); err != nil {
			t.Fatal(err)
		}
		if err := b.Record(ctx, u1, big-1); err != nil {
			t.Fatal(err)
		}
		for _, m := range []*Markers{a, b} {
			if got, err := m.Get(ctx, u1); err != nil || got != big {
				t.Fatalf("Get = %v, %v; want %v", got, err, big)
			}
		}
		if ttl := client().PTTL(ctx, "ns:ryw:"+u1.String()).Val(); ttl <= 0 || ttl > time.Minute {
			t.Fatalf("marker ttl %v", ttl)
		}
		srv.Stop()
		if _, err := b.Get(ctx, u1); err == nil {
			t.Fatal("Get with Redis down must fail (the caller then reads the primary), not report no marker")
		}
	})
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = pgxtypes.AfterConnect
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// readOnlyNames are the read-only queries these tests route.
var readOnlyNames = []string{"ListCampaigns", "GetUser", "GetCampaign"}

// TestMinLSNAndTrackedWrites: the API the cache uses. A tracked write
// reports its position; a read demanding it avoids a replica that has not
// replayed it (and the write is indeed invisible there), then uses the
// replica once it has.
func TestMinLSNAndTrackedWrites(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{Replicas: 1, ApplyDelay: map[int]time.Duration{0: 2 * time.Second}})
	primary, replica := openPool(t, rep.PrimaryURL), openPool(t, rep.Replicas[0].URL)
	r := New(primary, []*pgxpool.Pool{replica}, Options{PoolTimeout: 5 * time.Second, ReadOnly: readOnlyNames, Log: quietLog()})
	r.Start(t.Context())
	t.Cleanup(r.Close)
	store := db.NewStore(primary, 5*time.Second, db.RouteWith(r), db.AfterCommit(r.AfterCommit))

	user, err := store.CreateUser(t.Context(), db.CreateUserParams{Email: "m@example.com", Name: "M"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.WaitReplayed(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { return r.Target(t.Context()) == "replica-1" })

	wctx, writes := TrackWrites(t.Context())
	c, err := store.CreateCampaign(wctx, db.CreateCampaignParams{UserID: user.ID, Name: "tracked", Status: "draft"})
	if err != nil {
		t.Fatal(err)
	}
	autocommit := writes.LSN()
	if autocommit == 0 {
		t.Fatal("a tracked autocommit write reported no position")
	}
	renamed := "renamed"
	err = store.InTx(wctx, db.TxOptions{}, func(q db.Querier) error {
		_, err := q.UpdateCampaign(wctx, db.UpdateCampaignParams{ID: c.ID, UserID: user.ID, Name: &renamed})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if writes.LSN() <= autocommit {
		t.Fatalf("a transaction's commit did not raise the position: %v then %v", autocommit, writes.LSN())
	}

	need := WithMinLSN(t.Context(), writes.LSN())
	if got := r.Target(need); got != "primary" {
		t.Fatalf("a read needing %v goes to %s before the replica replayed it", writes.LSN(), got)
	}
	list, err := store.ListCampaigns(need, firstPage(user.ID))
	if err != nil || len(list) != 1 || list[0].Name != "renamed" {
		t.Fatalf("list with the write's position: %+v, %v", list, err)
	}
	stale, err := store.ListCampaigns(t.Context(), firstPage(user.ID))
	if err != nil || len(stale) != 0 {
		t.Fatalf("without a floor the delayed replica answers (and has not the write yet): %+v, %v", stale, err)
	}
	waitUntil(t, func() bool { return r.Target(need) == "replica-1" })
}

// A replica that is unreachable at start, or is not a standby at all, is
// kept out of rotation and reported; reads go to the primary.
func TestUnusableReplicasStayOutOfRotation(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{})
	primary := openPool(t, rep.PrimaryURL)
	down := openPool(t, "postgres://postgres@127.0.0.1:1/replyrocket?connect_timeout=1")
	r := New(primary, []*pgxpool.Pool{down, primary}, Options{PoolTimeout: time.Second, ReadOnly: readOnlyNames, Log: quietLog()})
	r.Start(t.Context())
	t.Cleanup(r.Close)
	states := map[string]string{}
	for _, d := range r.Replicas() {
		states[d.Name] = d.State().Label()
	}
	if states["replica-1"] != "down" || states["replica-2"] != "not_standby" {
		t.Fatalf("states %v", states)
	}
	store := db.NewStore(primary, time.Second, db.RouteWith(r))
	if _, err := store.ListCampaigns(t.Context(), firstPage(uuid.New())); err != nil {
		t.Fatalf("reads with no replica in rotation: %v", err)
	}
	if got := r.Target(t.Context()); got != "primary" {
		t.Fatalf("target %s", got)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func firstPage(user uuid.UUID) db.ListCampaignsParams {
	return db.ListCampaignsParams{UserID: user, BeforeCreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), BeforeID: uuid.Max, PageSize: 10}
}

// With Redis down a user's last write position is unknown: that user's
// reads go to the primary (correct, not faster), other work keeps the
// replicas.
func TestMarkerOutageSendsTheUserToThePrimary(t *testing.T) {
	rep := pgtest.StartReplication(t, pgtest.ReplicationOptions{Replicas: 1})
	srv := redistest.Start(t)
	o, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() })
	primary, replica := openPool(t, rep.PrimaryURL), openPool(t, rep.Replicas[0].URL)
	r := New(primary, []*pgxpool.Pool{replica}, Options{PoolTimeout: time.Second, ReadOnly: readOnlyNames, Log: quietLog(),
		Markers: NewMarkers(time.Minute, rdb, "t")})
	r.Start(t.Context())
	t.Cleanup(r.Close)
	waitUntil(t, func() bool { return r.Target(t.Context()) == "replica-1" })
	user := uuid.New()
	if got := r.Target(db.WithActor(t.Context(), user)); got != "replica-1" {
		t.Fatalf("a user with no recent write reads from %s", got)
	}
	srv.Stop()
	if got := r.Target(db.WithActor(t.Context(), user)); got != "primary" {
		t.Fatalf("with the marker unreadable the user reads from %s", got)
	}
	if got := r.Target(t.Context()); got != "replica-1" {
		t.Fatalf("work without a user reads from %s", got)
	}
}
