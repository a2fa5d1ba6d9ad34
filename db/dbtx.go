package db

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/replyrocket/replyrocket/internal/sqlcname"
)

// classified wraps a DBTX so that every error leaving it is an *Error named
// after the sqlc query that failed: callers never see a raw driver error.
type classified struct{ inner DBTX }

func (c classified) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := c.inner.Exec(ctx, sql, args...)
	return tag, Classify(sqlcname.Of(sql), err)
}

func (c classified) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := c.inner.Query(ctx, sql, args...)
	if err != nil {
		return nil, Classify(sqlcname.Of(sql), err)
	}
	return classifiedRows{Rows: rows, op: sqlcname.Of(sql)}, nil
}

func (c classified) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return classifiedRow{row: c.inner.QueryRow(ctx, sql, args...), op: sqlcname.Of(sql)}
}

func (c classified) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	n, err := c.inner.CopyFrom(ctx, table, columns, src)
	return n, Classify("copy into "+table.Sanitize(), err)
}

type classifiedRows struct {
	pgx.Rows
	op string
}

func (r classifiedRows) Err() error { return Classify(r.op, r.Rows.Err()) }

func (r classifiedRows) Scan(dest ...any) error { return Classify(r.op, r.Rows.Scan(dest...)) }

type classifiedRow struct {
	row pgx.Row
	op  string
}

func (r classifiedRow) Scan(dest ...any) error { return Classify(r.op, r.row.Scan(dest...)) }

// pooled runs each statement on a connection acquired from the pool within
// the pool timeout. pgxpool itself would wait for a free connection as long
// as the caller's context allows; DB_POOL_TIMEOUT bounds that wait so an
// exhausted pool fails fast with ErrPoolExhausted instead of hanging.
type pooled struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

func (p pooled) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	return Acquire(ctx, p.pool, p.timeout)
}

// Acquire takes a connection from pool, waiting at most timeout for a free
// one; past it the error is ErrPoolExhausted (an ErrUnavailable once
// classified).
func Acquire(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration) (*pgxpool.Conn, error) {
	// A caller whose own deadline comes first (every HTTP request: its
	// REQUEST_TIMEOUT is shorter than DB_POOL_TIMEOUT) needs no second
	// timer: the wait ends at that deadline either way, with the same
	// error. Skipping it saves a context, a timer and their cancellation
	// on every statement.
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= timeout {
		return pool.Acquire(ctx)
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pool.Acquire(actx)
	if err == nil {
		return conn, nil
	}
	if ctx.Err() == nil && actx.Err() != nil {
		st := pool.Stat()
		return nil, fmt.Errorf("%w: no connection within %s (%d of %d in use)",
			ErrPoolExhausted, timeout, st.AcquiredConns(), st.MaxConns())
	}
	return nil, err
}

// lostIfClosed marks err as ErrConnectionLost when the connection it came
// from is closed afterwards: whatever the driver's wording (a reset, an EOF
// in the middle of a message, a FATAL from a terminated backend), a
// statement whose connection died is a database that went away, never a
// bug. Errors of a canceled or expired context stay what they are.
func lostIfClosed(ctx context.Context, conn *pgxpool.Conn, err error) error {
	if err == nil || ctx.Err() != nil || !conn.Conn().IsClosed() {
		return err
	}
	return fmt.Errorf("%w: %w", ErrConnectionLost, err)
}

func (p pooled) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer conn.Release()
	tag, err := conn.Exec(ctx, sql, args...)
	return tag, lostIfClosed(ctx, conn, err)
}

func (p pooled) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		err = lostIfClosed(ctx, conn, err)
		conn.Release()
		return nil, err
	}
	return &releasingRows{Rows: rows, conn: conn, ctx: ctx}, nil
}

func (p pooled) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	conn, err := p.acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return releasingRow{row: conn.QueryRow(ctx, sql, args...), conn: conn, ctx: ctx}
}

func (p pooled) CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, src pgx.CopyFromSource) (int64, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	n, err := conn.CopyFrom(ctx, table, columns, src)
	return n, lostIfClosed(ctx, conn, err)
}

// releasingRows gives the connection back when the rows are done with,
// whether the caller reads them to the end or closes them early.
type releasingRows struct {
	pgx.Rows
	conn *pgxpool.Conn
	ctx  context.Context
	once sync.Once
	done bool  // released
	err  error // Rows.Err, judged before the connection went back
}

func (r *releasingRows) release() {
	r.once.Do(func() {
		r.err = lostIfClosed(r.ctx, r.conn, r.Rows.Err())
		r.done = true
		r.conn.Release()
	})
}

// Err is the rows' error, marked ErrConnectionLost when the connection died
// while they were read.
func (r *releasingRows) Err() error {
	if r.done {
		return r.err
	}
	return lostIfClosed(r.ctx, r.conn, r.Rows.Err())
}

func (r *releasingRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.release()
	return false
}

func (r *releasingRows) Close() {
	r.Rows.Close()
	r.release()
}

type releasingRow struct {
	row  pgx.Row
	conn *pgxpool.Conn
	ctx  context.Context
}

func (r releasingRow) Scan(dest ...any) error {
	defer r.conn.Release()
	return lostIfClosed(r.ctx, r.conn, r.row.Scan(dest...))
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
