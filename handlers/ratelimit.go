package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/ratelimit"
)

// Request costs, in units of a key's budget (RATE_LIMIT_PER_MINUTE). A
// cached read is the unit; what costs the database more costs more. Each
// route's entry in routeTable names its cost.
const (
	CostRead = 1
	// CostWrite: PATCH, DELETE.
	CostWrite = 2
	// CostEvent: one tracking event, on opened/replied or in a bulk
	// POST /api/v1/events (charged per event once the body is read).
	CostEvent = 1
	// CostCreateCampaign: a campaign may come with up to MaxBulkEmails
	// emails.
	CostCreateCampaign = 5
	// CostBulkEmails: up to MaxBulkEmails emails through COPY.
	CostBulkEmails = 10
	// CostUncachedStats is added after a statistics read (a route with
	// statsSurcharge) that the cache did not answer: those aggregate over
	// the figures of a campaign or user.
	CostUncachedStats = 4
)

// rateLimits holds the limiter and the budgets.
type rateLimits struct {
	lim   *ratelimit.Limiter
	key   ratelimit.Limit // default per key
	admin ratelimit.Limit // shared by the admin routes
}

// keyBudget is a key's limit: its own rate when set, with a burst never
// above that rate nor below the dearest request.
func (r *rateLimits) keyBudget(override *int32) ratelimit.Limit {
	if override == nil {
		return r.key
	}
	rate := int(*override)
	return ratelimit.Limit{PerMinute: rate, Burst: max(min(r.key.Burst, rate), CostBulkEmails)}
}

// limitKey charges a request of route r to its API key (set by
// requireUser) and answers 429 when the budget cannot cover it. Every
// response carries the IETF RateLimit-Policy and RateLimit headers.
func (a *API) limitKey(r route) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return a.chargeKey(next, r.cost, r.statsSurcharge)
	}
}

func (a *API) chargeKey(next echo.HandlerFunc, cost int, statsSurcharge bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.limits == nil {
			return next(c)
		}
		ctx := c.Request().Context()
		p := authenticated(c)
		if p == nil {
			return errors.New("limitKey: no authenticated key; it must run after requireUser")
		}
		budget := a.limits.keyBudget(p.rateLimit)
		bucket := "key:" + p.keyID.String()
		d := a.limits.lim.Allow(ctx, "key", bucket, budget, cost)
		setRateLimitHeaders(c, "key", d)
		if !d.Allowed {
			return tooManyRequests(d)
		}
		err := next(c)
		if statsSurcharge && err == nil {
			if xc := headerValue(c.Response().Header(), HeaderXCache); xc != "hit" && xc != "stale" {
				a.limits.lim.Charge(ctx, bucket, budget, CostUncachedStats)
			}
		}
		return err
	}
}

// chargeEvents charges a bulk request's events, CostEvent each, to its
// key's events budget: the key's rate per minute, of which one request may
// spend up to min(rate, MaxBulkEvents) at once. It is a bucket of its own
// ("events:<key>") so that its burst may exceed the request budget's —
// a bulk request is the point of the route — while the rate still bounds
// the events per minute. It answers 429 when the budget cannot cover the
// events, and 400 when no budget ever could (more events than one request
// may carry for that key).
func (a *API) chargeEvents(c echo.Context, n int) error {
	if a.limits == nil {
		return nil
	}
	p := authenticated(c)
	if p == nil {
		return errors.New("chargeEvents: no authenticated key")
	}
	budget := a.limits.keyBudget(p.rateLimit)
	budget.Burst = max(1, min(budget.PerMinute, MaxBulkEvents))
	cost := n * CostEvent
	if cost > budget.Burst {
		// Waiting would not help: a clear 400 rather than a 429.
		return validationFailed([]FieldError{{Field: "events", Message: fmt.Sprintf(
			"this API key may send at most %d events per request (its rate limit per minute), got %d", budget.Burst, n)}})
	}
	d := a.limits.lim.Allow(c.Request().Context(), "events", "events:"+p.keyID.String(), budget, cost)
	setRateLimitHeaders(c, "events", d)
	if !d.Allowed {
		return tooManyRequests(d)
	}
	return nil
}

// limitAdmin charges the admin routes' own budget, shared by whoever holds
// the admin key.
func (a *API) limitAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.limits == nil {
			return next(c)
		}
		d := a.limits.lim.Allow(c.Request().Context(), "admin", "admin", a.limits.admin, 1)
		setRateLimitHeaders(c, "admin", d)
		if !d.Allowed {
			return tooManyRequests(d)
		}
		return next(c)
	}
}

// setRateLimitHeaders writes the headers of draft-ietf-httpapi-ratelimit-headers:
// the policy (q units per w seconds) and what is left of it (r units, full
// again in t seconds).
func setRateLimitHeaders(c echo.Context, policy string, d ratelimit.Decision) {
	h := c.Response().Header()
	h.Set("RateLimit-Policy", `"`+policy+`";q=`+strconv.Itoa(d.Limit.PerMinute)+`;w=60;burst=`+strconv.Itoa(d.Limit.Burst))
	h.Set("RateLimit", `"`+policy+`";r=`+strconv.Itoa(d.Remaining)+`;t=`+strconv.Itoa(ceilSecondsOrZero(d.ResetAfter.Seconds())))
}

func ceilSecondsOrZero(s float64) int {
	if s <= 0 {
		return 0
	}
	n := int(s)
	if float64(n) < s {
		n++
	}
	return n
}

func tooManyRequests(d ratelimit.Decision) *Problem {
	p := newProblem(http.StatusTooManyRequests, "rate-limited", "Too many requests",
		"This API key spent its request budget; retry after Retry-After seconds. RateLimit-Policy gives the budget.")
	p.retryAfter = ceilSeconds(d.RetryAfter)
	return p
}

// rateLimitHandlers serve GET /db-monitor/rate-limits (routes.go): the
// limiter's backend, Redis errors, and refused requests in total and for
// the most limited keys.
type rateLimitHandlers struct{ l *ratelimit.Limiter }

func (h rateLimitHandlers) stats(c echo.Context) error {
	return writeJSON(c, http.StatusOK, h.l.Stats())
}
