package db

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is how request handlers and background jobs reach the database:
// every query, plus transactions. The pgx implementation comes from
// NewStore; the caching decorator implements it too.
type Store interface {
	Querier
	// InTx runs fn in one transaction: committed when fn returns nil, rolled
	// back when it returns an error or panics, and run again from the start
	// (up to TxOptions.MaxAttempts) on a serialization failure or deadlock,
	// so fn must not have effects outside the transaction.
	InTx(ctx context.Context, opts TxOptions, fn func(Querier) error) error
}

// TxOptions shape a transaction. The zero value is READ COMMITTED, read
// write, three attempts.
type TxOptions struct {
	Isolation   pgx.TxIsoLevel
	ReadOnly    bool
	MaxAttempts int
}

const defaultTxAttempts = 3

// PgStore is the Store on a pgx pool.
type PgStore struct {
	*Queries
	conn pooled
	// afterCommit runs on a read-write transaction's connection once it
	// committed (the read-replica router records the commit's WAL position
	// there, for read-your-writes).
	afterCommit func(ctx context.Context, conn *pgx.Conn)
}

var _ Store = (*PgStore)(nil)

// StoreOption adjusts a Store built by NewStore.
type StoreOption func(*PgStore)

// RouteWith sends every statement outside a transaction through r instead
// of straight to the pool: the read-replica router (db/dbroute) plugs in
// here. Transactions always run on the store's own pool, the primary.
func RouteWith(r DBTX) StoreOption {
	return func(s *PgStore) { s.Queries = New(classified{inner: r}) }
}

// AfterCommit runs fn on the connection of every read-write transaction
// right after it committed, before InTx returns.
func AfterCommit(fn func(ctx context.Context, conn *pgx.Conn)) StoreOption {
	return func(s *PgStore) { s.afterCommit = fn }
}

// NewStore returns a Store on pool. poolTimeout bounds how long a statement
// waits for a free connection (DB_POOL_TIMEOUT).
func NewStore(pool *pgxpool.Pool, poolTimeout time.Duration, opts ...StoreOption) *PgStore {
	conn := pooled{pool: pool, timeout: poolTimeout}
	s := &PgStore{Queries: New(classified{inner: conn}), conn: conn}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Pool is the pool the store runs on, for health checks and statistics.
func (s *PgStore) Pool() *pgxpool.Pool { return s.conn.pool }

func (s *PgStore) InTx(ctx context.Context, opts TxOptions, fn func(Querier) error) error {
	return Classify("transaction", Retry(ctx, opts.MaxAttempts, func() error { return s.runTx(ctx, opts, fn) }))
}

// Retry runs fn, a transaction or a single statement (its own implicit
// transaction), again while it fails with a serialization failure or a
// deadlock, up to attempts runs in all (3 when attempts <= 0), backing off
// between runs. fn must be safe to run again: what a failed run wrote was
// rolled back.
func Retry(ctx context.Context, attempts int, fn func() error) error {
	if attempts <= 0 {
		attempts = defaultTxAttempts
	}
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !retryable(err) || attempt == attempts {
			return err
		}
		if err := sleepBackoff(ctx, attempt); err != nil {
			return err
		}
	}
}

func (s *PgStore) runTx(ctx context.Context, opts TxOptions, fn func(Querier) error) (err error) {
	conn, err := s.conn.acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	access := pgx.ReadWrite
	if opts.ReadOnly {
		access = pgx.ReadOnly
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: opts.Isolation, AccessMode: access})
	if err != nil {
		return fmt.Errorf("begin: %w", lostIfClosed(ctx, conn, err))
	}
	// The rollback must run even when ctx is what failed the work.
	rollback := func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }
	defer func() {
		if p := recover(); p != nil {
			rollback()
			panic(p)
		}
	}()
	if err := fn(New(classified{inner: tx})); err != nil {
		rollback()
		return lostIfClosed(ctx, conn, err)
	}
	if err := tx.Commit(ctx); err != nil {
		// The outcome of a COMMIT whose connection died is unknown: the
		// caller gets ErrUnavailable and retries (safely, with an
		// Idempotency-Key).
		return fmt.Errorf("commit: %w", lostIfClosed(ctx, conn, err))
	}
	if s.afterCommit != nil && !opts.ReadOnly {
		s.afterCommit(ctx, conn.Conn())
	}
	return nil
}

// sleepBackoff waits a jittered, growing delay before the next attempt,
// so that two transactions that collided do not collide again in lockstep.
func sleepBackoff(ctx context.Context, attempt int) error {
	base := time.Duration(5<<attempt) * time.Millisecond
	d := base/2 + rand.N(base)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// NewEmail is one email to create.
type NewEmail struct {
	Recipient string
	Subject   string
	Body      string
}

// EmailRows turns new emails of a campaign into COPY rows, each with a
// UUIDv7 id and the created_at it encodes, all queued.
func EmailRows(campaignID uuid.UUID, emails []NewEmail, now time.Time) []InsertEmailsParams {
	rows := make([]InsertEmailsParams, len(emails))
	for i, e := range emails {
		id, createdAt := NewEmailID(now)
		rows[i] = InsertEmailsParams{
			ID: id, CampaignID: campaignID, Recipient: e.Recipient, Subject: e.Subject,
			Body: e.Body, Status: "queued", CreatedAt: createdAt,
		}
	}
	return rows
}

// CreateCampaignWithEmailsParams describe a campaign created together with
// its first emails.
type CreateCampaignWithEmailsParams struct {
	Campaign CreateCampaignParams
	Emails   []NewEmail
}

// CreateCampaignWithEmails creates a campaign and its emails atomically: if
// any email is rejected, the campaign does not exist afterwards either.
func CreateCampaignWithEmails(ctx context.Context, s Store, arg CreateCampaignWithEmailsParams) (Campaign, error) {
	var campaign Campaign
	err := s.InTx(ctx, TxOptions{}, func(q Querier) error {
		c, err := q.CreateCampaign(ctx, arg.Campaign)
		if err != nil {
			return err
		}
		if len(arg.Emails) > 0 {
			if _, err := q.InsertEmails(ctx, EmailRows(c.ID, arg.Emails, time.Now())); err != nil {
				return err
			}
		}
		campaign = c
		return nil
	})
	if err != nil {
		return Campaign{}, fmt.Errorf("create campaign %q with %d emails: %w", arg.Campaign.Name, len(arg.Emails), err)
	}
	return campaign, nil
}
