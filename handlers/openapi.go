package handlers

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/db"
)

// The OpenAPI 3.1 document is written out here, route by route, apart from
// the router: a test compares the two, so a route added to one and not the
// other fails the build rather than going undocumented.

type oaRoute struct {
	method, path, summary, tag string
	auth                       string // "user", "admin" or ""
	params                     []oaParam
	body                       string // request schema name
	bodyNote                   string
	ok                         int
	okSchema                   string // response schema name; "" for none
	okType                     string // response media type when not JSON
	errors                     []int
	// errorsAs are error statuses answered with a JSON schema instead of
	// a problem (the health check keeps one shape for up and down).
	errorsAs map[int]string
}

type oaParam struct {
	name, in, desc string
	schema         map[string]any
	required       bool
}

var (
	pID     = oaParam{name: "id", in: "path", desc: "A UUID.", schema: map[string]any{"type": "string", "format": "uuid"}, required: true}
	pLimit  = oaParam{name: "limit", in: "query", desc: "Page size.", schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}
	pCursor = oaParam{name: "cursor", in: "query", desc: "Opaque cursor: the next_cursor of the previous page.", schema: map[string]any{"type": "string"}}
	pDays   = oaParam{name: "days", in: "query", desc: "How many UTC days, today included.", schema: map[string]any{"type": "integer", "minimum": 1, "maximum": 366, "default": 30}}
	pTable  = oaParam{name: "table_name", in: "path", desc: "A table in the current schema.", schema: map[string]any{"type": "string"}, required: true}
)

// Errors every authenticated route can answer besides its own.
var (
	userErrors  = []int{401, 503, 504}
	adminErrors = []int{401, 403, 503, 504}
)

func routesDoc() []oaRoute {
	return []oaRoute{
		{method: "GET", path: "/api/v1/me", summary: "The caller's user", tag: "users", auth: "user", ok: 200, okSchema: "User"},
		{method: "GET", path: "/api/v1/me/statistics", summary: "The caller's totals across campaigns", tag: "statistics", auth: "user", ok: 200, okSchema: "Statistics"},
		{method: "GET", path: "/api/v1/campaigns", summary: "List campaigns, newest first (keyset pages)", tag: "campaigns", auth: "user", params: []oaParam{pLimit, pCursor}, ok: 200, okSchema: "CampaignPage", errors: []int{400}},
		{method: "POST", path: "/api/v1/campaigns", summary: "Create a campaign, optionally with its first emails, in one transaction", tag: "campaigns", auth: "user", body: "CreateCampaign", bodyNote: "At most 1 MiB and 10 000 emails.", ok: 201, okSchema: "Campaign", errors: []int{400, 413, 415}},
		{method: "GET", path: "/api/v1/campaigns/{id}", summary: "Get a campaign", tag: "campaigns", auth: "user", params: []oaParam{pID}, ok: 200, okSchema: "Campaign", errors: []int{400, 404}},
		{method: "PATCH", path: "/api/v1/campaigns/{id}", summary: "Rename a campaign and/or change its status", tag: "campaigns", auth: "user", params: []oaParam{pID}, body: "UpdateCampaign", ok: 200, okSchema: "Campaign", errors: []int{400, 404, 413, 415}},
		{method: "DELETE", path: "/api/v1/campaigns/{id}", summary: "Delete a campaign and its emails", tag: "campaigns", auth: "user", params: []oaParam{pID}, ok: 204, errors: []int{400, 404}},
		{method: "GET", path: "/api/v1/campaigns/{id}/summary", summary: "Totals and rates of a campaign", tag: "statistics", auth: "user", params: []oaParam{pID}, ok: 200, okSchema: "Summary", errors: []int{400, 404}},
		{method: "GET", path: "/api/v1/campaigns/{id}/daily-stats", summary: "Emails created per UTC day; days without emails count 0", tag: "statistics", auth: "user", params: []oaParam{pID, pDays}, ok: 200, okSchema: "DailyStats", errors: []int{400, 404}},
		{method: "GET", path: "/api/v1/campaigns/{id}/emails", summary: "List a campaign's emails, oldest first (keyset pages; bodies left out)", tag: "emails", auth: "user", params: []oaParam{pID, pLimit, pCursor}, ok: 200, okSchema: "EmailPage", errors: []int{400, 404}},
		{method: "POST", path: "/api/v1/campaigns/{id}/emails", summary: "Add emails to a campaign in bulk (COPY)", tag: "emails", auth: "user", params: []oaParam{pID}, body: "BulkEmails", bodyNote: "This route accepts bodies up to 16 MiB (others: 1 MiB) and 1 to 10 000 emails.", ok: 201, okSchema: "Inserted", errors: []int{400, 404, 413, 415}},
		{method: "GET", path: "/api/v1/emails/{id}", summary: "Get an email with its body", tag: "emails", auth: "user", params: []oaParam{pID}, ok: 200, okSchema: "Email", errors: []int{400, 404}},
		{method: "POST", path: "/api/v1/emails/{id}/opened", summary: "Record an open (idempotent: the first stamps opened_at)", tag: "emails", auth: "user", params: []oaParam{pID}, ok: 200, okSchema: "Email", errors: []int{400, 404}},
		{method: "POST", path: "/api/v1/emails/{id}/replied", summary: "Record a reply (idempotent: the first stamps replied_at)", tag: "emails", auth: "user", params: []oaParam{pID}, ok: 200, okSchema: "Email", errors: []int{400, 404}},
		{method: "POST", path: "/api/v1/users", summary: "Create a user and its first API key (shown once)", tag: "admin", auth: "admin", body: "CreateUser", ok: 201, okSchema: "CreatedUser", errors: []int{400, 409, 413, 415}},
		{method: "POST", path: "/api/v1/users/{id}/keys", summary: "Mint another API key for a user (shown once)", tag: "admin", auth: "admin", params: []oaParam{pID}, body: "CreateKey", bodyNote: "Optional; the name defaults to \"default\".", ok: 201, okSchema: "APIKey", errors: []int{400, 404, 413, 415}},
		{method: "DELETE", path: "/api/v1/keys/{id}", summary: "Revoke an API key (idempotent)", tag: "admin", auth: "admin", params: []oaParam{pID}, ok: 204, errors: []int{400, 404}},
		{method: "GET", path: "/health/db", summary: "Database health: 200, or 503 with the same shape when it does not answer within 1 s", tag: "operations", ok: 200, okSchema: "Health", errorsAs: map[int]string{503: "Health"}},
		{method: "GET", path: "/metrics", summary: "Prometheus metrics", tag: "operations", ok: 200, okType: "text/plain"},
		{method: "GET", path: "/openapi.json", summary: "This document", tag: "operations", ok: 200, okSchema: "Any"},
		{method: "GET", path: "/docs", summary: "This document as a browsable page", tag: "operations", ok: 200, okType: "text/html"},

		{method: "GET", path: "/db-monitor/", summary: "Database monitor dashboard (HTML; no key needed for the page, which asks for the admin key and calls the routes below with it)", tag: "monitor", ok: 200, okType: "text/html"},
		{method: "GET", path: "/db-monitor/performance", summary: "Health checks of the database, each ok or warning with advice", tag: "monitor", auth: "admin", ok: 200, okSchema: "Any"},
		{method: "GET", path: "/db-monitor/slow-queries", summary: "Top statements (pg_stat_statements) and per-sqlc-query latency", tag: "monitor", auth: "admin", ok: 200, okSchema: "Any", errors: []int{400}},
		{method: "POST", path: "/db-monitor/analyze-query", summary: "EXPLAIN one read-only SELECT with plain-words recommendations", tag: "monitor", auth: "admin", body: "AnalyzeQuery", ok: 200, okSchema: "Any", errors: []int{400, 413, 415}},
		{method: "POST", path: "/db-monitor/optimize-query", summary: "Index suggestions verified with hypopg (or a labelled heuristic)", tag: "monitor", auth: "admin", body: "OptimizeQuery", ok: 200, okSchema: "Any", errors: []int{400, 413, 415}},
		{method: "GET", path: "/db-monitor/table-stats/{table_name}", summary: "Sizes, scans, vacuum state and indexes of a table (and its partitions)", tag: "monitor", auth: "admin", params: []oaParam{pTable}, ok: 200, okSchema: "Any", errors: []int{400, 404}},
		{method: "GET", path: "/db-monitor/cache", summary: "Cache hit rates, entries, bytes, invalidations and Redis state", tag: "cache", auth: "admin", ok: 200, okSchema: "Any"},
		{method: "DELETE", path: "/db-monitor/cache", summary: "Clear this application's cache entries", tag: "cache", auth: "admin", ok: 200, okSchema: "Any"},
		{method: "POST", path: "/db-monitor/cache/invalidate", summary: "Invalidate every cached query that read a table", tag: "cache", auth: "admin", body: "InvalidateTable", ok: 200, okSchema: "Any", errors: []int{400, 413, 415}},
	}
}

func obj(required []string, props map[string]any) map[string]any {
	o := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		o["required"] = required
	}
	return o
}

func ref(name string) map[string]any { return map[string]any{"$ref": "#/components/schemas/" + name} }

var (
	tUUID     = map[string]any{"type": "string", "format": "uuid"}
	tTime     = map[string]any{"type": "string", "format": "date-time", "description": "RFC 3339, UTC"}
	tNullTime = map[string]any{"type": []string{"string", "null"}, "format": "date-time"}
	tInt      = map[string]any{"type": "integer", "minimum": 0}
	tRate     = map[string]any{"type": "number", "minimum": 0, "maximum": 1}
	tStatus   = map[string]any{"type": "string", "enum": db.AllCampaignStatusValues()}
)

func str(min, max int) map[string]any {
	return map[string]any{"type": "string", "minLength": min, "maxLength": max}
}

func schemas() map[string]any {
	emailIn := obj([]string{"recipient", "subject", "body"}, map[string]any{
		"recipient": map[string]any{"type": "string", "minLength": 3, "maxLength": 320, "format": "email"},
		"subject":   str(0, 998),
		"body":      map[string]any{"type": "string"},
	})
	email := obj([]string{"id", "campaign_id", "recipient", "subject", "status", "sent_at", "is_opened", "opened_at", "is_replied", "replied_at", "created_at"}, map[string]any{
		"id": tUUID, "campaign_id": tUUID, "recipient": map[string]any{"type": "string"}, "subject": map[string]any{"type": "string"},
		"body":    map[string]any{"type": "string", "description": "Present on single-email responses, absent in lists."},
		"status":  map[string]any{"type": "string", "enum": []string{"queued", "sent", "bounced", "failed"}},
		"sent_at": tNullTime, "is_opened": map[string]any{"type": "boolean"}, "opened_at": tNullTime,
		"is_replied": map[string]any{"type": "boolean"}, "replied_at": tNullTime, "created_at": tTime,
	})
	pageOf := func(item string) map[string]any {
		return obj([]string{"items", "next_cursor"}, map[string]any{
			"items":       map[string]any{"type": "array", "items": ref(item)},
			"next_cursor": map[string]any{"type": []string{"string", "null"}, "description": "null on the last page"},
		})
	}
	apiKey := obj([]string{"id", "user_id", "name", "prefix", "key", "created_at"}, map[string]any{
		"id": tUUID, "user_id": tUUID, "name": map[string]any{"type": "string"},
		"prefix":     map[string]any{"type": "string", "description": "The key's first characters, to recognise it later."},
		"key":        map[string]any{"type": "string", "description": "The key itself. Shown once; only its SHA-256 is stored."},
		"created_at": tTime,
	})
	return map[string]any{
		"Any":  map[string]any{"type": "object", "description": "Described in the monitor and cache documentation."},
		"User": obj([]string{"id", "email", "name", "is_active", "created_at"}, map[string]any{"id": tUUID, "email": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"}, "is_active": map[string]any{"type": "boolean"}, "created_at": tTime}),
		"Campaign": obj([]string{"id", "name", "status", "created_at", "updated_at"}, map[string]any{
			"id": tUUID, "name": map[string]any{"type": "string"}, "status": tStatus, "created_at": tTime, "updated_at": tTime,
		}),
		"CampaignPage":   pageOf("Campaign"),
		"CreateCampaign": obj([]string{"name"}, map[string]any{"name": str(1, 200), "status": tStatus, "emails": map[string]any{"type": "array", "maxItems": MaxBulkEmails, "items": ref("NewEmail")}}),
		"UpdateCampaign": map[string]any{"type": "object", "additionalProperties": false, "minProperties": 1, "properties": map[string]any{"name": str(1, 200), "status": tStatus}},
		"NewEmail":       emailIn,
		"BulkEmails":     obj([]string{"emails"}, map[string]any{"emails": map[string]any{"type": "array", "minItems": 1, "maxItems": MaxBulkEmails, "items": ref("NewEmail")}}),
		"Inserted":       obj([]string{"inserted"}, map[string]any{"inserted": tInt}),
		"Email":          email,
		"EmailPage":      pageOf("Email"),
		"Summary":        obj([]string{"total", "opened", "replied", "open_rate", "reply_rate"}, map[string]any{"total": tInt, "opened": tInt, "replied": tInt, "open_rate": tRate, "reply_rate": tRate}),
		"DailyStats": map[string]any{"type": "array", "items": obj([]string{"day", "count"}, map[string]any{
			"day": map[string]any{"type": "string", "format": "date"}, "count": tInt,
		})},
		"Statistics":  obj([]string{"campaigns", "emails", "opened", "replied"}, map[string]any{"campaigns": tInt, "emails": tInt, "opened": tInt, "replied": tInt}),
		"CreateUser":  obj([]string{"email", "name"}, map[string]any{"email": map[string]any{"type": "string", "format": "email", "minLength": 3, "maxLength": 320}, "name": str(1, 200)}),
		"CreateKey":   obj(nil, map[string]any{"name": str(1, 200)}),
		"APIKey":      apiKey,
		"CreatedUser": obj([]string{"user", "api_key"}, map[string]any{"user": ref("User"), "api_key": ref("APIKey")}),
		"Health": obj([]string{"status", "latency_ms", "pool"}, map[string]any{
			"status": map[string]any{"type": "string", "enum": []string{"ok", "unavailable"}}, "latency_ms": map[string]any{"type": "number"},
			"error": map[string]any{"type": "string"}, "pool": map[string]any{"type": "object", "description": "pgxpool statistics"},
		}),
		"AnalyzeQuery":    obj([]string{"sql"}, map[string]any{"sql": map[string]any{"type": "string"}, "params": map[string]any{"type": "array"}, "analyze": map[string]any{"type": "boolean"}}),
		"OptimizeQuery":   obj([]string{"sql"}, map[string]any{"sql": map[string]any{"type": "string"}}),
		"InvalidateTable": obj([]string{"table"}, map[string]any{"table": map[string]any{"type": "string"}}),
		"Problem": map[string]any{
			"type": "object", "description": "RFC 9457 problem details.", "required": []string{"type", "title", "status"},
			"properties": map[string]any{
				"type": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"}, "status": map[string]any{"type": "integer"},
				"detail": map[string]any{"type": "string"}, "instance": map[string]any{"type": "string"}, "request_id": map[string]any{"type": "string"},
				"errors": map[string]any{"type": "array", "items": obj([]string{"field", "message"}, map[string]any{"field": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}})},
			},
		},
	}
}

var errorText = map[int]string{
	400: "Invalid request: malformed JSON, unknown fields, a bad UUID or cursor, or values out of range (the errors array lists the fields).",
	401: "Missing, unknown or revoked key (WWW-Authenticate: Bearer).",
	403: "Admin routes are disabled: ADMIN_API_KEY is not set on the server.",
	404: "Not found, or not yours.",
	409: "Conflicts with an existing resource.",
	413: "Body too large.",
	415: "The body must be application/json.",
	503: "Database unavailable or pool exhausted (Retry-After), or the request timed out.",
	504: "The request timed out.",
}

func buildOpenAPI() map[string]any {
	paths := map[string]any{}
	for _, r := range routesDoc() {
		item, _ := paths[r.path].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[r.path] = item
		}
		item[strings.ToLower(r.method)] = operation(r)
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "ReplyRocket API",
			"version":     "1.0.0",
			"description": "Campaigns, emails and statistics. Every /api/v1 route needs Authorization: Bearer <key>. Errors are RFC 9457 application/problem+json. Every response carries X-Request-ID.",
		},
		"paths": paths,
		"components": map[string]any{
			"schemas": schemas(),
			"securitySchemes": map[string]any{
				"apiKey":   map[string]any{"type": "http", "scheme": "bearer", "description": "A user's API key (rr_...)."},
				"adminKey": map[string]any{"type": "http", "scheme": "bearer", "description": "The server's ADMIN_API_KEY."},
			},
		},
	}
}

func operation(r oaRoute) map[string]any {
	op := map[string]any{"summary": r.summary, "tags": []string{r.tag}, "operationId": operationID(r)}
	if len(r.params) > 0 {
		ps := make([]any, 0, len(r.params))
		for _, p := range r.params {
			ps = append(ps, map[string]any{"name": p.name, "in": p.in, "description": p.desc, "required": p.required, "schema": p.schema})
		}
		op["parameters"] = ps
	}
	if r.body != "" {
		op["requestBody"] = map[string]any{
			"required": r.bodyNote == "" || !strings.HasPrefix(r.bodyNote, "Optional"), "description": r.bodyNote,
			"content": map[string]any{"application/json": map[string]any{"schema": ref(r.body)}},
		}
	}
	resp := map[string]any{}
	okResp := map[string]any{"description": http.StatusText(r.ok)}
	switch {
	case r.okType != "":
		okResp["content"] = map[string]any{r.okType: map[string]any{"schema": map[string]any{"type": "string"}}}
	case r.okSchema != "":
		okResp["content"] = map[string]any{"application/json": map[string]any{"schema": ref(r.okSchema)}}
	}
	resp[strconv.Itoa(r.ok)] = okResp
	errs := append([]int{}, r.errors...)
	switch r.auth {
	case "user":
		errs = append(errs, userErrors...)
		op["security"] = []any{map[string]any{"apiKey": []string{}}}
	case "admin":
		errs = append(errs, adminErrors...)
		op["security"] = []any{map[string]any{"adminKey": []string{}}}
	}
	for code, schema := range r.errorsAs {
		resp[strconv.Itoa(code)] = map[string]any{
			"description": "The database did not answer in time; the same shape as 200, with status \"unavailable\".",
			"content":     map[string]any{"application/json": map[string]any{"schema": ref(schema)}},
		}
	}
	errs = append(errs, 500)
	for _, code := range errs {
		desc := errorText[code]
		if desc == "" {
			desc = http.StatusText(code)
		}
		resp[strconv.Itoa(code)] = map[string]any{
			"description": desc,
			"content":     map[string]any{ProblemContentType: map[string]any{"schema": ref("Problem")}},
		}
	}
	op["responses"] = resp
	return op
}

func operationID(r oaRoute) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(r.method))
	for _, part := range strings.FieldsFunc(r.path, func(c rune) bool { return c == '/' || c == '-' || c == '_' || c == '.' || c == '{' || c == '}' }) {
		if part == "api" || part == "v1" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}

var openAPIJSON = sync.OnceValue(func() []byte {
	b, err := json.MarshalIndent(buildOpenAPI(), "", "  ")
	if err != nil {
		panic(err) // static data: a failure is a programming error caught by tests
	}
	return b
})

// OpenAPI is the document served at /openapi.json.
func OpenAPI() []byte { return openAPIJSON() }

func serveOpenAPI(c echo.Context) error {
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, openAPIJSON())
}
