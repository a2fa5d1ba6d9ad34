package db

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

// benchStore is a Store on a fresh migrated database with this month's
// partition, for benchmarks.
func benchStore(b *testing.B) (*PgStore, *pgxpool.Pool, User, Campaign) {
	b.Helper()
	pool := pgtest.NewPool(b)
	s := NewStore(pool, 5*time.Second)
	ctx := context.Background()
	if _, err := s.EnsureEmailPartitions(ctx, EnsureEmailPartitionsParams{FromMonth: time.Now(), Months: 1}); err != nil {
		b.Fatal(err)
	}
	u, err := s.CreateUser(ctx, CreateUserParams{Email: uuid.NewString() + "@example.com", Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.CreateCampaign(ctx, CreateCampaignParams{UserID: u.ID, Name: "Big", Status: "active"})
	if err != nil {
		b.Fatal(err)
	}
	return s, pool, u, c
}

// fullCountSummary is GetCampaignSummary as it was before the counters
// (a count of every email of the campaign): the reference the counters
// are measured against, on the same database in the same run.
const fullCountSummary = `
SELECT count(e.id), count(e.id) FILTER (WHERE e.is_opened), count(e.id) FILTER (WHERE e.is_replied)
FROM campaigns c
LEFT JOIN emails e ON e.campaign_id = c.id
WHERE c.id = $1 AND c.user_id = $2
GROUP BY c.id`

// BenchmarkSummaryOfABigCampaign reads the uncached summary of one
// campaign of REPLYROCKET_BENCH_CAMPAIGN_EMAILS emails (1000000 for the
// figure in docs/performance.md; the benchmark is skipped when unset, seeding takes a
// while): from the counters, and by the full count it replaced. It
// reports the p50 and p99 of single reads beside the mean.
func BenchmarkSummaryOfABigCampaign(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("REPLYROCKET_BENCH_CAMPAIGN_EMAILS"))
	if n <= 0 {
		b.Skip("set REPLYROCKET_BENCH_CAMPAIGN_EMAILS (e.g. 1000000) to seed a campaign that large")
	}
	s, pool, u, c := benchStore(b)
	ctx := context.Background()
	start := time.Now()
	// One statement, as a bulk load: UUIDv7 ids one millisecond apart
	// going back from now, a third opened, a tenth replied.
	if _, err := pool.Exec(ctx, `
		INSERT INTO emails (id, campaign_id, recipient, subject, body, status, is_opened, is_replied, created_at)
		SELECT id, $1, 'r' || i || '@example.com', 'Hello', 'Hi there', 'sent', i % 3 = 0, i % 10 = 0, uuid7_time(id)
		FROM (SELECT i, (lpad(to_hex((extract(epoch FROM now()) * 1000)::bigint - i), 12, '0')
		                 || '7' || substr(md5(i::text), 1, 3) || '8' || substr(md5(i::text), 4, 15))::uuid AS id
		      FROM generate_series(1, $2::int) i) g`, c.ID, n); err != nil {
		b.Fatalf("seed %d emails: %v", n, err)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE emails"); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d emails in %s", n, time.Since(start).Round(time.Millisecond))
	want := GetCampaignSummaryRow{Total: int64(n), Opened: int64(n / 3), Replied: int64(n / 10)}
	for _, bc := range []struct {
		name string
		read func() (GetCampaignSummaryRow, error)
	}{
		{"counters", func() (GetCampaignSummaryRow, error) {
			return s.GetCampaignSummary(ctx, GetCampaignSummaryParams{CampaignID: c.ID, UserID: u.ID})
		}},
		{"full-count", func() (GetCampaignSummaryRow, error) {
			var r GetCampaignSummaryRow
			err := pool.QueryRow(ctx, fullCountSummary, c.ID, u.ID).Scan(&r.Total, &r.Opened, &r.Replied)
			return r, err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if r, err := bc.read(); err != nil || r != want {
				b.Fatalf("summary %+v, %v; want %+v", r, err, want)
			}
			var times []time.Duration
			for b.Loop() {
				t0 := time.Now()
				if _, err := bc.read(); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
			}
			reportPercentiles(b, times)
		})
	}
}

func reportPercentiles(b *testing.B, times []time.Duration) {
	if len(times) == 0 {
		return
	}
	slices.Sort(times)
	at := func(q float64) float64 {
		return float64(times[min(len(times)-1, int(q*float64(len(times))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// counterTriggers are the triggers that keep campaign_email_counts.
var counterTriggers = []string{"emails_counts_insert", "emails_counts_update", "emails_counts_delete"}

// setCounterTriggers enables or disables them: the control of what they
// cost. (With them off the counters drift; the benchmark's database is
// thrown away.)
func setCounterTriggers(b *testing.B, pool *pgxpool.Pool, on bool) {
	b.Helper()
	verb := "DISABLE"
	if on {
		verb = "ENABLE"
	}
	for _, t := range counterTriggers {
		if _, err := pool.Exec(context.Background(), "ALTER TABLE emails "+verb+" TRIGGER "+t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCounterTriggers measures what the counters add to a write: one
// open (MarkEmailOpened) and a COPY of 10 000 emails (InsertEmails), each
// with the triggers and without them, in the same run on the same
// database.
func BenchmarkCounterTriggers(b *testing.B) {
	s, pool, u, c := benchStore(b)
	ctx := context.Background()
	// Emails to open, more than a one-second run opens.
	var unopened []InsertEmailsParams
	for range 6 {
		rows := EmailRows(c.ID, someEmails(10_000), time.Now())
		if _, err := s.InsertEmails(ctx, rows); err != nil {
			b.Fatal(err)
		}
		unopened = append(unopened, rows...)
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE emails"); err != nil {
		b.Fatal(err)
	}
	for _, triggers := range []bool{true, false} {
		name := "triggers"
		if !triggers {
			name = "no-triggers"
		}
		b.Run("open/"+name, func(b *testing.B) {
			setCounterTriggers(b, pool, triggers)
			defer setCounterTriggers(b, pool, true)
			var times []time.Duration
			for b.Loop() {
				if len(unopened) == 0 {
					b.Fatal("ran out of unopened emails: use a shorter -benchtime")
				}
				e := unopened[0]
				unopened = unopened[1:]
				t0 := time.Now()
				if _, err := s.MarkEmailOpened(ctx, MarkEmailOpenedParams{ID: e.ID, UserID: u.ID}); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
			}
			reportPercentiles(b, times)
		})
		b.Run("copy-10000/"+name, func(b *testing.B) {
			setCounterTriggers(b, pool, triggers)
			defer setCounterTriggers(b, pool, true)
			news := someEmails(10_000)
			var times []time.Duration
			for b.Loop() {
				rows := EmailRows(c.ID, news, time.Now())
				t0 := time.Now()
				if _, err := s.InsertEmails(ctx, rows); err != nil {
					b.Fatal(err)
				}
				times = append(times, time.Since(t0))
			}
			reportPercentiles(b, times)
		})
	}
}
