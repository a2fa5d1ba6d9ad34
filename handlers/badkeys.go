package handlers

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
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
type unknownKeys struct {
	ttl time.Duration
	max int

	mu      sync.Mutex
	expires map[[32]byte]time.Time
}

func newUnknownKeys(ttl time.Duration, max int) *unknownKeys {
	return &unknownKeys{ttl: ttl, max: max, expires: make(map[[32]byte]time.Time)}
}

// known reports whether hash was found unknown less than ttl ago.
func (u *unknownKeys) known(hash [32]byte, now time.Time) bool {
	if u.ttl <= 0 {
		return false
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	exp, ok := u.expires[hash]
	if ok && now.After(exp) {
		delete(u.expires, hash)
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
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.expires) >= u.max {
		for h, exp := range u.expires {
			if now.After(exp) {
				delete(u.expires, h)
			}
		}
		if len(u.expires) >= u.max {
			clear(u.expires)
		}
	}
	u.expires[hash] = now.Add(u.ttl)
}

// forget drops hash (a key just created with it).
func (u *unknownKeys) forget(hash [32]byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.expires, hash)
}

// failedAuth limits failed authentications per client address: past the
// budget, a client gets 429 before its key is even hashed, so guessing
// keys costs the database nothing. Addresses come from echo's RealIP,
// which believes X-Forwarded-For only from TRUSTED_PROXIES. The budget is
// per instance; it is a brake on guessing, not an accounting.
type failedAuth struct {
	perMinute int
	max       int

	mu       sync.Mutex
	limiters map[string]*addrLimiter
}

type addrLimiter struct {
	lim  *rate.Limiter
	seen time.Time
}

func newFailedAuth(perMinute, max int) *failedAuth {
	return &failedAuth{perMinute: perMinute, max: max, limiters: make(map[string]*addrLimiter)}
}

// blocked reports whether addr has spent its budget of failures, and if so
// how long until the next attempt is allowed.
func (f *failedAuth) blocked(addr string, now time.Time) (bool, time.Duration) {
	if f.perMinute <= 0 {
		return false, 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.limiters[addr]
	if !ok {
		return false, 0
	}
	if t := l.lim.TokensAt(now); t < 1 {
		wait := time.Duration((1 - t) / float64(l.lim.Limit()) * float64(time.Second))
		return true, wait
	}
	return false, 0
}

// failed charges one failure to addr.
func (f *failedAuth) failed(addr string, now time.Time) {
	if f.perMinute <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.limiters[addr]
	if !ok {
		if len(f.limiters) >= f.max {
			f.prune(now)
		}
		l = &addrLimiter{lim: rate.NewLimiter(rate.Limit(float64(f.perMinute)/60), f.perMinute)}
		f.limiters[addr] = l
	}
	l.seen = now
	l.lim.AllowN(now, 1)
}

// prune drops addresses idle for a minute (their budget is full again);
// if all are recent, the map starts over.
func (f *failedAuth) prune(now time.Time) {
	for a, l := range f.limiters {
		if now.Sub(l.seen) > time.Minute {
			delete(f.limiters, a)
		}
	}
	if len(f.limiters) >= f.max {
		clear(f.limiters)
	}
}
