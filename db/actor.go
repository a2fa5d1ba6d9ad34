package db

import (
	"context"
	"sync"

	"github.com/google/uuid"
)

// Actor is the user a request acts for. The auth middleware sets it once
// (WithActor); the data layer reads it to keep that user's reads
// consistent with that user's own writes when reads go to replicas. No
// handler chooses a database: naming the user is all a handler does.
type Actor struct {
	ID uuid.UUID

	mu     sync.Mutex
	loaded bool
	floor  uint64
	// seq is the cache's: see CacheSeq.
	seqLoaded bool
	seq       uint64
}

type actorKey struct{}

// WithActor returns ctx acting for user id.
func WithActor(ctx context.Context, id uuid.UUID) context.Context {
	return context.WithValue(ctx, actorKey{}, &Actor{ID: id})
}

// IsActorKey reports whether key is the context key ActorFrom reads. A
// context that carries an Actor among values of its own (one allocation
// for several values, on the request path) answers that key with its
// *Actor.
func IsActorKey(key any) bool {
	_, ok := key.(actorKey)
	return ok
}

// ActorFrom returns the actor of ctx, or nil when the work is not done for
// a user (admin routes, background jobs).
func ActorFrom(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// Floor is the WAL position this actor's reads must see. The first call of
// a request loads it (load is where the user's last write position is kept,
// possibly shared between instances); later calls reuse it, raised by the
// request's own writes, so a request asks the shared store at most once.
func (a *Actor) Floor(load func() uint64) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.loaded {
		a.floor = max(a.floor, load())
		a.loaded = true
	}
	return a.floor
}

// Raise records that this actor's own write committed at lsn.
func (a *Actor) Raise(lsn uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.floor = max(a.floor, lsn)
}

// CacheSeq is the sequence number of this actor's last cache invalidation,
// loaded by the first call of a request (from where instances share it)
// and reused after, like Floor.
func (a *Actor) CacheSeq(load func() uint64) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.seqLoaded {
		a.seq = load()
		a.seqLoaded = true
	}
	return a.seq
}
