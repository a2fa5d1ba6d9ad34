package db

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/replyrocket/replyrocket/internal/pgtest"
)

func TestCreateCampaignWithEmailsIsAtomic(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	u := mustUser(t, s)

	emails := someEmails(50)
	emails[37].Recipient = "x" // violates emails_recipient_check
	_, err := CreateCampaignWithEmails(ctx, s, CreateCampaignWithEmailsParams{
		Campaign: CreateCampaignParams{UserID: u.ID, Name: "Doomed", Status: "active"},
		Emails:   emails,
	})
	if !errors.Is(err, ErrInvalidValue) {
		t.Fatalf("want ErrInvalidValue, got %v", err)
	}
	left, err := s.ListCampaigns(ctx, firstCampaignPage(u.ID))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("a failed create left %d campaigns behind", len(left))
	}

	c, err := CreateCampaignWithEmails(ctx, s, CreateCampaignWithEmailsParams{
		Campaign: CreateCampaignParams{UserID: u.ID, Name: "Fine", Status: "active"},
		Emails:   someEmails(50),
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := s.GetCampaignSummary(ctx, GetCampaignSummaryParams{CampaignID: c.ID, UserID: u.ID})
	if err != nil || sum.Total != 50 {
		t.Fatalf("summary %+v, %v; want 50 emails", sum, err)
	}
}

func firstCampaignPage(userID uuid.UUID) ListCampaignsParams {
	return ListCampaignsParams{
		UserID:          userID,
		BeforeCreatedAt: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		BeforeID:        uuid.Max,
		PageSize:        100,
	}
}

func TestInTxRollsBackOnPanic(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	u := mustUser(t, s)
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the panic did not reach the caller")
			}
		}()
		_ = s.InTx(ctx, TxOptions{}, func(q Querier) error {
			mustCampaign(t, q, u.ID)
			panic("boom")
		})
	}()
	left, err := s.ListCampaigns(ctx, firstCampaignPage(u.ID))
	if err != nil || len(left) != 0 {
		t.Fatalf("after a panic: %d campaigns, %v", len(left), err)
	}
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d connections still acquired after the panic", n)
	}
}

// Two SERIALIZABLE transactions that each count a user's campaigns and then
// add one cannot both commit as they ran; the loser is retried by InTx and
// both end up applied.
func TestInTxRetriesSerializationFailures(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	u := mustUser(t, s)

	var attempts atomic.Int32
	var bothRead sync.WaitGroup
	bothRead.Add(2)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			errs[i] = s.InTx(ctx, TxOptions{Isolation: pgx.Serializable}, func(q Querier) error {
				attempts.Add(1)
				if _, err := q.GetUserStatistics(ctx, u.ID); err != nil {
					return err
				}
				if first {
					first = false
					bothRead.Done()
					bothRead.Wait()
				}
				_, err := q.CreateCampaign(ctx, CreateCampaignParams{UserID: u.ID, Name: fmt.Sprint("c", i), Status: "draft"})
				return err
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("transaction failed despite retries: %v", err)
		}
	}
	if attempts.Load() < 3 {
		t.Fatalf("%d attempts: expected a serialization failure and a retry", attempts.Load())
	}
	got, _ := s.ListCampaigns(ctx, firstCampaignPage(u.ID))
	if len(got) != 2 {
		t.Fatalf("%d campaigns, want 2", len(got))
	}
}

// A burst of work, much of it failing in different ways, must hand every
// connection back to the pool.
func TestNoConnectionLeaks(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	u := mustUser(t, s)
	c := mustCampaign(t, s, u.ID)

	work := []func(context.Context) error{
		func(ctx context.Context) error {
			_, err := s.GetCampaign(ctx, GetCampaignParams{ID: c.ID, UserID: u.ID})
			return err
		},
		func(ctx context.Context) error { _, err := s.GetUser(ctx, uuid.New()); return err },
		func(ctx context.Context) error {
			_, err := s.ListCampaignEmails(ctx, ListCampaignEmailsParams{CampaignID: c.ID, AfterCreatedAt: time.Unix(0, 0), AfterID: uuid.Nil, PageSize: 10})
			return err
		},
		func(ctx context.Context) error {
			_, err := s.InsertEmails(ctx, EmailRows(c.ID, []NewEmail{{Recipient: "x"}}, time.Now()))
			return err
		},
		func(ctx context.Context) error {
			return s.InTx(ctx, TxOptions{}, func(q Querier) error {
				mustCampaign(t, q, u.ID)
				return errors.New("changed my mind")
			})
		},
		func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			defer cancel()
			_, err := s.GetCampaignSummary(ctx, GetCampaignSummaryParams{CampaignID: c.ID, UserID: u.ID})
			return err
		},
		func(ctx context.Context) error {
			_, err := s.UpdateCampaign(ctx, UpdateCampaignParams{ID: c.ID, UserID: u.ID, Status: ptr(CampaignStatus("bogus"))})
			return err
		},
	}
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = work[i%len(work)](ctx)
		}()
	}
	wg.Wait()
	if n := pool.Stat().AcquiredConns(); n != 0 {
		t.Fatalf("%d connections still acquired after the burst", n)
	}
}

func ptr[T any](v T) *T { return &v }

// oneConnStore is a store on a pool of exactly one connection whose waits
// give up after 300 ms (closed with the test).
func oneConnStore(t *testing.T) *PgStore {
	t.Helper()
	pool, err := NewPool(context.Background(), PoolConfig{
		URL: pgtest.NewDatabase(t), Size: 1, MaxOverflow: 0, Timeout: 300 * time.Millisecond,
		Recycle: time.Hour, OverflowIdle: time.Minute,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return NewStore(pool, 300*time.Millisecond)
}

func TestPoolExhaustionFailsWithinTimeout(t *testing.T) {
	s := oneConnStore(t)
	ctx := context.Background()

	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- s.InTx(ctx, TxOptions{}, func(Querier) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	start := time.Now()
	_, err := s.CountUsers(ctx)
	waited := time.Since(start)
	close(release)
	if txErr := <-done; txErr != nil {
		t.Fatal(txErr)
	}
	if !errors.Is(err, ErrPoolExhausted) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrPoolExhausted (an ErrUnavailable), got %v", err)
	}
	// It waited for the pool timeout, and no longer than the caller would
	// have waited without one (the context here has no deadline at all).
	if waited < 300*time.Millisecond {
		t.Fatalf("gave up after %v, before the 300ms pool timeout", waited)
	}
	if _, err := s.CountUsers(ctx); err != nil {
		t.Fatalf("pool did not recover: %v", err)
	}
}

// TestPoolWaitDeadlines: whichever comes first, the caller's deadline or
// the pool timeout, ends the wait for a connection, with the error that
// names it.
func TestPoolWaitDeadlines(t *testing.T) {
	s := oneConnStore(t)
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() {
		done <- s.InTx(context.Background(), TxOptions{}, func(Querier) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	defer func() {
		close(release)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	for _, tc := range []struct {
		name     string
		deadline time.Duration
		want     error
		waitMin  time.Duration
	}{
		{"caller's deadline first", 100 * time.Millisecond, ErrTimeout, 100 * time.Millisecond},
		{"pool timeout first", 5 * time.Second, ErrPoolExhausted, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.deadline)
			defer cancel()
			start := time.Now()
			_, err := s.CountUsers(ctx)
			waited := time.Since(start)
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			if waited < tc.waitMin || waited > tc.waitMin+2*time.Second {
				t.Fatalf("waited %v, want about %v", waited, tc.waitMin)
			}
		})
	}
}

func TestCopy100000Emails(t *testing.T) {
	s, pool := newStore(t)
	ctx := context.Background()
	c := mustCampaign(t, s, mustUser(t, s).ID)
	n, err := s.InsertEmails(ctx, EmailRows(c.ID, someEmails(100_000), time.Now()))
	if err != nil || n != 100_000 {
		t.Fatalf("copied %d, %v", n, err)
	}
	var count int64
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM emails WHERE campaign_id = $1", c.ID).Scan(&count); err != nil || count != 100_000 {
		t.Fatalf("count %d, %v", count, err)
	}
}

// BenchmarkCopyEmails measures bulk email insert through COPY: 100 000
// realistic rows an op, in one COPY (what one API request or transaction
// does) and split over two concurrent COPYs on two connections (what the
// seeder's --workers 2 does), which lets the server use both cores.
func BenchmarkCopyEmails(b *testing.B) {
	pool, err := NewPool(context.Background(), PoolConfig{
		URL: pgtest.NewDatabase(b), Size: 2, MaxOverflow: 2, Timeout: time.Minute, Recycle: time.Hour, OverflowIdle: time.Minute,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	s := NewStore(pool, time.Minute)
	ctx := context.Background()
	if _, err := s.EnsureEmailPartitions(ctx, EnsureEmailPartitionsParams{FromMonth: time.Now(), Months: 2}); err != nil {
		b.Fatal(err)
	}
	u, err := s.CreateUser(ctx, CreateUserParams{Email: "bench@example.com", Name: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	c, err := s.CreateCampaign(ctx, CreateCampaignParams{UserID: u.ID, Name: "Bench", Status: "active"})
	if err != nil {
		b.Fatal(err)
	}
	const batch = 100_000
	emails := make([]NewEmail, batch)
	for i := range emails {
		emails[i] = NewEmail{Recipient: fmt.Sprintf("lead%d@example.com", i), Subject: "Quick question about your Q4 pipeline", Body: "Hi, I noticed your team is hiring SDRs — we help teams like yours book more meetings with less manual work. Worth a chat?"}
	}
	for _, streams := range []int{1, 2} {
		b.Run(fmt.Sprintf("streams=%d", streams), func(b *testing.B) {
			rowsCopied := 0
			for b.Loop() {
				var wg sync.WaitGroup
				errs := make([]error, streams)
				per := batch / streams
				for i := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						_, errs[i] = s.InsertEmails(ctx, EmailRows(c.ID, emails[i*per:(i+1)*per], time.Now()))
					}()
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
				rowsCopied += batch
			}
			b.ReportMetric(float64(rowsCopied)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
