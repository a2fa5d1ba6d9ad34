package handlers

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/puzpuzpuz/xsync/v4"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/internal/apikey"
)

// principalKey is the request context's key of the *principal. It rides
// in the context requireUser already makes for the data layer's actor, not
// in Echo's store: that is a map made on a request's first Set, about a
// third of a kilobyte more garbage on every request.
type principalKey struct{}

// authContext carries, in one allocation, the principal and the data
// layer's actor (which keeps this user's reads consistent with this user's
// writes on read replicas): two context.WithValue and their two values
// were four allocations of every authenticated request.
//
// It is made before the key is looked up and holds the key's hash: a
// slice of it handed to the db.Store interface escapes, so a hash on the
// stack was one more allocation.
type authContext struct {
	context.Context
	authSlots
}

// authSlots are what a key check leaves for the request: its principal,
// the store's actor and the key's hash (kept here, not on the stack, so
// the lookup through db.Store's interface does not move it to the heap).
type authSlots struct {
	p     principal
	actor db.Actor
	hash  [32]byte
}

// authenticated fills s in for the key the lookup found.
func (s *authSlots) authenticated(key db.GetAPIKeyByHashRow) {
	s.p = principal{userID: key.UserID, keyID: key.ID, rateLimit: key.RateLimitPerMinute}
	s.actor.ID = key.UserID
}

func (a *authContext) Value(key any) any {
	switch {
	case key == principalKey{}:
		return &a.p
	case db.IsActorKey(key):
		return &a.actor
	}
	return a.Context.Value(key)
}

// principal is what a user API key authenticated: whose data the request
// may touch, which key it spent and that key's own rate limit, if any.
type principal struct {
	userID    uuid.UUID
	keyID     uuid.UUID
	rateLimit *int32 // requests per minute; nil: the default budget
}

// touchEvery matches TouchAPIKey's own rate limit: skipping the statement
// when this process touched the key recently saves a round trip per request
// (the key lookup itself is usually a cache hit).
const touchEvery = time.Minute

// maxTrackedKeys bounds the limiter's memory; past it, entries older than
// touchEvery are dropped, and if all are recent the map starts over (the
// SQL's own guard still keeps writes to one a minute per key).
const maxTrackedKeys = 10_000

// touchLimiter remembers when this process last touched each key. Every
// authenticated request asks it and almost every answer is "not yet": the
// map is xsync's, whose reads take no lock, where a mutex was handed
// between the cores on every request.
type touchLimiter struct {
	last *xsync.Map[uuid.UUID, time.Time]
}

func newTouchLimiter() *touchLimiter {
	return &touchLimiter{last: xsync.NewMap[uuid.UUID, time.Time]()}
}

// due reports whether key should be touched now, and if so records it:
// of concurrent callers for one key, one is told to touch it.
func (l *touchLimiter) due(key uuid.UUID, now time.Time) bool {
	if t, ok := l.last.Load(key); ok && now.Sub(t) < touchEvery {
		return false
	}
	pruneTimes(l.last, maxTrackedKeys, func(t time.Time) bool { return now.Sub(t) >= touchEvery })
	due := false
	l.last.Compute(key, func(t time.Time, loaded bool) (time.Time, xsync.ComputeOp) {
		if loaded && now.Sub(t) < touchEvery {
			return t, xsync.CancelOp
		}
		due = true
		return now, xsync.UpdateOp
	})
	return due
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(c echo.Context) (string, bool) {
	h := headerValue(c.Request().Header, echo.HeaderAuthorization)
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// requireUser authenticates a user API key and puts its user id on the
// context. Missing, unknown and revoked keys all get the same 401, and
// 429 once their address has spent its budget of failures; a good key
// never meets that budget (authenticate).
func (a *API) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token, ok := bearer(c)
		if !ok {
			return a.authFailed(c, "missing", "Send your API key as Authorization: Bearer <key>.")
		}
		if !apikey.Plausible(token) {
			return a.authFailed(c, "malformed", "The API key is not valid.")
		}
		// The slots are the request's own (requestState) when its context
		// is one; else a context that wraps it carries them.
		st := stateOf(c)
		var slots *authSlots
		var ac *authContext
		if st != nil {
			slots = &st.auth
		} else {
			ac = new(authContext)
			slots = &ac.authSlots
		}
		slots.hash = apikey.Hash(token)
		now := a.now() // one clock read for both: each is ≈ 0.1 µs here
		key, err := a.authenticate(c, &slots.hash, now)
		if err != nil {
			return err
		}
		ctx := c.Request().Context()
		if a.touched.due(key.ID, now) {
			// Bookkeeping only: a failure here must not fail the request.
			if _, err := a.store.TouchAPIKey(ctx, key.ID); err != nil {
				a.log.WarnContext(ctx, "touch api key", "key_id", key.ID, "error", err)
			}
		}
		slots.authenticated(key)
		if st != nil {
			st.hasAuth.Store(true)
		} else {
			ac.Context = ctx
			c.SetRequest(c.Request().WithContext(ac))
		}
		return next(c)
	}
}

const unknownKeyDetail = "The API key is unknown or revoked."

// keyCache answers a key lookup from the cache alone (dbcache.Store).
type keyCache interface {
	CachedAPIKeyByHash(ctx context.Context, hash []byte) (db.GetAPIKeyByHashRow, bool)
}

// authenticate finds the key whose hash this is. Only a key that cannot be
// good meets its address's failure budget, so a flood of bad keys from an
// address (a NAT, a proxy) never locks out the good keys sent from it:
//   - a key remembered unknown is a failure, answered without a lookup;
//   - a key in the set of existing keys is looked up (a cache hit, mostly),
//     whatever its address's failures; revoked, it is a failure after;
//   - any other key passes if the cache holds its lookup (a key created
//     on another instance an instant ago); else its address pays one
//     failure before the database is asked, and once the budget is spent
//     is refused with no lookup: the flood's database cost.
func (a *API) authenticate(c echo.Context, hp *[32]byte, now time.Time) (db.GetAPIKeyByHashRow, error) {
	var none db.GetAPIKeyByHashRow
	hash := *hp
	if a.unknownKeys.known(hash, now) {
		return none, a.authFailed(c, "unknown_cached", unknownKeyDetail)
	}
	ctx := c.Request().Context()
	existing := a.keys.Contains(hash)
	if !existing {
		if a.keyCache != nil {
			if key, ok := a.keyCache.CachedAPIKeyByHash(ctx, hp[:]); ok {
				return key, nil
			}
		}
		if err := a.spendFailure(c); err != nil {
			return none, err
		}
	}
	key, err := a.store.GetAPIKeyByHash(ctx, hp[:])
	switch {
	case err == nil:
		if !existing {
			a.keys.Learn(hash)
		}
		return key, nil
	case errors.Is(err, db.ErrNotFound):
		a.unknownKeys.remember(hash, now)
		if existing {
			return none, a.authFailed(c, "unknown", unknownKeyDetail)
		}
		a.authFailures.WithLabelValues("unknown").Inc() // paid before the lookup
		return none, unauthorized(unknownKeyDetail)
	}
	return none, err
}

// authFailed charges a failure to the client's address and answers 401,
// or 429 once the address has spent its budget. reason labels the metric:
// missing, malformed, unknown (a database lookup), unknown_cached
// (answered by the negative cache), admin.
func (a *API) authFailed(c echo.Context, reason, detail string) error {
	if err := a.spendFailure(c); err != nil {
		return err
	}
	a.authFailures.WithLabelValues(reason).Inc()
	return unauthorized(detail)
}

// spendFailure charges one failure to the client's address; past its
// budget it returns the 429 to answer.
func (a *API) spendFailure(c echo.Context) error {
	refused, wait := a.authFails.spend(c.Request().Context(), c.RealIP())
	if !refused {
		return nil
	}
	a.authFailures.WithLabelValues("blocked").Inc()
	p := newProblem(http.StatusTooManyRequests, "too-many-auth-failures", "Too many failed authentications",
		"This address sent too many invalid keys; wait for Retry-After seconds before trying again.")
	p.retryAfter = ceilSeconds(wait)
	return p
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// authenticated is the principal requireUser stored; nil on routes it
// does not guard.
func authenticated(c echo.Context) *principal {
	p, _ := c.Request().Context().Value(principalKey{}).(*principal)
	return p
}

func userID(c echo.Context) uuid.UUID {
	if p := authenticated(c); p != nil {
		return p.userID
	}
	return uuid.Nil
}

// adminKey holds the SHA-256 of ADMIN_API_KEY: comparing fixed-length
// digests in constant time leaks neither the key nor its length.
type adminKey struct {
	set  bool
	hash [32]byte
}

func newAdminKey(k string) adminKey {
	if k == "" {
		return adminKey{}
	}
	return adminKey{set: true, hash: sha256.Sum256([]byte(k))}
}

func (a *API) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !a.adminKey.set {
			return newProblem(http.StatusForbidden, "admin-disabled", "Admin routes are disabled",
				"Set the ADMIN_API_KEY environment variable (e.g. to the output of `openssl rand -hex 32`) and restart the server, then send it as Authorization: Bearer <ADMIN_API_KEY>.")
		}
		// The key is checked first: a failure budget spent by others never
		// refuses the good admin key.
		token, ok := bearer(c)
		if !ok {
			return a.authFailed(c, "missing", "Send the admin key as Authorization: Bearer <ADMIN_API_KEY>.")
		}
		got := sha256.Sum256([]byte(token))
		if subtle.ConstantTimeCompare(got[:], a.adminKey.hash[:]) != 1 {
			return a.authFailed(c, "admin", "The admin key is not valid.")
		}
		return next(c)
	}
}
