package seed

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestRunSpreadsEmailsOverMonthlyPartitions(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	store := db.NewStore(pool, 5*time.Second)
	ctx := context.Background()
	var last atomic.Int64
	opts := Options{Users: 2, CampaignsPerUser: 3, EmailsPerCampaign: 700, Months: 12, Seed: 42,
		Progress: func(n int64) { last.Store(n) }}
	res, err := Run(ctx, store, pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Emails != opts.Total() || last.Load() != opts.Total() || res.Campaigns != 6 || len(res.Users) != 2 {
		t.Fatalf("result %+v, last progress %d; want %d emails", res, last.Load(), opts.Total())
	}
	var total, parts, inDefault, opened, replied, beforeRange int64
	err = pool.QueryRow(ctx, `
		SELECT count(*), count(DISTINCT tableoid), count(*) FILTER (WHERE tableoid = 'emails_default'::regclass),
		       count(*) FILTER (WHERE is_opened), count(*) FILTER (WHERE is_replied),
		       count(*) FILTER (WHERE created_at < date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '11 months')
		FROM emails`).Scan(&total, &parts, &inDefault, &opened, &replied, &beforeRange)
	if err != nil {
		t.Fatal(err)
	}
	// Emails spread evenly over the time from 11 months back to now, so
	// the current month holds its elapsed share: in its first day that may
	// be none, and its partition stays empty.
	wantParts := int64(12)
	if now := time.Now().UTC(); now.Sub(time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)) < 24*time.Hour {
		wantParts = 11
	}
	if total != opts.Total() || parts < wantParts || inDefault != 0 || beforeRange != 0 {
		t.Fatalf("%d emails in %d partitions (%d in DEFAULT, %d before the range)", total, parts, inDefault, beforeRange)
	}
	// Plausible proportions: about 40% of sent mail opened, a seventh of
	// those replied.
	if opened < total/4 || opened > total/2 || replied == 0 || replied > opened/3 {
		t.Fatalf("opened %d, replied %d of %d", opened, replied, total)
	}
	// The rows obey the schema's own invariants, and the API's reads see them.
	var badOrder int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM emails WHERE opened_at < sent_at OR replied_at < opened_at OR (is_opened AND opened_at IS NULL) OR opened_at > now()`).Scan(&badOrder); err != nil || badOrder != 0 {
		t.Fatalf("%d emails with impossible timestamps (%v)", badOrder, err)
	}
	st, err := store.GetUserStatistics(ctx, res.Users[0].User.ID)
	if err != nil || st.Emails != 3*700 || st.Campaigns != 3 {
		t.Fatalf("statistics %+v, %v", st, err)
	}
	h := apikey.Hash(res.Users[1].Key)
	if k, err := store.GetAPIKeyByHash(ctx, h[:]); err != nil || k.UserID != res.Users[1].User.ID {
		t.Fatalf("seeded key does not authenticate its user: %+v %v", k, err)
	}
}

func TestEnsureDemoKeepsAWorkingKey(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewPool(t)
	store := db.NewStore(pool, 5*time.Second)
	ctx := context.Background()
	keyFile := filepath.Join(t.TempDir(), "data", "demo-key")

	first, err := EnsureDemo(ctx, store, pool, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Seeded || first.CampaignID == "" || !apikey.Plausible(first.Key) {
		t.Fatalf("first run: %+v", first)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}

	second, err := EnsureDemo(ctx, store, pool, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if second.Seeded || second.Key != first.Key || second.CampaignID != first.CampaignID {
		t.Fatalf("second run %+v; first %+v", second, first)
	}

	// A lost key file: a new key, the same data.
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	third, err := EnsureDemo(ctx, store, pool, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if third.Seeded || third.Key == first.Key || !apikey.Plausible(third.Key) {
		t.Fatalf("third run %+v", third)
	}
	var users int64
	if users, err = store.CountUsers(ctx); err != nil || users != 1 {
		t.Fatalf("%d users after three runs (%v)", users, err)
	}
}

// BenchmarkSeedEmails reports the COPY rate of the seeder (emails/s).
func BenchmarkSeedEmails(b *testing.B) {
	pool := pgtest.NewPool(b)
	store := db.NewStore(pool, 5*time.Second)
	ctx := context.Background()
	opts := Options{Users: 1, CampaignsPerUser: 2, EmailsPerCampaign: 25_000, Months: 12}
	b.ResetTimer()
	for range b.N {
		if _, err := Run(ctx, store, pool, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(opts.Total()*int64(b.N))/b.Elapsed().Seconds(), "emails/s")
}

// BenchmarkGenerateEmail is the client-side cost of one COPY row, to tell
// apart the seeder's own cost from the database's.
func BenchmarkGenerateEmail(b *testing.B) {
	var done atomic.Int64
	now := time.Now()
	g := newGenerator(uuid.New(), b.N, now.AddDate(0, -12, 0), now, rand.New(rand.NewPCG(1, 2)), &done)
	b.ReportAllocs()
	for g.Next() {
		if _, err := g.Values(); err != nil {
			b.Fatal(err)
		}
	}
}
