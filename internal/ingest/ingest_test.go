package ingest

import (
	"context"
	"errors"
	"math/rand/v2"
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

type fixture struct {
	store  *db.PgStore
	pool   *pgxpool.Pool
	user   db.User
	other  db.User
	emails []uuid.UUID // the user's, over two campaigns
	theirs uuid.UUID   // an email of the other user
}

func setup(t *testing.T, perCampaign int) fixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	s := db.NewStore(pool, 5*time.Second)
	f := fixture{store: s, pool: pool, user: dbfixture.User(t, s, db.CreateUserParams{}), other: dbfixture.User(t, s, db.CreateUserParams{})}
	for range 2 {
		c := dbfixture.Campaign(t, s, db.CreateCampaignParams{UserID: f.user.ID})
		for _, e := range dbfixture.Emails(t, s, c.ID, perCampaign, time.Now()) {
			f.emails = append(f.emails, e.ID)
		}
	}
	c := dbfixture.Campaign(t, s, db.CreateCampaignParams{UserID: f.other.ID})
	f.theirs = dbfixture.Emails(t, s, c.ID, 1, time.Now())[0].ID
	return f
}

// countersMatch fails the test when a campaign's counters differ from a
// full count of its emails.
func countersMatch(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	var bad int
	err := pool.QueryRow(context.Background(), `
		SELECT count(*) FROM campaign_email_counts n
		JOIN (SELECT c.id, count(e.id) AS total,
		             count(e.id) FILTER (WHERE e.is_opened) AS opened,
		             count(e.id) FILTER (WHERE e.is_replied) AS replied,
		             count(e.id) FILTER (WHERE e.sent_at IS NOT NULL) AS sent,
		             count(e.id) FILTER (WHERE e.status = 'bounced') AS bounced,
		             count(e.id) FILTER (WHERE e.status = 'failed') AS failed
		      FROM campaigns c LEFT JOIN emails e ON e.campaign_id = c.id GROUP BY c.id) f ON f.id = n.campaign_id
		WHERE (n.total, n.opened, n.replied, n.sent, n.bounced, n.failed)
		      IS DISTINCT FROM (f.total, f.opened, f.replied, f.sent, f.bounced, f.failed)`).Scan(&bad)
	if err != nil || bad != 0 {
		t.Fatalf("%d campaigns' counters differ from a full count (%v)", bad, err)
	}
}

func at(min int) time.Time { return time.Date(2026, 12, 1, 10, min, 0, 0, time.UTC) }

// TestOutcomes submits events one step at a time and checks each one's
// outcome and the email after it: duplicates, unknown and other users'
// emails, out-of-order arrival and the terminal statuses.
func TestOutcomes(t *testing.T) {
	f := setup(t, 4)
	b := New(f.store, Config{MaxWait: time.Millisecond})
	ctx := context.Background()
	e0, e1, e2 := f.emails[0], f.emails[1], f.emails[2]
	ids := map[string]uuid.UUID{}
	id := func(name string) uuid.UUID {
		if _, ok := ids[name]; !ok {
			ids[name] = uuid.New()
		}
		return ids[name]
	}
	ev := func(name string, email uuid.UUID, kind db.EmailEventKind, m int) Event {
		return Event{ID: id(name), UserID: f.user.ID, EmailID: email, Kind: kind, At: at(m), Reason: "mailbox full"}
	}
	type check struct {
		outcome Outcome
		status  db.DeliveryStatus // "" when no email comes back (not found)
	}
	steps := []struct {
		name   string
		events []Event
		want   []check
	}{
		{"an open before its send records the open", []Event{ev("o1", e0, db.EmailEventKindOpened, 5)},
			[]check{{Applied, db.DeliveryStatusQueued}}},
		{"the send then moves it to sent", []Event{ev("s1", e0, db.EmailEventKindSent, 1)},
			[]check{{Applied, db.DeliveryStatusSent}}},
		{"a retried event is a duplicate, with the email as it is", []Event{ev("o1", e0, db.EmailEventKindOpened, 5)},
			[]check{{Duplicate, db.DeliveryStatusSent}}},
		{"a later open keeps the first time", []Event{ev("o2", e0, db.EmailEventKindOpened, 9)},
			[]check{{Applied, db.DeliveryStatusSent}}},
		{"one id twice in a submission", []Event{ev("r1", e0, db.EmailEventKindReplied, 10), ev("r1", e0, db.EmailEventKindReplied, 10)},
			[]check{{Applied, db.DeliveryStatusSent}, {Duplicate, db.DeliveryStatusSent}}},
		{"unknown email and another user's", []Event{ev("x1", uuid.New(), db.EmailEventKindOpened, 1), ev("x2", f.theirs, db.EmailEventKindOpened, 1)},
			[]check{{NotFound, ""}, {NotFound, ""}}},
		{"a bounce after the send", []Event{ev("b1", e0, db.EmailEventKindBounced, 12)},
			[]check{{Applied, db.DeliveryStatusBounced}}},
		{"sent never overrides bounced; failed after bounced is refused", []Event{ev("s2", e0, db.EmailEventKindSent, 13), ev("f1", e0, db.EmailEventKindFailed, 14)},
			[]check{{Applied, db.DeliveryStatusBounced}, {Refused, db.DeliveryStatusBounced}}},
		{"a bounce before any send stamps sent_at", []Event{ev("b2", e1, db.EmailEventKindBounced, 3)},
			[]check{{Applied, db.DeliveryStatusBounced}}},
		{"a failure and an earlier send in one batch both apply", []Event{ev("f2", e2, db.EmailEventKindFailed, 2), ev("s3", e2, db.EmailEventKindSent, 1)},
			[]check{{Applied, db.DeliveryStatusFailed}, {Applied, db.DeliveryStatusFailed}}},
		{"a send after failed is refused", []Event{ev("s4", e2, db.EmailEventKindSent, 4)},
			[]check{{Refused, db.DeliveryStatusFailed}}},
	}
	for _, st := range steps {
		res, err := b.Submit(ctx, st.events)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for i, w := range st.want {
			got := res[i]
			var status db.DeliveryStatus
			if got.Email != nil {
				status = got.Email.Status
			}
			if got.Outcome != w.outcome || status != w.status {
				t.Errorf("%s: event %d: %s with status %q, want %s with %q", st.name, i, got.Outcome, status, w.outcome, w.status)
			}
		}
	}
	get := func(id uuid.UUID) db.Email {
		e, err := f.store.GetEmail(ctx, db.GetEmailParams{ID: id, UserID: f.user.ID})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	if e := get(e0); e.OpenedAt == nil || !e.OpenedAt.Equal(at(5)) || e.SentAt == nil || !e.SentAt.Equal(at(1)) ||
		e.BouncedAt == nil || !e.BouncedAt.Equal(at(12)) || e.BounceReason == nil || *e.BounceReason != "mailbox full" || !e.IsReplied {
		t.Errorf("email 0 after its events: %+v", e)
	}
	if e := get(e1); e.SentAt == nil || !e.SentAt.Equal(at(3)) {
		t.Errorf("a bounce without a send left sent_at %v", e.SentAt)
	}
	// In one batch, the failure and the send that came before it both
	// apply: the email was sent, then failed.
	if e := get(e2); e.SentAt == nil || !e.SentAt.Equal(at(1)) || e.Status != db.DeliveryStatusFailed {
		t.Errorf("email 2: status %s, sent_at %v", e.Status, e.SentAt)
	}
	countersMatch(t, f.pool)
	sum, err := f.store.GetCampaignSummary(ctx, db.GetCampaignSummaryParams{CampaignID: get(e0).CampaignID, UserID: f.user.ID})
	if err != nil || sum.Sent != 3 || sum.Bounced != 2 || sum.Failed != 1 || sum.Opened != 1 || sum.Replied != 1 {
		t.Errorf("summary %+v, %v", sum, err)
	}
}

func TestSubmitRefusesInvalidEvents(t *testing.T) {
	b := New(nil, Config{})
	good := Event{ID: uuid.New(), UserID: uuid.New(), EmailID: uuid.New(), Kind: db.EmailEventKindOpened, At: time.Now()}
	for name, mod := range map[string]func(*Event){
		"kind":   func(e *Event) { e.Kind = "clicked" },
		"id":     func(e *Event) { e.ID = uuid.Nil },
		"at":     func(e *Event) { e.At = time.Time{} },
		"reason": func(e *Event) { e.Reason = string(make([]byte, MaxReasonLen+1)) },
	} {
		e := good
		mod(&e)
		if _, err := b.Submit(context.Background(), []Event{good, e}); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: %v, want ErrInvalidEvent", name, err)
		}
	}
}

// TestOverlappingBatchesNeverDeadlock runs many batches at once over the
// same emails of two campaigns, each submission in its own random order,
// and checks that PostgreSQL reported no deadlock (InTx would retry one
// silently), that every event has its outcome, and that the counters
// match a full count.
func TestOverlappingBatchesNeverDeadlock(t *testing.T) {
	f := setup(t, 60)
	ctx := context.Background()
	deadlocks := func() int64 {
		var n int64
		if err := f.pool.QueryRow(ctx, "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := deadlocks()
	b := New(f.store, Config{MaxEvents: 64, MaxWait: time.Millisecond, InFlight: 4})
	kinds := db.AllEmailEventKindValues()
	const workers, rounds = 12, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for range rounds {
				events := make([]Event, 5+r.IntN(40))
				for i := range events {
					events[i] = Event{ID: uuid.New(), UserID: f.user.ID, EmailID: f.emails[r.IntN(len(f.emails))],
						Kind: kinds[r.IntN(len(kinds))], At: at(r.IntN(60))}
				}
				res, err := b.Submit(ctx, events)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, x := range res {
					if x.Outcome == Applied {
						applied++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if applied == 0 {
		t.Fatal("no event applied: the test tested nothing")
	}
	// A backend flushes its statistics (deadlocks included) at most once a
	// second while it runs, and always when it exits: end the batches'
	// connections, and read from a new one.
	f.pool.Reset()
	time.Sleep(200 * time.Millisecond)
	if d := deadlocks() - before; d != 0 {
		t.Errorf("%d deadlocks between overlapping batches", d)
	}
	countersMatch(t, f.pool)
}

// A submission larger than MaxEvents spans batches and gets its results
// in order.
func TestSubmitSpansBatches(t *testing.T) {
	f := setup(t, 10)
	b := New(f.store, Config{MaxEvents: 7, MaxWait: time.Millisecond})
	var events []Event
	for i, e := range f.emails {
		events = append(events, Event{ID: uuid.New(), UserID: f.user.ID, EmailID: e, Kind: db.EmailEventKindSent, At: at(i)})
	}
	events = append(events, Event{ID: uuid.New(), UserID: f.user.ID, EmailID: uuid.New(), Kind: db.EmailEventKindSent, At: at(0)})
	res, err := b.Submit(context.Background(), events)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res[:len(f.emails)] {
		if r.Outcome != Applied || r.Email == nil || r.Email.ID != f.emails[i] || !r.Email.SentAt.Equal(at(i)) {
			t.Fatalf("event %d: %+v", i, r)
		}
	}
	if r := res[len(res)-1]; r.Outcome != NotFound {
		t.Fatalf("the unknown email's event: %s", r.Outcome)
	}
	countersMatch(t, f.pool)
}
