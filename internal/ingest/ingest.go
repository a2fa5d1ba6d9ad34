// Package ingest applies tracking events (sent, opened, replied, bounced,
// failed) to emails in group commits: events submitted concurrently are
// collected into a batch, and a batch is applied by one set-based
// statement, its own transaction (ApplyEmailEvents in
// queries/events.sql), through the store it is given — the caching
// decorator, so the batch invalidates what it writes like any other
// write. A batch closes when it holds MaxEvents
// events or MaxWait after its first event, whichever comes first, and
// stays open past MaxWait while InFlight batches are already running, so
// batches grow with the load instead of queueing.
//
// Submit returns only after the batch holding its events committed (or
// failed): nothing is acknowledged from memory, so every event a caller
// was told about is in the database. docs/writes.md has the design.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/replyrocket/replyrocket/db"
)

// Event is one tracking event of a user's email.
type Event struct {
	// ID is the event's id, chosen by the client: an event whose id the
	// user already sent is a duplicate and changes nothing.
	ID      uuid.UUID
	UserID  uuid.UUID
	EmailID uuid.UUID
	Kind    db.EmailEventKind
	At      time.Time
	// Reason is a bounce's reason (bounced and failed only; may be empty).
	Reason string
}

// MaxReasonLen bounds Event.Reason (emails_bounce_reason_check).
const MaxReasonLen = 1000

// Outcome is what became of one event.
type Outcome string

const (
	// Applied: the event was recorded and applied to its email (an open of
	// an email already opened is applied and changes nothing: the first
	// open's time stays).
	Applied Outcome = "applied"
	// Duplicate: the user sent an event with this id before (or twice in
	// one batch); nothing changed.
	Duplicate Outcome = "duplicate"
	// NotFound: the email does not exist or is not the user's.
	NotFound Outcome = "not_found"
	// Refused: the event was recorded but contradicts the email's terminal
	// status (bounced vs failed, or sent after failed) and changed nothing.
	Refused Outcome = "refused"
)

// Result is one event's outcome; Email is the email after the batch when
// the event was applied or refused, and as it is when it was a duplicate.
type Result struct {
	Outcome Outcome
	Email   *db.Email
}

// Config tunes the batching (EVENT_BATCH_* in internal/config).
type Config struct {
	// MaxEvents closes a batch once it holds this many events.
	MaxEvents int
	// MaxWait closes a batch this long after its first event.
	MaxWait time.Duration
	// InFlight is how many batches may run at once, each on its own
	// connection; a batch ready to close while they all run keeps
	// filling until one ends.
	InFlight int
	// Timeout bounds one batch's transaction, retries included.
	Timeout time.Duration
}

// Defaults, chosen from the loadtest's events scenario (docs/writes.md).
const (
	DefaultMaxEvents = 500
	DefaultMaxWait   = 2 * time.Millisecond
	DefaultInFlight  = 2
	DefaultTimeout   = 10 * time.Second
)

// WithDefaults fills zero fields with the defaults.
func (c Config) WithDefaults() Config {
	if c.MaxEvents <= 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.InFlight <= 0 {
		c.InFlight = DefaultInFlight
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// ErrInvalidEvent is returned by Submit for an event it cannot apply (an
// unknown kind, a nil id, a zero time, a reason too long); nothing of that
// submission is applied.
var ErrInvalidEvent = errors.New("invalid event")

// Batcher collects events into batches. It holds no goroutine while idle:
// each batch has one, from its first event until it committed.
type Batcher struct {
	store db.Store
	cfg   Config
	sem   chan struct{}

	mu   sync.Mutex
	open *batch
}

// New returns a Batcher applying events through store.
func New(store db.Store, cfg Config) *Batcher {
	cfg = cfg.WithDefaults()
	return &Batcher{store: store, cfg: cfg, sem: make(chan struct{}, cfg.InFlight)}
}

type batch struct {
	events  []Event
	full    chan struct{} // closed when the batch reached MaxEvents
	done    chan struct{} // closed when results and err are set
	results []Result
	err     error
}

// piece is the part of one submission that went into one batch.
type piece struct {
	b        *batch
	from, to int // in b.events
	at       int // in the submission
}

// Submit applies events and returns their results in order, once every
// batch holding them committed. An error means none of the batch's
// events were applied, unless it is ctx's: a caller that stopped waiting
// does not learn the outcome (resubmitting the same event ids is safe).
func (b *Batcher) Submit(ctx context.Context, events []Event) ([]Result, error) {
	for i, e := range events {
		if err := check(e); err != nil {
			return nil, fmt.Errorf("%w: event %d: %w", ErrInvalidEvent, i, err)
		}
	}
	pieces := b.enqueue(events)
	out := make([]Result, len(events))
	for _, p := range pieces {
		select {
		case <-p.b.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if p.b.err != nil {
			return nil, p.b.err
		}
		copy(out[p.at:], p.b.results[p.from:p.to])
	}
	return out, nil
}

func check(e Event) error {
	switch {
	case !e.Kind.Valid():
		return fmt.Errorf("unknown kind %q", e.Kind)
	case e.ID == uuid.Nil || e.UserID == uuid.Nil || e.EmailID == uuid.Nil:
		return errors.New("nil id")
	case e.At.IsZero():
		return errors.New("no time")
	case len(e.Reason) > MaxReasonLen:
		return fmt.Errorf("reason longer than %d bytes", MaxReasonLen)
	}
	return nil
}

// enqueue adds events to the open batch, splitting them over as many
// batches as MaxEvents requires.
func (b *Batcher) enqueue(events []Event) []piece {
	var pieces []piece
	b.mu.Lock()
	defer b.mu.Unlock()
	for at := 0; at < len(events); {
		if b.open == nil {
			b.open = &batch{full: make(chan struct{}), done: make(chan struct{})}
			go b.lead(b.open)
		}
		bt := b.open
		n := min(len(events)-at, b.cfg.MaxEvents-len(bt.events))
		from := len(bt.events)
		bt.events = append(bt.events, events[at:at+n]...)
		pieces = append(pieces, piece{b: bt, from: from, to: from + n, at: at})
		at += n
		if len(bt.events) >= b.cfg.MaxEvents {
			b.open = nil
			close(bt.full)
		}
	}
	return pieces
}

// lead closes bt after MaxWait or once it is full, waits for a free
// slot (bt keeps filling meanwhile), and applies it.
func (b *Batcher) lead(bt *batch) {
	t := time.NewTimer(b.cfg.MaxWait)
	select {
	case <-bt.full:
	case <-t.C:
	}
	t.Stop()
	b.sem <- struct{}{}
	b.mu.Lock()
	if b.open == bt {
		b.open = nil
	}
	b.mu.Unlock()
	// The batch belongs to all its callers, none of whose contexts may
	// cancel it: it gets its own deadline.
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.Timeout)
	defer func() {
		// A panic here would take the server down with no request's
		// recovery around it: its callers get it as an error instead.
		if p := recover(); p != nil {
			bt.results, bt.err = nil, fmt.Errorf("apply a batch of %d events: panic: %v", len(bt.events), p)
		}
		cancel()
		<-b.sem
		close(bt.done)
	}()
	bt.results, bt.err = apply(ctx, b.store, bt.events)
}
