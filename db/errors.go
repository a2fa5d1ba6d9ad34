package db

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) {
		return ErrUnavailable, nil
	}
	return nil, nil
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
