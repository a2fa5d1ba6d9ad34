package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/replyrocket/replyrocket/internal/cache"
)

// HeaderXCache says how a response's cached reads were served: hit, stale,
// miss or bypass (the least cached of them when there were several).
const HeaderXCache = "X-Cache"

// CacheHeader is the API middleware that reports X-Cache. The header is set
// just before the response is written, once the handler's reads ran;
// responses that made no cached read carry none.
func CacheHeader() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ctx, rec := cache.WithRecorder(c.Request().Context())
			c.SetRequest(c.Request().WithContext(ctx))
			c.Response().Before(func() {
				if o := rec.Outcome(); o != cache.OutcomeNone {
					// A shared value slice (its capacity is its length, so an
					// Add copies it): Set would allocate one per response.
					c.Response().Header()[HeaderXCache] = xCacheValues[o]
				}
			})
			return next(c)
		}
	}
}

// xCacheValues are X-Cache's header values by outcome.
var xCacheValues = func() (v [cache.OutcomeBypass + 1][]string) {
	for o := range v {
		v[o] = []string{cache.Outcome(o).String()}[:1:1]
	}
	return v
}()

type cacheHandlers struct{ c *cache.Cache }

func (h cacheHandlers) stats(c echo.Context) error {
	return writeJSON(c, http.StatusOK, h.c.SnapshotContext(c.Request().Context()))
}

type clearedJSON struct {
	// RedisKeysRemoved counts the shared tier's keys; L1 is emptied too.
	RedisKeysRemoved int64 `json:"redis_keys_removed"`
}

func (h cacheHandlers) clear(c echo.Context) error {
	n, err := h.c.Clear(c.Request().Context())
	if err != nil {
		p := newProblem(http.StatusServiceUnavailable, "cache-unavailable", "Cache unavailable",
			"The cache could not be cleared completely; try again.")
		p.retryAfter = 1
		p.cause = err
		return p
	}
	return writeJSON(c, http.StatusOK, clearedJSON{RedisKeysRemoved: n})
}

type invalidateJSON struct {
	Table string `json:"table" required:"true" description:"A table the cache knows (GET /db-monitor/cache lists them). The tables its triggers write are invalidated with it: emails also invalidates campaign_email_counts."`
}

func (h cacheHandlers) invalidate(c echo.Context) error {
	var req invalidateJSON
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Table == "" {
		return validationFailed([]FieldError{{Field: "table", Message: "is required"}})
	}
	err := h.c.InvalidateTable(c.Request().Context(), req.Table)
	if errors.Is(err, cache.ErrUnknownTable) {
		return validationFailed([]FieldError{{Field: "table", Message: "is not a table the cache knows; one of " + strings.Join(h.c.Tables(), ", ")}})
	}
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, req)
}
