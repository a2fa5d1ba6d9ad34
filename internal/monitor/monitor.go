// Package monitor is the database monitor behind /db-monitor: health checks
// read from the catalog, slow statements from pg_stat_statements with time
// windows from the monitor's own snapshots, per-query latency measured in the
// application, safe EXPLAIN, index advice verified with hypopg, and table
// statistics.
//
// Every catalog query runs in its own read-only transaction under its own
// statement_timeout, so a slow catalog never turns the monitor into load on
// the database it watches.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/pgsession"
	"github.com/replyrocket/replyrocket/internal/querystats"
)

// Errors the HTTP layer maps to status codes. Their texts are fixed: the
// monitor never passes database error text to a client, since it could carry
// data the query touched.
var (
	ErrNotFound        = errors.New("no such table")
	ErrInvalidQuery    = errors.New("invalid query")
	ErrAnalyzeDisabled = errors.New("EXPLAIN ANALYZE is disabled on this server; set MONITOR_ALLOW_ANALYZE=true to enable it")
	ErrQueryFailed     = errors.New("the database could not plan or run the query")
	ErrQueryTimeout    = errors.New("the query did not finish within the monitor's statement timeout")
	ErrUnavailable     = errors.New("the database did not answer the monitor")
)

// CacheStats is the caching layer's view the monitor joins with its own
// figures: query name → hit rate between 0 and 1, and the running totals
// of served and all annotated reads, which the history turns into a hit
// rate per interval.
type CacheStats interface {
	QueryHitRates() map[string]float64
	Lookups() (served, total int64)
}

// Config holds the monitor's settings. Zero fields take the defaults.
type Config struct {
	// CatalogTimeout bounds each catalog query.
	CatalogTimeout time.Duration
	// ExplainTimeout bounds analyze-query and optimize-query statements.
	ExplainTimeout time.Duration
	// LockTimeout bounds how long any monitor statement waits for a lock.
	LockTimeout time.Duration
	// AllowAnalyze lets analyze-query run EXPLAIN ANALYZE, which executes
	// the query (inside a READ ONLY transaction that is rolled back).
	AllowAnalyze bool
	// LongQuery is the age at which a running query is flagged.
	LongQuery time.Duration
	// IdleInTransaction is how long a session may sit idle inside an open
	// transaction before it is flagged.
	IdleInTransaction time.Duration
	// SlowMean and SlowCalls define a slow statement: mean time at least
	// SlowMean over at least SlowCalls calls.
	SlowMean  time.Duration
	SlowCalls int64
	// SnapshotInterval is how often counters are snapshotted; Retention is
	// how long snapshots are kept (the longest window that can be asked).
	SnapshotInterval time.Duration
	Retention        time.Duration
	// HypoPGDisabled forces the pg_stats heuristic for index advice even
	// where hypopg is installed.
	HypoPGDisabled bool
	// TopN is how many statements each slow-query ranking lists.
	TopN int
}

// WithDefaults fills zero fields with the defaults of the MONITOR_* variables
// (internal/config declares them; a test there ties the two).
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.CatalogTimeout, 2*time.Second)
	def(&c.ExplainTimeout, 5*time.Second)
	def(&c.LockTimeout, time.Second)
	def(&c.LongQuery, time.Minute)
	def(&c.IdleInTransaction, time.Minute)
	def(&c.SlowMean, 20*time.Millisecond)
	def(&c.SnapshotInterval, time.Minute)
	def(&c.Retention, time.Hour)
	if c.SlowCalls <= 0 {
		c.SlowCalls = 100
	}
	if c.TopN <= 0 {
		c.TopN = 20
	}
	return c
}

// Sources are the application's own figures the monitor reports beside the
// database's. Both are optional.
type Sources struct {
	Tracer *querystats.Tracer
	Cache  CacheStats
	// Pool is the application's request pool, whose figures the monitor
	// reports; nil reports the monitor's own pool. The monitor's catalog
	// queries run on its own (background) pool either way.
	Pool *pgxpool.Pool
}

// Monitor answers the /db-monitor endpoints. Close stops its snapshot loop.
type Monitor struct {
	pool *pgxpool.Pool
	cfg  Config
	src  Sources

	snaps   snapshots
	snapErr atomic.Value // string: the last snapshot's failure, "" after a success
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

// New starts a monitor of pool. It takes a first snapshot at once and then
// one every cfg.SnapshotInterval until Close.
func New(pool *pgxpool.Pool, cfg Config, src Sources) *Monitor {
	cfg = cfg.WithDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{pool: pool, cfg: cfg, src: src, cancel: cancel, done: make(chan struct{})}
	m.snaps.max = int(cfg.Retention/cfg.SnapshotInterval) + 2
	go m.loop(ctx)
	return m
}

// Config returns the settings in effect.
func (m *Monitor) Config() Config { return m.cfg }

// Close stops the snapshot loop and waits for it.
func (m *Monitor) Close() {
	m.once.Do(m.cancel)
	<-m.done
}

func (m *Monitor) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(m.cfg.SnapshotInterval)
	defer t.Stop()
	for {
		// A failed snapshot only leaves a gap in the history; the next tick
		// tries again, and the performance page reports the failure.
		if err := m.Snapshot(ctx); err != nil && ctx.Err() == nil {
			m.snapErr.Store(kindText(err))
		} else {
			m.snapErr.Store("")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// readOnly runs fn in a READ ONLY transaction under SET LOCAL statement and
// lock timeouts, and always rolls it back. It is the one place this package
// begins a transaction by hand: db.Store.InTx hands its callback sqlc's
// Querier, not the raw pgx.Tx that catalog queries and EXPLAIN need, and it
// commits on success — the monitor must never commit anything.
//
// after, when not nil, runs on the same connection once the transaction is
// over, for session state a rollback does not undo (a PREPAREd statement).
// If it fails the connection is closed rather than returned to the pool
// carrying that state.
func (m *Monitor) readOnly(ctx context.Context, timeout time.Duration, fn func(context.Context, pgx.Tx) error, after ...func(context.Context, *pgx.Conn) error) error {
	// The client-side deadline is a little later than the server's, so the
	// server's cancellation (a clean SQLSTATE 57014) normally wins, and a
	// server that stops answering still cannot hold the caller.
	ctx, cancel := context.WithTimeout(querystats.WithoutTracing(ctx), timeout+time.Second)
	defer cancel()
	// The session says it is the monitor's while it holds the connection
	// (on the background pool, whose other sessions are jobs).
	conn, err := m.pool.Acquire(pgsession.With(ctx, pgsession.Monitor))
	if err != nil {
		return classify(err)
	}
	defer conn.Release()
	err = m.inReadOnlyTx(ctx, conn.Conn(), timeout, fn)
	for _, a := range after {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		aerr := a(cleanCtx, conn.Conn())
		cancel()
		if aerr != nil {
			_ = conn.Conn().Close(cleanCtx)
			break
		}
	}
	return err
}

func (m *Monitor) inReadOnlyTx(ctx context.Context, conn *pgx.Conn, timeout time.Duration, fn func(context.Context, pgx.Tx) error) error {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return classify(err)
	}
	defer func() {
		// Rolls back even when ctx is already done; bounded so a server that
		// stopped answering cannot hold the caller.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = tx.Rollback(rctx)
	}()
	// Both values are integers formatted here, never client input.
	setting := fmt.Sprintf("SET LOCAL statement_timeout = %d; SET LOCAL lock_timeout = %d",
		timeout.Milliseconds(), m.cfg.LockTimeout.Milliseconds())
	if _, err := tx.Exec(ctx, setting); err != nil {
		return classify(err)
	}
	return fn(ctx, tx)
}

// catalog runs one catalog query under the catalog timeout.
func (m *Monitor) catalog(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	return m.readOnly(ctx, m.cfg.CatalogTimeout, fn)
}

// Error carries a fixed client-safe Kind and, for logs, the error behind it.
type Error struct {
	Kind error
	Err  error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Err.Error()
}

// Unwrap exposes the kind to errors.Is and the cause to errors.As.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// classify turns a driver error into one of the monitor's fixed kinds.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var me *Error
	if errors.As(err, &me) {
		return err
	}
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "57014" || pgErr.Code == "55P03"):
		// query_canceled (statement_timeout) and lock_not_available
		// (lock_timeout) both mean the monitor gave up waiting.
		return &Error{Kind: ErrQueryTimeout, Err: err}
	case errors.As(err, &pgErr):
		return &Error{Kind: ErrQueryFailed, Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Kind: ErrQueryTimeout, Err: err}
	default:
		return &Error{Kind: ErrUnavailable, Err: err}
	}
}

// SQLState is the SQLSTATE code behind a monitor error, or "". Codes name a
// class of failure and carry none of the data involved.
func SQLState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}
