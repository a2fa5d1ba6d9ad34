package dbroute

import (
	"context"
	"fmt"
	"sync"
)

// LSN is a position in the primary's write-ahead log, in bytes. A database
// that has replayed up to an LSN sees every transaction committed before
// it.
type LSN uint64

// String is PostgreSQL's pg_lsn notation, e.g. 0/16B3748.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint64(l)>>32, uint32(l)) }

// lsnSQL reads an LSN as a number: pg_lsn minus '0/0' is its byte offset.
const (
	insertLSNSQL  = "SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint"
	primaryLSNSQL = "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint"
)

type minLSNKey struct{}

// WithMinLSN returns ctx whose reads run only on a database that has
// replayed lsn: a replica whose replay position is at or past it, else the
// primary. The cache uses it for a load after an invalidation, so the entry
// it stores is never older than the write that caused the invalidation.
// Several calls keep the highest position.
func WithMinLSN(ctx context.Context, lsn LSN) context.Context {
	if prev := MinLSN(ctx); prev >= lsn {
		return ctx
	}
	return context.WithValue(ctx, minLSNKey{}, lsn)
}

// MinLSN is the position set by WithMinLSN, or 0.
func MinLSN(ctx context.Context) LSN {
	l, _ := ctx.Value(minLSNKey{}).(LSN)
	return l
}

// Writes collects the commit positions of the writes made with a context
// from TrackWrites.
type Writes struct {
	mu  sync.Mutex
	lsn LSN
}

// LSN is the highest commit position of the tracked writes: a database
// that has replayed it sees all of them. 0 when nothing was written, or
// when there are no replicas (everything reads the primary, so there is
// nothing to wait for).
func (w *Writes) LSN() LSN {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lsn
}

func (w *Writes) observe(l LSN) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lsn = max(w.lsn, l)
}

type writesKey struct{}

// TrackWrites returns ctx whose writes (statements and transactions through
// the routed Store) report their commit position to the returned Writes.
// This is how a caller learns a write's LSN, e.g. to hand it with an
// invalidation to another instance, which then loads with WithMinLSN.
func TrackWrites(ctx context.Context) (context.Context, *Writes) {
	w := &Writes{}
	return context.WithValue(ctx, writesKey{}, w), w
}

func writesFrom(ctx context.Context) *Writes {
	w, _ := ctx.Value(writesKey{}).(*Writes)
	return w
}
