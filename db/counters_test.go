package db

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// counterDrift compares every campaign's counter row with a full count of
// its emails and returns one line per difference: a missing row, a wrong
// figure, or a counter row whose campaign is gone.
func counterDrift(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		WITH full_count AS (
			SELECT c.id,
			       count(e.id)                             AS total,
			       count(e.id) FILTER (WHERE e.is_opened)  AS opened,
			       count(e.id) FILTER (WHERE e.is_replied) AS replied,
			       count(e.id) FILTER (WHERE e.sent_at IS NOT NULL) AS sent,
			       count(e.id) FILTER (WHERE e.status = 'bounced') AS bounced,
			       count(e.id) FILTER (WHERE e.status = 'failed') AS failed
			FROM campaigns c LEFT JOIN emails e ON e.campaign_id = c.id
			GROUP BY c.id)
		SELECT coalesce(f.id, n.campaign_id)::text, f.total, f.opened, f.replied, n.total, n.opened, n.replied,
		       f.sent::text || '/' || f.bounced || '/' || f.failed, n.sent::text || '/' || n.bounced || '/' || n.failed
		FROM full_count f FULL JOIN campaign_email_counts n ON n.campaign_id = f.id
		WHERE f.id IS NULL OR n.campaign_id IS NULL
		   OR (f.total, f.opened, f.replied, f.sent, f.bounced, f.failed)
		      IS DISTINCT FROM (n.total, n.opened, n.replied, n.sent, n.bounced, n.failed)`)
	if err != nil {
		t.Fatalf("compare counters: %v", err)
	}
	var out []string
	for rows.Next() {
		var id string
		var ft, fo, fr, nt, no, nr *int64
		var fd, nd *string // sent/bounced/failed
		if err := rows.Scan(&id, &ft, &fo, &fr, &nt, &no, &nr, &fd, &nd); err != nil {
			t.Fatalf("scan: %v", err)
		}
		out = append(out, fmt.Sprintf("campaign %s: full count %v/%v/%v (sent/bounced/failed %v), counters %v/%v/%v (%v)",
			id, deref(ft), deref(fo), deref(fr), derefString(fd), deref(nt), deref(no), deref(nr), derefString(nd)))
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("compare counters: %v", err)
	}
	return out
}

func deref(p *int64) any {
	if p == nil {
		return "none"
	}
	return *p
}

func derefString(p *string) string {
	if p == nil {
		return "none"
	}
	return *p
}

// emailPool is the emails the writers know about, shared between them.
type emailPool struct {
	mu   sync.Mutex
	rows []InsertEmailsParams
}

func (p *emailPool) add(rs []InsertEmailsParams) {
	p.mu.Lock()
	p.rows = append(p.rows, rs...)
	p.mu.Unlock()
}

func (p *emailPool) pick(r *rand.Rand, n int) []InsertEmailsParams {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.rows) == 0 {
		return nil
	}
	out := make([]InsertEmailsParams, 0, n)
	for range n {
		out = append(out, p.rows[r.IntN(len(p.rows))])
	}
	return out
}

// TestCountersNeverDrift runs every kind of write that changes emails at
// once — COPY of one campaign and of several, opens, replies, batches of
// tracking events as internal/ingest applies them (sent, opened, replied,
// bounced, failed across campaigns, in one transaction), deletes of
// single emails and of emails across campaigns, campaign deletes (the
// cascade), campaign creation, user deletes, updates that change no
// counter, and transactions that roll back — then compares every counter
// row with a full count.
func TestCountersNeverDrift(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	users := []User{mustUser(t, s), mustUser(t, s), mustUser(t, s)}
	var mu sync.Mutex
	var campaigns []Campaign
	for i := range 8 {
		campaigns = append(campaigns, mustCampaign(t, s, users[i%2].ID))
	}
	pickCampaigns := func(r *rand.Rand, n int) []Campaign {
		mu.Lock()
		defer mu.Unlock()
		out := make([]Campaign, n)
		for i := range out {
			out[i] = campaigns[r.IntN(len(campaigns))]
		}
		return out
	}
	known := &emailPool{}
	// Some emails fall into last month, which has no partition: they land
	// in emails_default, and the counters must count them all the same.
	lastMonth := time.Now().AddDate(0, -1, 0)
	rowsFor := func(r *rand.Rand, cs []Campaign, n int) []InsertEmailsParams {
		var out []InsertEmailsParams
		for i := range n {
			at := time.Now()
			if r.IntN(4) == 0 {
				at = lastMonth
			}
			c := cs[i%len(cs)]
			out = append(out, EmailRows(c.ID, []NewEmail{{Recipient: "lead@example.com", Subject: "Hello", Body: "Hi"}}, at)...)
		}
		return out
	}
	// A write that fails because its campaign was deleted meanwhile is
	// expected: it changes nothing.
	gone := func(err error) bool { return errors.Is(err, ErrInvalidReference) || errors.Is(err, ErrNotFound) }

	const workers, rounds = 6, 60
	var deadlocks atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 11))
			for range rounds {
				var err error
				switch op := r.IntN(13); op {
				case 0, 1: // COPY into one campaign
					rows := rowsFor(r, pickCampaigns(r, 1), 1+r.IntN(300))
					if _, err = s.InsertEmails(ctx, rows); err == nil {
						known.add(rows)
					}
				case 2: // COPY across campaigns, in no particular order
					rows := rowsFor(r, pickCampaigns(r, 3), 30+r.IntN(100))
					if _, err = s.InsertEmails(ctx, rows); err == nil {
						known.add(rows)
					}
				case 3, 4: // opens
					for _, e := range known.pick(r, 20) {
						u := ownerOf(ctx, pool, e.CampaignID)
						if _, err = s.MarkEmailOpened(ctx, MarkEmailOpenedParams{ID: e.ID, UserID: u}); errors.Is(err, ErrNotFound) {
							err = nil // already opened, or deleted
						}
						if err != nil {
							break
						}
					}
				case 5: // replies
					for _, e := range known.pick(r, 20) {
						u := ownerOf(ctx, pool, e.CampaignID)
						if _, err = s.MarkEmailReplied(ctx, MarkEmailRepliedParams{ID: e.ID, UserID: u}); errors.Is(err, ErrNotFound) {
							err = nil
						}
						if err != nil {
							break
						}
					}
				case 6: // direct deletes across campaigns, in one statement
					var ids []uuid.UUID
					for _, e := range known.pick(r, 15) {
						ids = append(ids, e.ID)
					}
					_, err = pool.Exec(ctx, "DELETE FROM emails WHERE id = ANY($1)", ids)
				case 7: // a campaign delete (cascade) and a new campaign
					c := pickCampaigns(r, 1)[0]
					if _, err = s.DeleteCampaign(ctx, DeleteCampaignParams{ID: c.ID, UserID: c.UserID}); err == nil {
						var nc Campaign
						nc, err = s.CreateCampaign(ctx, CreateCampaignParams{UserID: c.UserID, Name: "Again", Status: "active"})
						mu.Lock()
						campaigns = append(campaigns, nc)
						mu.Unlock()
					}
				case 8: // opens and a COPY in one transaction that rolls back
					rows := rowsFor(r, pickCampaigns(r, 2), 50)
					var opens []MarkEmailOpenedParams
					for _, e := range known.pick(r, 5) {
						// Owners first: the transaction holds a connection
						// of a small pool and must not ask for a second.
						opens = append(opens, MarkEmailOpenedParams{ID: e.ID, UserID: ownerOf(ctx, pool, e.CampaignID)})
					}
					err = s.InTx(ctx, TxOptions{}, func(q Querier) error {
						if _, err := q.InsertEmails(ctx, rows); err != nil {
							return err
						}
						for _, o := range opens {
							if _, err := q.MarkEmailOpened(ctx, o); err != nil && !errors.Is(err, ErrNotFound) {
								return err
							}
						}
						return errRollback
					})
					if errors.Is(err, errRollback) {
						err = nil
					}
				case 9: // an update that changes no counter, and one that changes two
					var ids []uuid.UUID
					for _, e := range known.pick(r, 10) {
						ids = append(ids, e.ID)
					}
					if _, err = pool.Exec(ctx, "UPDATE emails SET subject = 'Re: ' || subject WHERE id = ANY($1)", ids); err == nil {
						_, err = pool.Exec(ctx, "UPDATE emails SET is_opened = NOT is_opened, is_replied = true WHERE id = ANY($1)", ids[:len(ids)/2])
					}
				case 11, 12: // a batch of events, as internal/ingest applies it
					err = applyEventBatch(ctx, s, r, known.pick(r, 40), func(c uuid.UUID) uuid.UUID { return ownerOf(ctx, pool, c) })
				case 10: // an email moved to another campaign
					e := known.pick(r, 1)
					c := pickCampaigns(r, 1)[0]
					if len(e) == 1 {
						_, err = pool.Exec(ctx, "UPDATE emails SET campaign_id = $2 WHERE id = $1", e[0].ID, c.ID)
					}
				}
				if sqlState(err) == "40P01" {
					// Statements here lock email rows in no particular
					// order, and a transaction holds the counter rows it
					// changed until it ends: PostgreSQL may pick a victim.
					// It rolls back whole, counters included, which the
					// comparison below checks like any other outcome.
					deadlocks.Add(1)
					continue
				}
				if err != nil && !gone(err) && !isFKViolation(err) {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	t.Logf("%d statements were deadlock victims", deadlocks.Load())
	for err := range errs {
		t.Error(err)
	}
	// A user delete cascades through campaigns to emails and counters.
	if _, err := pool.Exec(ctx, "DELETE FROM users WHERE id = $1", users[0].ID); err != nil {
		t.Fatalf("delete user: %v", err)
	}
	var n int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM emails").Scan(&n); err != nil || n == 0 {
		t.Fatalf("the workload left %d emails (%v): it tested nothing", n, err)
	}
	if drift := counterDrift(t, pool); len(drift) > 0 {
		for _, d := range drift {
			t.Error(d)
		}
	}
}

var errRollback = errors.New("roll back on purpose")

// applyEventBatch runs random events on emails the way a batch of
// internal/ingest does (which db's tests cannot import): one
// ApplyEmailEvents statement, retried on a deadlock.
func applyEventBatch(ctx context.Context, s Store, r *rand.Rand, emails []InsertEmailsParams, owner func(uuid.UUID) uuid.UUID) error {
	kinds := AllEmailEventKindValues()
	var arg ApplyEmailEventsParams
	for _, e := range emails {
		arg.UserIds = append(arg.UserIds, owner(e.CampaignID))
		arg.EventIds = append(arg.EventIds, uuid.New())
		arg.EmailIds = append(arg.EmailIds, e.ID)
		arg.Kinds = append(arg.Kinds, string(kinds[r.IntN(len(kinds))]))
		arg.Ats = append(arg.Ats, time.Now().Add(-time.Duration(r.IntN(3600))*time.Second))
		arg.Reasons = append(arg.Reasons, "")
	}
	return Retry(ctx, 0, func() error {
		_, err := s.ApplyEmailEvents(ctx, arg)
		return err
	})
}

// isFKViolation: a statement run on the pool directly (not through the
// Store, which classifies it) naming a campaign deleted meanwhile.
func isFKViolation(err error) bool { return sqlState(err) == "23503" }

func sqlState(err error) string {
	type stater interface{ SQLState() string }
	var s stater
	if errors.As(err, &s) {
		return s.SQLState()
	}
	return ""
}

func ownerOf(ctx context.Context, pool *pgxpool.Pool, campaign uuid.UUID) uuid.UUID {
	var u uuid.UUID
	if err := pool.QueryRow(ctx, "SELECT user_id FROM campaigns WHERE id = $1", campaign).Scan(&u); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return uuid.Nil
	}
	return u
}

// TestCountersOfNewAndDeletedCampaigns: a campaign has its zero counters
// from the statement that creates it, and they go with it.
func TestCountersOfNewAndDeletedCampaigns(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	u := mustUser(t, s)
	c := mustCampaign(t, s, u.ID)
	sum, err := s.GetCampaignSummary(ctx, GetCampaignSummaryParams{CampaignID: c.ID, UserID: u.ID})
	if err != nil || sum != (GetCampaignSummaryRow{}) {
		t.Fatalf("new campaign's summary %+v, %v; want zeros", sum, err)
	}
	other := mustUser(t, s)
	if _, err := s.GetCampaignSummary(ctx, GetCampaignSummaryParams{CampaignID: c.ID, UserID: other.ID}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another user's campaign: %v, want not found", err)
	}
	if _, err := s.InsertEmails(ctx, EmailRows(c.ID, someEmails(5), time.Now())); err != nil {
		t.Fatal(err)
	}
	st, err := s.GetUserStatistics(ctx, u.ID)
	if err != nil || st != (GetUserStatisticsRow{Campaigns: 1, Emails: 5}) {
		t.Fatalf("statistics %+v, %v", st, err)
	}
	if st, err := s.GetUserStatistics(ctx, other.ID); err != nil || st != (GetUserStatisticsRow{}) {
		t.Fatalf("statistics of a user without campaigns %+v, %v", st, err)
	}
	if _, err := s.DeleteCampaign(ctx, DeleteCampaignParams{ID: c.ID, UserID: u.ID}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM campaign_email_counts WHERE campaign_id = $1", c.ID).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d counter rows left after the delete (%v)", n, err)
	}
	if _, err := pool.Exec(ctx, "TRUNCATE emails"); err == nil {
		t.Fatal("TRUNCATE emails was allowed: the counters would keep its rows")
	}
}
