package handlers

import (
	"context"
	"time"

	"github.com/puzpuzpuz/xsync/v4"

	"github.com/replyrocket/replyrocket/internal/ratelimit"
)

// unknownKeys remembers, for a short while, hashes of keys the database
// did not know, so a client repeating a bad key costs a map lookup instead
// of a query.
//
// Why a key created meanwhile still works at once, on every instance: a
// key is 256 random bits, minted by the server and shown only to its
// creator, so nobody can have sent a key before it existed; its hash cannot
// be in any instance's negative cache. The one way a remembered hash turns
// valid is by clearing revoked_at or reactivating a user, which no route
// does; the TTL bounds even that. Creating a key through the API forgets
// its hash here as well, which costs nothing and keeps the invariant local.
//
// Every authenticated request asks it, and almost every answer is no: the
// map is xsync's, whose reads take no lock. Under a mutex the question was
// a lock handed between the two cores on every request.
type unknownKeys struct {
	ttl time.Duration
	max int

	expires *xsync.Map[[32]byte, time.Time]
}

func newUnknownKeys(ttl time.Duration, max int) *unknownKeys {
	return &unknownKeys{ttl: ttl, max: max, expires: xsync.NewMap[[32]byte, time.Time]()}
}

// known reports whether hash was found unknown less than ttl ago.
func (u *unknownKeys) known(hash [32]byte, now time.Time) bool {
	if u.ttl <= 0 {
		return false
	}
	exp, ok := u.expires.Load(hash)
	if ok && now.After(exp) {
		// Only if still the expired entry: a concurrent remember stays.
		u.expires.Compute(hash, func(cur time.Time, loaded bool) (time.Time, xsync.ComputeOp) {
			if loaded && now.After(cur) {
				return cur, xsync.DeleteOp
			}
			return cur, xsync.CancelOp
		})
		return false
	}
	return ok
}

// remember records hash as unknown. At the bound, expired entries go
// first, then everything (a flood of distinct keys is the per-address
// limiter's job; this map only has to stay small).
func (u *unknownKeys) remember(hash [32]byte, now time.Time) {
	if u.ttl <= 0 {
		return
	}
	pruneTimes(u.expires, u.max, now.After)
	u.expires.Store(hash, now.Add(u.ttl))
}

// pruneTimes keeps m, a map to times, under max entries before one more
// is added: at the bound the entries stale says are stale go, and if all
// are fresh, everything does.
func pruneTimes[K comparable](m *xsync.Map[K, time.Time], max int, stale func(time.Time) bool) {
	if m.Size() < max {
		return
	}
	m.DeleteMatching(func(_ K, t time.Time) (bool, bool) { return stale(t), false })
	if m.Size() >= max {
		m.Clear()
	}
}

// forget drops hash (a key just created with it).
func (u *unknownKeys) forget(hash [32]byte) {
	u.expires.Delete(hash)
}

// failedAuth is each client address's budget of failed authentications,
// spent only by requests whose key cannot be good (requireUser). It is a
// budget of the rate limiter: shared by every instance through Redis, in
// process when Redis is down or not configured. Addresses come from
// echo's RealIP, which believes X-Forwarded-For (or Forwarded) only from
// TRUSTED_PROXIES. nil: no budget.
type failedAuth struct {
	lim    *ratelimit.Limiter
	budget ratelimit.Limit
}

// spend charges one failure to addr; refused means the address had spent
// its budget already, and wait is how long until it may fail again.
func (f *failedAuth) spend(ctx context.Context, addr string) (refused bool, wait time.Duration) {
	if f == nil {
		return false, 0
	}
	d := f.lim.Allow(ctx, "auth", "auth:"+addr, f.budget, 1)
	return !d.Allowed, d.RetryAfter
}
