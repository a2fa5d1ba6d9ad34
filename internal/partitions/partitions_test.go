package partitions

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/dbfixture"
	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func setup(t *testing.T) (*db.PgStore, *pgxpool.Pool, db.Campaign) {
	t.Helper()
	pool := pgtest.NewPool(t)
	s := db.NewStore(pool, 5*time.Second)
	return s, pool, dbfixture.Campaign(t, s, db.CreateCampaignParams{})
}

func month(y int, m time.Month) time.Time { return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC) }

func insertAt(t *testing.T, s db.Store, campaign uuid.UUID, n int, at time.Time) {
	t.Helper()
	dbfixture.Emails(t, s, campaign, n, at)
}

func names(rep Report) []string {
	var out []string
	for _, p := range rep.Partitions {
		out = append(out, p.Name)
	}
	return out
}

func TestEnsureIsIdempotentAndLists(t *testing.T) {
	s, pool, _ := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)
	created, err := Ensure(ctx, s, now, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"emails_p202611", "emails_p202612", "emails_p202701"}
	if !slices.Equal(created, want) {
		t.Fatalf("created %v, want %v", created, want)
	}
	again, err := Ensure(ctx, s, now, 2)
	if err != nil || len(again) != 0 {
		t.Fatalf("second ensure created %v, %v", again, err)
	}
	rep, err := List(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(rep); !slices.Equal(got, append([]string{"emails_default"}, want...)) {
		t.Fatalf("listed %v", got)
	}
	p := rep.Partitions[2]
	if !p.From.Equal(month(2026, 12)) || !p.To.Equal(month(2027, 1)) {
		t.Fatalf("bounds of %s: %v..%v", p.Name, p.From, p.To)
	}
}

func TestRowsOutsidePartitionsLandInDefaultAndMoveOut(t *testing.T) {
	s, pool, c := setup(t)
	ctx := context.Background()
	if _, err := Ensure(ctx, s, month(2026, 5), 0); err != nil {
		t.Fatal(err)
	}
	insertAt(t, s, c.ID, 3, time.Date(2026, 5, 10, 0, 0, 0, 0, time.UTC))
	insertAt(t, s, c.ID, 7, time.Date(2025, 1, 31, 23, 59, 59, 0, time.UTC)) // no partition for it

	rep, err := List(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DefaultRows != 7 || rep.DefaultOldest.Month() != time.January {
		t.Fatalf("default holds %d rows (oldest %v), want 7 from January 2025", rep.DefaultRows, rep.DefaultOldest)
	}

	created, err := EnsureRange(ctx, s, month(2025, 1), month(2025, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(created, []string{"emails_p202501", "emails_p202502"}) {
		t.Fatalf("created %v", created)
	}
	rep, err = List(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DefaultRows != 0 {
		t.Fatalf("%d rows still in default after ensure", rep.DefaultRows)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM emails_p202501").Scan(&n); err != nil || n != 7 {
		t.Fatalf("emails_p202501 holds %d rows, %v; want the 7 moved", n, err)
	}
	// The moved partition is a full member: its rows are reachable by id
	// through the parent, with the parent's constraints and indexes.
	var total int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM emails WHERE campaign_id = $1", c.ID).Scan(&total); err != nil || total != 10 {
		t.Fatalf("emails holds %d rows of the campaign, %v", total, err)
	}
	// The move deletes from emails_default and inserts into a table not yet
	// attached: neither fires the parent's counter triggers, and the count
	// of the campaign is unchanged, as it should be.
	wantCounts(t, s, c, 10)
	var idx int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE tablename = 'emails_p202501'").Scan(&idx); err != nil || idx != 2 {
		t.Fatalf("emails_p202501 has %d indexes, %v; want the primary key and the campaign index", idx, err)
	}
}

func TestConcurrentEnsureCreatesEachPartitionOnce(t *testing.T) {
	s, pool, _ := setup(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	results := make([][]string, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = EnsureRange(ctx, s, month(2030, 1), month(2030, 12))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all := append(slices.Clone(results[0]), results[1]...)
	slices.Sort(all)
	if len(all) != 12 || len(slices.Compact(slices.Clone(all))) != 12 {
		t.Fatalf("two concurrent ensures created %v and %v: want 12 partitions, each once", results[0], results[1])
	}
	rep, err := List(ctx, pool)
	if err != nil || len(rep.Partitions) != 13 {
		t.Fatalf("listed %d partitions, %v", len(rep.Partitions), err)
	}
}

func TestRetainDetachesAndDropsOnlyWhenAsked(t *testing.T) {
	s, pool, c := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	if _, err := EnsureRange(ctx, s, month(2026, 1), now); err != nil {
		t.Fatal(err)
	}
	insertAt(t, s, c.ID, 4, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	feb := dbfixture.Emails(t, s, c.ID, 2, time.Date(2026, 2, 5, 0, 0, 0, 0, time.UTC))
	insertAt(t, s, c.ID, 3, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if _, err := s.MarkEmailOpened(ctx, db.MarkEmailOpenedParams{ID: feb[0].ID, UserID: c.UserID}); err != nil {
		t.Fatal(err)
	}
	// Sends and a bounce in the months retired below: the delivery
	// counters must leave with their rows too.
	if _, err := s.Pool().Exec(ctx, `UPDATE emails SET status = 'sent', sent_at = created_at WHERE campaign_id = $1`, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `UPDATE emails SET status = 'bounced', bounced_at = created_at WHERE id = $1`, feb[1].ID); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, s, c, 4+2+3)

	if _, err := Retain(ctx, pool, nil, now, 0, false); err == nil {
		t.Fatal("older-than 0 accepted")
	}
	// Keep 4 months before June: January ends on February 1st, the cutoff.
	got, err := Retain(ctx, pool, nil, now, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "emails_p202601" || got[0].Rows != 4 || got[0].Dropped {
		t.Fatalf("retained %+v", got)
	}
	wantCounts(t, s, c, 2+3)
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM emails_p202601").Scan(&n); err != nil || n != 4 {
		t.Fatalf("detached table holds %d rows, %v: detach must keep them", n, err)
	}
	got, err = Retain(ctx, pool, nil, now, 3, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != "emails_p202602" || got[0].Rows != 2 || !got[0].Dropped {
		t.Fatalf("dropped %+v", got)
	}
	wantCounts(t, s, c, 3)
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('emails_p202602') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("emails_p202602 still exists (%v, %v)", exists, err)
	}
}

// wantCounts checks the campaign's counters against a full count of the
// emails still in the table, and its total against want.
func wantCounts(t *testing.T, s *db.PgStore, c db.Campaign, want int64) {
	t.Helper()
	ctx := context.Background()
	got, err := s.GetCampaignSummary(ctx, db.GetCampaignSummaryParams{CampaignID: c.ID, UserID: c.UserID})
	if err != nil {
		t.Fatal(err)
	}
	var full db.GetCampaignSummaryRow
	if err := s.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE is_opened), count(*) FILTER (WHERE is_replied),
		count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) FILTER (WHERE status = 'bounced'), count(*) FILTER (WHERE status = 'failed')
		FROM emails WHERE campaign_id = $1`, c.ID).Scan(&full.Total, &full.Opened, &full.Replied, &full.Sent, &full.Bounced, &full.Failed); err != nil {
		t.Fatal(err)
	}
	if got != full || got.Total != want {
		t.Fatalf("counters %+v, full count %+v, want a total of %d", got, full, want)
	}
}

// TestRetainFailureLeavesCountersAndPartition: a retire that fails after
// the detach rolls back both the detach and the subtraction.
func TestRetainFailureLeavesCountersAndPartition(t *testing.T) {
	s, pool, c := setup(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC)
	if _, err := EnsureRange(ctx, s, month(2026, 1), now); err != nil {
		t.Fatal(err)
	}
	insertAt(t, s, c.ID, 4, time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC))
	// A view on the partition makes its DROP fail, after the detach and the
	// subtraction ran.
	if _, err := pool.Exec(ctx, "CREATE VIEW keeps_january AS SELECT * FROM emails_p202601"); err != nil {
		t.Fatal(err)
	}
	if _, err := Retain(ctx, pool, nil, now, 4, true); err == nil {
		t.Fatal("drop of a partition a view depends on succeeded")
	}
	wantCounts(t, s, c, 4)
	rep, err := List(ctx, pool)
	if err != nil || !slices.Contains(names(rep), "emails_p202601") {
		t.Fatalf("partitions after the failed retire: %v, %v", names(rep), err)
	}
}

// Tracking events update emails in place: every partition, however it was
// created, leaves room on its pages (schema/00007), so that an update of a
// packed partition stays on its page (HOT) instead of adding index entries.
func TestPartitionsLeaveRoomForEventUpdates(t *testing.T) {
	s, pool, c := setup(t)
	ctx := context.Background()
	insertAt(t, s, c.ID, 2, time.Date(2031, 5, 3, 0, 0, 0, 0, time.UTC)) // lands in default, moved by ensure
	if _, err := EnsureRange(ctx, s, month(2031, 3), month(2031, 5)); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(ctx, `
		SELECT c.relname, coalesce(array_to_string(c.reloptions, ','), '')
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'emails'::regclass ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	options := map[string]string{}
	for rows.Next() {
		var name, opts string
		if err := rows.Scan(&name, &opts); err != nil {
			t.Fatal(err)
		}
		options[name] = opts
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"emails_default", "emails_p203103", "emails_p203104", "emails_p203105"} {
		if got := options[name]; got != "fillfactor=80" {
			t.Errorf("%s has options %q, want fillfactor=80 (all: %v)", name, got, options)
		}
	}

	// 400 rows fill several pages; one in ten is opened, a few a page.
	inserted := dbfixture.Emails(t, s, c.ID, 400, time.Date(2031, 3, 9, 0, 0, 0, 0, time.UTC))
	var opened []uuid.UUID
	for i := 0; i < len(inserted); i += 10 {
		opened = append(opened, inserted[i].ID)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "UPDATE emails SET is_opened = true, opened_at = now() WHERE id = ANY($1)", opened); err != nil {
		t.Fatal(err)
	}
	var hot int
	if err := tx.QueryRow(ctx, "SELECT pg_stat_get_xact_tuples_hot_updated('emails_p203103'::regclass)").Scan(&hot); err != nil {
		t.Fatal(err)
	}
	if hot != len(opened) {
		t.Fatalf("%d of %d opens were HOT updates; want all, each staying on its page", hot, len(opened))
	}
}
