package dbroute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/sqlcname"
)

// Options shape a Router.
type Options struct {
	Config
	// PoolTimeout bounds the wait for a free connection (DB_POOL_TIMEOUT).
	PoolTimeout time.Duration
	// ReadOnly are the sqlc query names that only read: they may run on a
	// replica (ReplicaReads). Everything else runs on the primary.
	ReadOnly []string
	// Markers keep each user's last write position (required with
	// replicas).
	Markers    *Markers
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Router is a db.DBTX that sends each statement to a database: read-only
// queries to a replica that is in rotation and has replayed the reader's
// floor (see floor), everything else to the primary. Plug it into the
// Store with db.RouteWith and db.AfterCommit(r.AfterCommit).
type Router struct {
	cfg      Config
	timeout  time.Duration
	primary  *Database
	replicas []*Database
	readOnly map[string]bool
	markers  *Markers
	log      *slog.Logger
	metrics  *metrics
	samples  walSamples
	// lastWarn (unix nanoseconds) keeps a Redis outage from logging once
	// per request.
	lastWarn atomic.Int64

	startOnce sync.Once
	stopOnce  sync.Once
	cancel    context.CancelFunc
	done      chan struct{}
}

var _ db.DBTX = (*Router)(nil)

// New routes between primary and replicas (which may be none: then every
// statement runs on the primary, as without a router). Start begins the
// replicas' health checks; until their first check they get no reads.
func New(primary *pgxpool.Pool, replicas []*pgxpool.Pool, opts Options) *Router {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.MaxLag <= 0 {
		opts.MaxLag = DefaultMaxLag
	}
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = DefaultCheckEvery
	}
	if opts.Markers == nil {
		opts.Markers = NewMarkers(MarkerTTL(opts.MaxLag), nil, "")
	}
	r := &Router{
		cfg: opts.Config, timeout: opts.PoolTimeout, readOnly: map[string]bool{},
		markers: opts.Markers, log: opts.Log, metrics: newMetrics(opts.Registerer),
		primary: &Database{Name: "primary", Addr: addr(primary), Pool: primary},
		done:    make(chan struct{}),
	}
	// Enough history to measure any lag up to twice the maximum.
	r.samples.keep = 2*opts.MaxLag + time.Second
	for i, p := range replicas {
		d := &Database{Name: "replica-" + strconv.Itoa(i+1), Addr: addr(p), Pool: p}
		r.replicas = append(r.replicas, d)
		r.metrics.lag(d.Name, ReplicaState{})
	}
	for _, n := range opts.ReadOnly {
		r.readOnly[n] = true
	}
	return r
}

func addr(p *pgxpool.Pool) string {
	cc := p.Config().ConnConfig
	return fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)
}

// Start checks every replica once (a replica that cannot be reached is
// logged and stays out of rotation; it is never fatal), then keeps checking
// in the background until Close.
func (r *Router) Start(ctx context.Context) {
	r.startOnce.Do(func() {
		if len(r.replicas) == 0 {
			close(r.done)
			return
		}
		lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		r.cancel = cancel
		r.checkOnce(lctx)
		for _, d := range r.replicas {
			if s := d.State(); !s.InRotation {
				r.log.Warn("replica not in rotation at start", "replica", d.Name, "addr", d.Addr, "reason", s.Error)
			}
		}
		go r.checkLoop(lctx)
	})
}

// Close stops the health checks. The pools are the caller's to close.
func (r *Router) Close() {
	r.stopOnce.Do(func() {
		if r.cancel == nil {
			return
		}
		r.cancel()
		<-r.done
	})
}

// HasReplicas reports whether any replica is configured.
func (r *Router) HasReplicas() bool { return len(r.replicas) > 0 }

func (r *Router) isRead(sql string) bool { return r.readOnly[sqlcname.Of(sql)] }

// floor is the WAL position a read must see: the context's WithMinLSN, and
// the acting user's last write (read once per request from the markers).
// A marker that cannot be read is treated as "unknown": the read goes to
// the primary.
func (r *Router) floor(ctx context.Context) LSN {
	f := MinLSN(ctx)
	if a := db.ActorFrom(ctx); a != nil {
		af := a.Floor(func() uint64 {
			l, err := r.markers.Get(ctx, a.ID)
			if err != nil {
				r.metrics.markerErrors.Inc()
				if r.warnDue() {
					r.log.WarnContext(ctx, "read-your-writes marker unavailable: this user's reads go to the primary", "error", err)
				}
				return math.MaxUint64
			}
			return uint64(l)
		})
		f = max(f, LSN(af))
	}
	return f
}

// warnDue allows one marker warning every 10 seconds.
func (r *Router) warnDue() bool {
	now := time.Now().UnixNano()
	last := r.lastWarn.Load()
	return now-last >= int64(10*time.Second) && r.lastWarn.CompareAndSwap(last, now)
}

// pick chooses a replica in rotation that has replayed floor, at random
// (not in turn: requests make a fixed number of reads each, and strict
// turns would send every request's second read to the same replica), never
// skip; the primary when there is none.
func (r *Router) pick(floor LSN, skip *Database) *Database {
	n := uint64(len(r.replicas))
	if n == 0 {
		return r.primary
	}
	start := rand.Uint64N(n)
	for i := range n {
		d := r.replicas[(start+i)%n]
		if d != skip && d.servable(floor) {
			return d
		}
	}
	return r.primary
}

// Target names the database a read with ctx would go to now (for tests and
// diagnostics; each read picks afresh).
func (r *Router) Target(ctx context.Context) string {
	return r.pick(r.floor(ctx), nil).Name
}

// failover reports whether a read that failed on a replica with err may be
// run again elsewhere: the replica was unreachable or went away (nothing
// reached the caller yet), or replay cancelled the query (a recovery
// conflict). A canceled or timed-out request is not retried.
func failover(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01") {
		return true
	}
	return errors.Is(db.Classify("", err), db.ErrUnavailable)
}

// failed notes a replica failure: a connection failure takes the replica
// out of rotation at once (the checks bring it back).
func (r *Router) failed(ctx context.Context, d *Database, err error) {
	r.metrics.retries.WithLabelValues(d.Name).Inc()
	r.log.WarnContext(ctx, "read failed on a replica; retrying elsewhere", "replica", d.Name, "error", err)
	if errors.Is(err, db.ErrPoolExhausted) {
		return // busy, not broken
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code[:2] == "40" {
		return // a recovery conflict: the replica is fine
	}
	if d.markDown(err) {
		r.rotationChanged(d, false, "a read failed: "+err.Error())
	}
}

// read runs one read on a chosen database, and once more elsewhere when a
// replica failed before returning anything.
func (r *Router) read(ctx context.Context, run func(d *Database) error) (*Database, error) {
	floor := r.floor(ctx)
	d := r.pick(floor, nil)
	for attempt := 1; ; attempt++ {
		err := run(d)
		if err == nil || attempt == 2 || d == r.primary || !failover(ctx, err) {
			r.metrics.reads.WithLabelValues(d.Name).Inc()
			return d, err
		}
		r.failed(ctx, d, err)
		d = r.pick(floor, d)
	}
}

func (r *Router) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if !r.isRead(sql) {
		return r.writeQuery(ctx, sql, args)
	}
	var rows pgx.Rows
	_, err := r.read(ctx, func(d *Database) error {
		var err error
		rows, err = r.queryOn(ctx, d, sql, args)
		return err
	})
	return rows, err
}

// queryOn runs a query on d and reads its first row before returning, so
// that a replica dying now fails here, where the read can still be retried,
// and not in the caller's loop.
func (r *Router) queryOn(ctx context.Context, d *Database, sql string, args []any) (pgx.Rows, error) {
	conn, err := db.Acquire(ctx, d.Pool, r.timeout)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		conn.Release()
		return nil, err
	}
	p := &peekedRows{Rows: rows, release: sync.OnceFunc(conn.Release)}
	if rows.Next() {
		p.pending = true
		return p, nil
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		p.release()
		return nil, err
	}
	p.release()
	return p, nil
}

func (r *Router) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if !r.isRead(sql) {
		return r.writeRow(ctx, sql, args)
	}
	return routedRow{r: r, ctx: ctx, sql: sql, args: args}
}

type routedRow struct {
	r    *Router
	ctx  context.Context
	sql  string
	args []any
}

// Scan reads the row. A row missing on a replica is looked up again on the
// primary: absence on a replica proves nothing about a row someone else
// just created (an API key an admin issued a moment ago must work at
// once). Found rows, the common case, cost one read.
func (rr routedRow) Scan(dest ...any) error {
	scan := func(d *Database) error {
		conn, err := db.Acquire(rr.ctx, d.Pool, rr.r.timeout)
		if err != nil {
			return err
		}
		defer conn.Release()
		return conn.QueryRow(rr.ctx, rr.sql, rr.args...).Scan(dest...)
	}
	d, err := rr.r.read(rr.ctx, scan)
	if d != rr.r.primary && errors.Is(err, pgx.ErrNoRows) {
		rr.r.metrics.reads.WithLabelValues(rr.r.primary.Name).Inc()
		return scan(rr.r.primary)
	}
	return err
}

// Exec runs on the primary: sqlc reads never use Exec.
func (r *Router) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, err := db.Acquire(ctx, r.primary.Pool, r.timeout)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer conn.Release()
	tag, err := conn.Exec(ctx, sql, args...)
	if err == nil {
		r.afterWrite(ctx, conn.Conn())
	}
	return tag, err
}

// CopyFrom runs on the primary.
func (r *Router) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	conn, err := db.Acquire(ctx, r.primary.Pool, r.timeout)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	n, err := conn.CopyFrom(ctx, table, columns, src)
	if err == nil {
		r.afterWrite(ctx, conn.Conn())
	}
	return n, err
}

func (r *Router) writeQuery(ctx context.Context, sql string, args []any) (pgx.Rows, error) {
	conn, err := db.Acquire(ctx, r.primary.Pool, r.timeout)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		conn.Release()
		return nil, err
	}
	p := &peekedRows{Rows: rows}
	p.release = sync.OnceFunc(func() {
		// The statement committed once its last row was read.
		if rows.Err() == nil {
			r.afterWrite(ctx, conn.Conn())
		}
		conn.Release()
	})
	return p, nil
}

func (r *Router) writeRow(ctx context.Context, sql string, args []any) pgx.Row {
	conn, err := db.Acquire(ctx, r.primary.Pool, r.timeout)
	if err != nil {
		return errRow{err}
	}
	return writeRow{r: r, ctx: ctx, conn: conn, row: conn.QueryRow(ctx, sql, args...)}
}

type writeRow struct {
	r    *Router
	ctx  context.Context
	conn *pgxpool.Conn
	row  pgx.Row
}

func (w writeRow) Scan(dest ...any) error {
	defer w.conn.Release()
	err := w.row.Scan(dest...)
	if err == nil {
		w.r.afterWrite(w.ctx, w.conn.Conn())
	}
	return err
}

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// AfterCommit records a committed read-write transaction's position; give
// it to the Store with db.AfterCommit.
func (r *Router) AfterCommit(ctx context.Context, conn *pgx.Conn) { r.afterWrite(ctx, conn) }

// captureTimeout bounds the extra statement that reads a write's position.
const captureTimeout = 2 * time.Second

// afterWrite reads the WAL position right after a write committed, on the
// same connection, and raises the acting user's marker and the context's
// tracked Writes to it. Without replicas, or with nobody to tell, it costs
// nothing. The insert position is at or past the end of the commit record
// even with synchronous_commit off.
func (r *Router) afterWrite(ctx context.Context, conn *pgx.Conn) {
	actor, writes := db.ActorFrom(ctx), writesFrom(ctx)
	if len(r.replicas) == 0 || (actor == nil && writes == nil) {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), captureTimeout)
	defer cancel()
	var v int64
	if err := conn.QueryRow(cctx, insertLSNSQL).Scan(&v); err != nil {
		// The write is durable but its position unknown: readers fall back
		// on the markers' earlier value; log it, since it may mean a stale
		// read for this user within the replicas' lag.
		r.log.WarnContext(ctx, "read the WAL position after a write", "error", err)
		return
	}
	lsn := LSN(v)
	if writes != nil {
		writes.observe(lsn)
	}
	if actor != nil {
		actor.Raise(uint64(lsn))
		if err := r.markers.Record(cctx, actor.ID, lsn); err != nil {
			r.log.WarnContext(ctx, "record the user's last write position", "error", err)
		}
	}
}

// peekedRows are rows whose first row may already have been read (pending)
// and that give their connection back when done.
type peekedRows struct {
	pgx.Rows
	pending bool
	release func()
}

func (p *peekedRows) Next() bool {
	if p.pending {
		p.pending = false
		return true
	}
	if p.Rows.Next() {
		return true
	}
	p.release()
	return false
}

func (p *peekedRows) Close() {
	p.Rows.Close()
	p.release()
}
