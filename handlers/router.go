// Package handlers is ReplyRocket's HTTP API on Echo: routes, middleware,
// authentication, the central problem+json error handler, health, metrics
// and the OpenAPI document.
package handlers

import (
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/replyrocket/replyrocket/db"
	"github.com/replyrocket/replyrocket/db/dbroute"
	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/ingest"
	"github.com/replyrocket/replyrocket/internal/keyset"
	"github.com/replyrocket/replyrocket/internal/monitor"
	"github.com/replyrocket/replyrocket/internal/ratelimit"
)

// Body limits (a route's bodyLimit). Bulk email import is the one route
// that takes large bodies: MaxBulkEmails emails of a few hundred bytes
// each need more than 1 MiB.
const (
	DefaultBodyLimit = "1M"
	BulkBodyLimit    = "16M"
)

// MaxBulkEmails bounds one request's emails (a new campaign's or a bulk
// import's), so one COPY stays short. The validator, the OpenAPI schema
// (maxItems), the route notes and the costs' comments all read it.
const MaxBulkEmails = 10_000

// Deps is everything the router needs, built once at start by internal/app.
type Deps struct {
	Store db.Store
	// Pool is read for /health/db and the pool metrics.
	Pool *pgxpool.Pool
	// Router reports the read replicas in /health/db (nil: none).
	Router *dbroute.Router
	Log    *slog.Logger
	// AdminKey authorises admin routes; empty disables them (403).
	AdminKey string
	// RequestTimeout bounds each request; its deadline reaches pgx through
	// the request context.
	RequestTimeout time.Duration
	// IPExtractor finds the client address behind trusted proxies.
	IPExtractor echo.IPExtractor
	// Registry receives the HTTP and pool metrics and is served at /metrics;
	// other packages register their collectors on it too.
	Registry *prometheus.Registry
	// APIMiddleware wraps every route that needs a key, after
	// authentication (the cache layer's X-Cache reporting plugs in here).
	APIMiddleware []echo.MiddlewareFunc
	// Monitor, when set, serves the /db-monitor routes and dashboard.
	Monitor *monitor.Monitor
	// Cache, when set, serves the /db-monitor/cache routes.
	Cache *cache.Cache
	// Now is the clock (tests pin it); nil is time.Now.
	Now func() time.Time
	// BodyDrainBytes is how much of a body over the limit is read before the
	// 413 goes out (see drainRejectedBody); zero is DefaultBodyDrainBytes,
	// negative drains nothing.
	BodyDrainBytes int64
	// UnknownKeyTTL is how long an unknown key's hash is remembered (zero:
	// DefaultUnknownKeyTTL; negative: not at all).
	UnknownKeyTTL time.Duration
	// AuthFailuresPerMinute is each client address's budget of failed
	// authentications (zero: DefaultAuthFailuresPerMinute; negative: none).
	AuthFailuresPerMinute int
	// AuthLimiter holds that budget: the rate limiter, shared through
	// Redis; nil: an in-process limiter of this router's own.
	AuthLimiter *ratelimit.Limiter
	// Keys is the set of existing API keys (internal/keyset), started by
	// the caller; nil: an empty set, so every key not cached meets the
	// failure budget as before the set existed.
	Keys *keyset.Set
	// RateLimiter enforces the per-key and admin budgets; nil: no limits.
	RateLimiter *ratelimit.Limiter
	// KeyRateLimit is a key's default budget (a key's own
	// rate_limit_per_minute overrides its rate); AdminRateLimit is the
	// admin routes' budget.
	KeyRateLimit, AdminRateLimit ratelimit.Limit
	// Pprof serves net/http/pprof under /debug/pprof, behind the admin key
	// (PPROF_ENABLED).
	Pprof bool
	// Events applies tracking events in group commits (internal/ingest);
	// nil: one with the defaults, on Store.
	Events *ingest.Batcher
}

// Defaults of the bad-key defences.
const (
	DefaultUnknownKeyTTL         = 30 * time.Second
	DefaultAuthFailuresPerMinute = 30
	// maxUnknownKeys bounds the negative cache's memory.
	maxUnknownKeys = 100_000
)

// API holds the handlers' dependencies.
type API struct {
	store       db.Store
	log         *slog.Logger
	now         func() time.Time
	touched     *touchLimiter
	adminKey    adminKey
	unknownKeys *unknownKeys
	authFails   *failedAuth
	keys        *keyset.Set
	keyCache    keyCache // nil: the store has no cache
	limits      *rateLimits
	events      *ingest.Batcher
	// authFailures counts refused authentications by reason ("blocked":
	// the address spent its budget).
	authFailures *prometheus.CounterVec
}

// New builds the router.
func New(d Deps) *echo.Echo {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.RequestTimeout <= 0 {
		d.RequestTimeout = 10 * time.Second
	}
	if d.IPExtractor == nil {
		d.IPExtractor = echo.ExtractIPDirect()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.UnknownKeyTTL == 0 {
		d.UnknownKeyTTL = DefaultUnknownKeyTTL
	}
	if d.AuthFailuresPerMinute == 0 {
		d.AuthFailuresPerMinute = DefaultAuthFailuresPerMinute
	}
	if d.Events == nil {
		d.Events = ingest.New(d.Store, ingest.Config{Timeout: d.RequestTimeout})
	}
	a := &API{
		store: d.Store, log: d.Log, now: d.Now, adminKey: newAdminKey(d.AdminKey), events: d.Events,
		unknownKeys: newUnknownKeys(d.UnknownKeyTTL, maxUnknownKeys),
		touched:     newTouchLimiter(),
		authFails:   newFailedAuth(d),
		keys:        d.Keys,
	}
	a.keyCache, _ = d.Store.(keyCache)
	if a.keys == nil {
		a.keys, _ = keyset.New(keyset.Config{}, nil, d.Log) // no Redis: cannot fail
	}
	a.authFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "replyrocket_auth_failures_total",
		Help: "Refused authentications by reason: missing, malformed, unknown, unknown_cached (no database lookup), admin, blocked (429: the address spent its budget).",
	}, []string{"reason"})
	d.Registry.MustRegister(a.authFailures)
	if d.RateLimiter != nil {
		a.limits = &rateLimits{lim: d.RateLimiter, key: d.KeyRateLimit, admin: d.AdminRateLimit}
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = d.IPExtractor
	e.HTTPErrorHandler = errorHandler(d.Log)
	e.JSONSerializer = jsonSerializer{}

	metrics := newHTTPMetrics(d.Registry)
	if d.Pool != nil {
		d.Registry.MustRegister(poolCollector{pool: d.Pool})
	}

	if d.BodyDrainBytes == 0 {
		d.BodyDrainBytes = DefaultBodyDrainBytes
	}
	// Every request, a 404 for an unknown path included, goes through these,
	// outermost first; requestID first, so everything after it has the id.
	global := compose(func(c echo.Context) error { return c.Handler()(c) },
		requestID(),
		accessLog(d.Log, metrics), recoverPanics(d.Log),
		drainRejectedBody(d.BodyDrainBytes),
		compress(),
		requestTimeout(d.RequestTimeout),
	)
	// Echo applies middleware again on every request (e.Use's and e.Pre's
	// in ServeHTTP, a route's own in the route's closure): a closure per
	// middleware per request, 11 of a cached read's 41 allocations. So both
	// chains are composed once, here: Echo gets one middleware that returns
	// the global chain as it is (its innermost handler calls the one Echo
	// routed to, c.Handler(), which is the next Echo passes), and routes
	// whose handler is their composed chain.
	e.Use(func(echo.HandlerFunc) echo.HandlerFunc { return global })

	// A route's chain: its body limit (before anything reads the body or
	// the key), then its key and its budget, then the API middleware.
	chain := func(r route) []echo.MiddlewareFunc {
		mw := []echo.MiddlewareFunc{middleware.BodyLimit(r.limit())}
		switch r.auth {
		case authUser:
			mw = append(mw, a.requireUser, a.limitKey(r))
		case authAdmin:
			mw = append(mw, a.requireAdmin, a.limitAdmin)
		default:
			return mw
		}
		return append(mw, d.APIMiddleware...)
	}
	// POSTs take an Idempotency-Key; its transaction wraps the handler, so
	// it runs after authentication, limits and cache reporting.
	idempotency := map[authKind]echo.MiddlewareFunc{
		authUser:  a.idempotent(func(c echo.Context) string { return "user:" + userID(c).String() }),
		authAdmin: a.idempotent(func(echo.Context) string { return "admin" }),
	}
	ops := opsHandlers{
		health: healthDB(d.Pool, d.Router), metrics: echo.WrapHandler(metricsHandler(d.Registry)),
		openAPI: serveOpenAPI, docs: serveDocs,
	}
	for _, r := range routeTable(a, monitorHandlers{m: d.Monitor, hasCache: d.Cache != nil}, cacheHandlers{c: d.Cache}, rateLimitHandlers{l: d.RateLimiter}, ops) {
		if !r.needs.servedBy(d) {
			continue
		}
		mw := chain(r)
		if r.idempotent() {
			mw = append(mw, idempotency[r.auth])
		}
		e.Add(r.method, r.echoPath(), compose(r.handler, mw...))
	}
	if d.Monitor != nil {
		e.GET(dashboardPath, serveDashboard)
	}
	// Profiling is a debugging aid behind the admin key, not part of the
	// API: it stays out of the route table and the document.
	if d.Pprof {
		registerPprof(e, a.requireAdmin)
	}
	return e
}

// newFailedAuth is the failure budget Deps asks for, on its limiter or on
// an in-process one (which, without Redis, cannot fail to build).
func newFailedAuth(d Deps) *failedAuth {
	if d.AuthFailuresPerMinute < 0 {
		return nil
	}
	lim := d.AuthLimiter
	if lim == nil {
		lim, _ = ratelimit.New(ratelimit.Config{Now: d.Now}, nil, d.Log)
	}
	n := d.AuthFailuresPerMinute
	return &failedAuth{lim: lim, budget: ratelimit.Limit{PerMinute: n, Burst: n}}
}

// compose wraps h in mw, the first outermost, as Echo's applyMiddleware
// does, once.
func compose(h echo.HandlerFunc, mw ...echo.MiddlewareFunc) echo.HandlerFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// jsonSerializer writes JSON without HTML escaping (recipients and bodies
// hold '<' and '&'). Requests are read by decodeJSON (decode.go), the strict
// decoder, never through Echo's Bind.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

func (jsonSerializer) Serialize(c echo.Context, i any, indent string) error {
	return jsonEncode(c.Response(), i)
}
