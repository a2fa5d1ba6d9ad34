package handlers

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/cache"
	"github.com/replyrocket/replyrocket/internal/monitor"
	"github.com/replyrocket/replyrocket/internal/monitor/dashboard"
	"github.com/replyrocket/replyrocket/internal/ratelimit"
)

// The route table is the one description of the HTTP API: New registers
// every route of it on Echo, and the OpenAPI document is reflected from the
// same entries (their parameter, body and response types), so a route or a
// field cannot reach one without the other.
//
// Adding a route: append a route to routeTable with its handler, auth,
// parameter struct (path:"…"/query:"…" tags), body type, response type and
// the error statuses it can answer besides its auth's; validation rules go
// on the types as tags (minLength, maxLength, minimum, maximum, enum, …),
// which the handlers read through rules.go. A response header the
// document should name is added in addOperation (openapi.go), the way the
// redirect's Location is.

// authKind says which key a route needs.
type authKind int

const (
	authNone  authKind = iota
	authUser           // a user's API key
	authAdmin          // ADMIN_API_KEY
)

// route is one operation: how Echo serves it and how the document says so.
type route struct {
	method string
	// path is in OpenAPI form (/campaigns/{id}); Echo's form is derived.
	path    string
	summary string
	tag     string
	auth    authKind
	handler echo.HandlerFunc
	// cost is what a request charges its key's budget before it runs
	// (user routes: CostRead, CostWrite, …; see ratelimit.go).
	cost int
	// statsSurcharge: a statistics read the cache did not answer
	// aggregates rows, and costs CostUncachedStats more after it ran.
	statsSurcharge bool
	// bodyLimit is the largest body the route reads, checked before
	// authentication (DefaultBodyLimit when empty).
	bodyLimit string
	// needs is the dependency without which the route is not served.
	needs feature
	// params is a struct whose path:"…" and query:"…" fields are the
	// operation's parameters; nil for none.
	params any
	// body is the JSON request body's type; nil for none.
	body         any
	bodyNote     string
	bodyOptional bool
	ok           int
	// out is the response body's type; nil for none. outType is its media
	// type when it is not JSON (then out is ignored and the body a string).
	out     any
	outType string
	// errors are the statuses, besides those of auth and 500, answered
	// with a problem.
	errors []int
	// redirects: the path without its trailing slash answers 301 to the
	// path with it, where the 200 is served (OpenAPI paths take no
	// trailing slash; the page needs one for its relative links).
	redirects bool
	// errorsAs are error statuses answered with a JSON type instead of a
	// problem (the health check keeps one shape for up and down).
	errorsAs map[int]any
	// byEventID: the route writes through the event batcher and is
	// idempotent by event id, so it takes no Idempotency-Key — whose
	// transaction would hold a connection while the batch waits for one.
	byEventID bool
}

// feature is an optional dependency of the router (Deps): the routes that
// need one are served only when it is wired in.
type feature int

const (
	always feature = iota
	needsMonitor
	needsCache
	needsRateLimiter
)

// servedBy reports whether d has what f names.
func (f feature) servedBy(d Deps) bool {
	switch f {
	case needsMonitor:
		return d.Monitor != nil
	case needsCache:
		return d.Cache != nil
	case needsRateLimiter:
		return d.RateLimiter != nil
	}
	return true
}

// limit is the route's body limit.
func (r route) limit() string {
	if r.bodyLimit == "" {
		return DefaultBodyLimit
	}
	return r.bodyLimit
}

// idempotent reports whether the route takes an Idempotency-Key: every POST
// of the API (not the monitor's, which write nothing a retry could repeat).
// The event routes are idempotent by event id instead (byEventID).
func (r route) idempotent() bool {
	return r.method == http.MethodPost && strings.HasPrefix(r.path, "/api/v1/") && !r.byEventID
}

// echoPath turns /campaigns/{id} into Echo's /campaigns/:id.
func (r route) echoPath() string {
	return strings.NewReplacer("{", ":", "}", "").Replace(r.path)
}

// Parameter structs, shared by the routes that take them.
type (
	idParam struct {
		ID string `path:"id" format:"uuid" description:"A UUID."`
	}
	pageParams struct {
		Limit  int    `query:"limit" minimum:"1" maximum:"100" default:"20" description:"Page size."`
		Cursor string `query:"cursor" description:"Opaque cursor: the next_cursor of the previous page."`
	}
	campaignListParams struct {
		pageParams
		Include string `query:"include" enum:"stats" description:"stats: each campaign gains its figures (one statement per page, cached)."`
	}
	idPageParams struct {
		idParam
		pageParams
	}
	dailyStatsParams struct {
		idParam
		Days int `query:"days" minimum:"1" maximum:"366" default:"30" description:"How many UTC days, today included."`
	}
	tableParam struct {
		Table string `path:"table_name" description:"A table in the current schema."`
	}
	windowParam struct {
		Window string `query:"window" description:"A duration such as 15m or 1h, at most 168h; unset: since the counters were last reset."`
	}
)

// opsHandlers are the operational routes' handlers. They are passed in
// rather than named in routeTable because the document and its HTML page
// are built from the table: naming them there would be an initialisation
// cycle.
type opsHandlers struct{ health, metrics, openAPI, docs echo.HandlerFunc }

// routeTable lists every route. The handlers' receivers may hold nil
// dependencies when the table is only read for the document.
func routeTable(a *API, mon monitorHandlers, ch cacheHandlers, rl rateLimitHandlers, ops opsHandlers) []route {
	user := func(r route) route { r.auth = authUser; return r }
	admin := func(r route) route { r.auth = authAdmin; return r }
	idErrs := []int{400, 404}
	bodyErrs := []int{400, 413, 415}
	return []route{
		user(route{method: "GET", path: "/api/v1/me", summary: "The caller's user", tag: "users", cost: CostRead, handler: a.getMe, ok: 200, out: userJSON{}}),
		user(route{method: "GET", path: "/api/v1/me/statistics", summary: "The caller's totals across campaigns", tag: "statistics", cost: CostRead, statsSurcharge: true, handler: a.getMyStatistics, ok: 200, out: statisticsJSON{}}),
		user(route{method: "GET", path: "/api/v1/campaigns", summary: "List campaigns, newest first (keyset pages); include=stats adds each one's figures", tag: "campaigns", cost: CostRead, handler: a.listCampaigns, params: campaignListParams{}, ok: 200, out: page[campaignJSON]{}, errors: []int{400}}),
		user(route{method: "POST", path: "/api/v1/campaigns", summary: "Create a campaign, optionally with its first emails, in one transaction", tag: "campaigns", cost: CostCreateCampaign, handler: a.createCampaign, body: createCampaignInput{}, bodyNote: fmt.Sprintf("At most 1 MiB and %d emails.", MaxBulkEmails), ok: 201, out: campaignJSON{}, errors: bodyErrs}),
		user(route{method: "GET", path: "/api/v1/campaigns/{id}", summary: "Get a campaign", tag: "campaigns", cost: CostRead, handler: a.getCampaign, params: idParam{}, ok: 200, out: campaignJSON{}, errors: idErrs}),
		user(route{method: "PATCH", path: "/api/v1/campaigns/{id}", summary: "Rename a campaign and/or change its status", tag: "campaigns", cost: CostWrite, handler: a.updateCampaign, params: idParam{}, body: updateCampaignInput{}, ok: 200, out: campaignJSON{}, errors: []int{400, 404, 413, 415}}),
		user(route{method: "DELETE", path: "/api/v1/campaigns/{id}", summary: "Delete a campaign and its emails", tag: "campaigns", cost: CostWrite, handler: a.deleteCampaign, params: idParam{}, ok: 204, errors: idErrs}),
		user(route{method: "GET", path: "/api/v1/campaigns/{id}/summary", summary: "Totals and rates of a campaign", tag: "statistics", cost: CostRead, statsSurcharge: true, handler: a.getCampaignSummary, params: idParam{}, ok: 200, out: summaryJSON{}, errors: idErrs}),
		user(route{method: "GET", path: "/api/v1/campaigns/{id}/daily-stats", summary: "Emails created per UTC day; days without emails count 0", tag: "statistics", cost: CostRead, statsSurcharge: true, handler: a.getCampaignDailyStats, params: dailyStatsParams{}, ok: 200, out: []dayCountJSON{}, errors: idErrs}),
		user(route{method: "GET", path: "/api/v1/campaigns/{id}/emails", summary: "List a campaign's emails, oldest first (keyset pages; bodies left out)", tag: "emails", cost: CostRead, handler: a.listCampaignEmails, params: idPageParams{}, ok: 200, out: page[emailJSON]{}, errors: idErrs}),
		user(route{method: "POST", path: "/api/v1/campaigns/{id}/emails", summary: "Add emails to a campaign in bulk (COPY)", tag: "emails", cost: CostBulkEmails, handler: a.bulkInsertEmails, bodyLimit: BulkBodyLimit, params: idParam{}, body: bulkEmailsInput{}, bodyNote: fmt.Sprintf("This route accepts bodies up to 16 MiB (others: 1 MiB) and 1 to %d emails.", MaxBulkEmails), ok: 201, out: insertedJSON{}, errors: []int{400, 404, 413, 415}}),
		user(route{method: "GET", path: "/api/v1/emails/{id}", summary: "Get an email with its body", tag: "emails", cost: CostRead, handler: a.getEmail, params: idParam{}, ok: 200, out: emailJSON{}, errors: idErrs}),
		user(route{method: "POST", path: "/api/v1/emails/{id}/opened", summary: "Record an open (idempotent: the first stamps opened_at); answered once its batch committed", tag: "emails", cost: CostEvent, handler: a.markOpened, params: idParam{}, ok: 200, out: emailJSON{}, errors: idErrs, byEventID: true}),
		user(route{method: "POST", path: "/api/v1/emails/{id}/replied", summary: "Record a reply (idempotent: the first stamps replied_at); answered once its batch committed", tag: "emails", cost: CostEvent, handler: a.markReplied, params: idParam{}, ok: 200, out: emailJSON{}, errors: idErrs, byEventID: true}),
		user(route{method: "POST", path: "/api/v1/events", summary: fmt.Sprintf("Record up to %d tracking events (sent, opened, replied, bounced, failed), idempotent by event id; 200 with one result per event once their batches committed", MaxBulkEvents), tag: "emails", cost: CostEvent, handler: a.postEvents, body: bulkEventsInput{}, bodyNote: fmt.Sprintf("1 to %[1]d events. Each event costs one unit of the key's rate limit; a request may carry at most min(rate per minute, %[1]d) events.", MaxBulkEvents), ok: 200, out: eventResultsJSON{}, errors: []int{400, 413, 415, 429}, byEventID: true}),

		admin(route{method: "POST", path: "/api/v1/users", summary: "Create a user and its first API key (shown once)", tag: "admin", handler: a.createUser, body: createUserInput{}, ok: 201, out: createdUserJSON{}, errors: []int{400, 409, 413, 415}}),
		admin(route{method: "POST", path: "/api/v1/users/{id}/keys", summary: "Mint another API key for a user (shown once)", tag: "admin", handler: a.createKey, params: idParam{}, body: createKeyInput{}, bodyOptional: true, bodyNote: "Optional; the name defaults to \"default\".", ok: 201, out: apiKeyJSON{}, errors: []int{400, 404, 413, 415}}),
		admin(route{method: "PATCH", path: "/api/v1/keys/{id}", summary: "Set a key's own rate limit (cost units per minute), or null for the server default", tag: "admin", handler: a.updateKey, params: idParam{}, body: updateKeyInput{}, ok: 200, out: apiKeyJSON{}, errors: []int{400, 404, 413, 415}}),
		admin(route{method: "DELETE", path: "/api/v1/keys/{id}", summary: "Revoke an API key (idempotent)", tag: "admin", handler: a.revokeKey, params: idParam{}, ok: 204, errors: idErrs}),

		{method: "GET", path: "/health/db", summary: "Database health: 200 (ok, or degraded when a read replica is out of rotation), or 503 with the same shape when the primary does not answer within 1 s", tag: "operations", handler: ops.health, ok: 200, out: healthJSON{}, errorsAs: map[int]any{503: healthJSON{}}},
		{method: "GET", path: "/metrics", summary: "Prometheus metrics", tag: "operations", handler: ops.metrics, ok: 200, outType: "text/plain"},
		{method: "GET", path: "/openapi.json", summary: "This document", tag: "operations", handler: ops.openAPI, ok: 200, out: anyJSON{}},
		{method: "GET", path: "/docs", summary: "This document as a browsable page", tag: "operations", handler: ops.docs, ok: 200, outType: "text/html"},

		{method: "GET", path: "/db-monitor", summary: "Database monitor dashboard (HTML; no key needed for the page, which asks for the admin key and calls the routes below with it). Served at /db-monitor/; /db-monitor redirects there", tag: "monitor", needs: needsMonitor, handler: redirectToDashboard, ok: 200, outType: "text/html", redirects: true, errors: []int{404}},
		admin(route{method: "GET", path: "/db-monitor/performance", summary: "Health checks of the database, each ok or warning with advice", tag: "monitor", needs: needsMonitor, handler: mon.performance, ok: 200, out: monitor.Performance{}}),
		admin(route{method: "GET", path: "/db-monitor/slow-queries", summary: "Top statements (pg_stat_statements) and per-sqlc-query latency", tag: "monitor", needs: needsMonitor, handler: mon.slowQueries, params: windowParam{}, ok: 200, out: monitor.SlowQueries{}, errors: []int{400}}),
		admin(route{method: "POST", path: "/db-monitor/analyze-query", summary: "EXPLAIN one read-only SELECT with plain-words recommendations", tag: "monitor", needs: needsMonitor, handler: mon.analyzeQuery, body: monitor.AnalyzeRequest{}, ok: 200, out: monitor.Analysis{}, errors: bodyErrs}),
		admin(route{method: "POST", path: "/db-monitor/optimize-query", summary: "Index suggestions verified with hypopg (or a labelled heuristic)", tag: "monitor", needs: needsMonitor, handler: mon.optimizeQuery, body: monitor.OptimizeRequest{}, ok: 200, out: monitor.Optimization{}, errors: bodyErrs}),
		admin(route{method: "GET", path: "/db-monitor/table-stats/{table_name}", summary: "Sizes, scans, vacuum state and indexes of a table (and its partitions)", tag: "monitor", needs: needsMonitor, handler: mon.tableStats, params: tableParam{}, ok: 200, out: monitor.TableStat{}, errors: idErrs}),
		admin(route{method: "GET", path: "/db-monitor/rate-limits", summary: "Rate limiter backend, Redis errors, and refused requests in total and for the most limited keys", tag: "monitor", needs: needsRateLimiter, handler: rl.stats, ok: 200, out: ratelimit.Stats{}}),
		admin(route{method: "GET", path: "/db-monitor/cache", summary: "Cache hit rates, entries, bytes, invalidations and Redis state", tag: "cache", needs: needsCache, handler: ch.stats, ok: 200, out: cache.Snapshot{}}),
		admin(route{method: "DELETE", path: "/db-monitor/cache", summary: "Clear this application's cache entries", tag: "cache", needs: needsCache, handler: ch.clear, ok: 200, out: clearedJSON{}}),
		admin(route{method: "POST", path: "/db-monitor/cache/invalidate", summary: "Invalidate every cached query that read a table", tag: "cache", needs: needsCache, handler: ch.invalidate, body: invalidateJSON{}, ok: 200, out: invalidateJSON{}, errors: bodyErrs}),
	}
}

// dashboardPath is where the dashboard page is served: its script finds
// the JSON endpoints relative to it, so it needs the trailing slash. The
// documented /db-monitor redirects here.
const dashboardPath = "/db-monitor/"

func redirectToDashboard(c echo.Context) error {
	return c.Redirect(http.StatusMovedPermanently, dashboardPath)
}

// serveDashboard is the page at dashboardPath, outside the admin check: a
// browser navigating to it cannot send the Authorization header, and the
// page holds no data — its script reads the admin-only endpoints with the
// key the user enters.
var serveDashboard = dashboard.Handler()

// anyJSON stands for a free-form JSON object: the OpenAPI document
// served at /openapi.json, which describes itself.
type anyJSON struct {
	_ struct{} `additionalProperties:"true" description:"A free-form JSON object."`
}
