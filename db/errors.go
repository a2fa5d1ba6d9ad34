package db

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"
)

// The kinds of failure callers act on. Match them with errors.Is; the
// *Error that carries them also unwraps to the driver's error for logs.
var (
	ErrNotFound         = errors.New("not found")
	ErrConflict         = errors.New("conflict")
	ErrInvalidReference = errors.New("invalid reference")
	ErrInvalidValue     = errors.New("invalid value")
	ErrUnavailable      = errors.New("database unavailable")
	ErrCanceled         = errors.New("canceled")
	ErrTimeout          = errors.New("timed out")
)

// ErrPoolExhausted is the cause of the ErrUnavailable a caller gets when no
// connection freed up within the pool timeout.
var ErrPoolExhausted = errors.New("connection pool exhausted")

// ErrConnectionLost is the cause of the ErrUnavailable a caller gets when
// the connection under a statement died: the server was stopped or crashed,
// its backend was terminated, or the network cut it. A write whose
// connection died after COMMIT was sent has an unknown outcome; the caller
// is told to retry (an Idempotency-Key makes that retry safe).
var ErrConnectionLost = errors.New("connection to the database lost")

// Error is a classified data-layer error. Its Error() text is safe to log;
// clients should be told only its Kind (and Constraint for conflicts),
// since Err holds the raw driver message.
type Error struct {
	Kind       error  // one of the Err* kinds above
	Op         string // the query or operation that failed
	Constraint string // for conflicts, bad references and bad values
	Table      string
	Column     string
	Err        error // the driver's error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.Error())
	if e.Constraint != "" {
		b.WriteString(" (")
		b.WriteString(e.Constraint)
		b.WriteString(")")
	}
	if e.Err != nil && e.Err != e.Kind {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap exposes both the kind and the cause, so errors.Is(err, ErrConflict)
// and errors.As(err, &pgErr) both work.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

// Classify turns a driver error into an *Error tagged with op. Errors it
// cannot place (and nil) come back unchanged; an *Error comes back as is.
func Classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		if errors.Is(err, ErrConnectionLost) && !errors.Is(err, ErrUnavailable) {
			// A statement of a transaction failed and then its connection
			// died: the death is what the caller must act on.
			return &Error{Kind: ErrUnavailable, Op: op, Err: err}
		}
		return err
	}
	kind, pgErr := kindOf(err)
	if kind == nil {
		return err
	}
	e := &Error{Kind: kind, Op: op, Err: err}
	if pgErr != nil {
		e.Constraint, e.Table, e.Column = pgErr.ConstraintName, pgErr.TableName, pgErr.ColumnName
	}
	return e
}

func kindOf(err error) (error, *pgconn.PgError) {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound, nil
	}
	if errors.Is(err, ErrPoolExhausted) {
		return ErrUnavailable, nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return kindOfSQLState(pgErr.Code), pgErr
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrTimeout, nil
	}
	if errors.Is(err, context.Canceled) {
		return ErrCanceled, nil
	}
	if connectionDied(err) {
		return ErrUnavailable, nil
	}
	return nil, nil
}

// connectionDied reports whether err says the connection could not be made
// or died under the statement, in any of the ways the driver reports it: a
// failed connect, a network error (reset, broken pipe, refused), the
// server's socket closing in the middle of a message (io.EOF,
// io.ErrUnexpectedEOF), a connection pgx already closed ("conn closed"), a
// closed pool, or one the Store found closed after the error
// (ErrConnectionLost).
func connectionDied(err error) bool {
	var connErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.Is(err, ErrConnectionLost),
		errors.As(err, &connErr),
		errors.As(err, &netErr),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, io.EOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, puddle.ErrClosedPool), // pgxpool's pool closed at shutdown
		pgconn.SafeToRetry(err):
		return true
	}
	return false
}

func kindOfSQLState(code string) error {
	switch code {
	case "23505", "23P01": // unique_violation, exclusion_violation
		return ErrConflict
	case "23503": // foreign_key_violation
		return ErrInvalidReference
	case "23514", "23502", "22001", "22003", "22007", "22008", "22P02", "22023": // check, not null, too long, out of range, bad datetime, bad text repr, bad parameter
		return ErrInvalidValue
	case "57014": // query_canceled: statement_timeout or a canceled context
		return ErrTimeout
	case "40001", "40P01": // serialization_failure, deadlock_detected (after retries ran out)
		return ErrConflict
	case "55P03": // lock_not_available (lock_timeout)
		return ErrTimeout
	}
	switch code[:2] {
	case "08", "53", "57": // connection exception, insufficient resources, operator intervention
		return ErrUnavailable
	}
	return nil
}

// retryable reports whether a transaction failing with err may succeed if run
// again from the start.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
